package lex

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// checkCards holds a response's response cards to Lex V2's limits.
func checkCards(t *testing.T, body []byte) {
	t.Helper()
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	for _, m := range r.Messages {
		c := m.ImageResponseCard
		if (m.ContentType == "ImageResponseCard") != (c != nil) {
			t.Errorf("message %+v", m)
		}
		if c == nil {
			continue
		}
		if c.Title == "" || len([]rune(c.Title)) > maxCardText || len([]rune(c.Subtitle)) > maxCardText || len(c.ImageURL) > maxCardText {
			t.Errorf("card %+v", c)
		}
		if len(c.Buttons) > maxCardButtons {
			t.Errorf("%d buttons", len(c.Buttons))
		}
		for _, b := range c.Buttons {
			if b.Text == "" || b.Value == "" || len([]rune(b.Text)) > maxButtonText || len([]rune(b.Value)) > maxButtonText {
				t.Errorf("button %+v", b)
			}
		}
	}
}

// TestRichGolden renders each testdata/rich/<case>.json (a handler's
// replies) as the answer to a text client's event (text_ cases) or a voice
// client's (voice_ cases); the golden file holds the event and the
// response.
func TestRichGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rich", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no rich cases", err)
	}
	a := New(Config{})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			var replies []msg.Reply
			if err := json.Unmarshal(golden.Read(t, filepath.Join("rich", name+".json")), &replies); err != nil {
				t.Fatal(err)
			}
			inbound := "fallback_intent.json" // a voice client
			if strings.HasPrefix(name, "text_") {
				inbound = "lexv2_event.json"
			}
			ev, resp := golden.Turn(t, a, request(golden.Read(t, inbound)), func(ev *msg.Event) *msg.TurnResult {
				return golden.Handled(ev, "Menu", replies...)
			})
			checkResponse(t, resp.Body)
			golden.Check(t, filepath.Join("rich", name), golden.Render(ev, resp))
		})
	}
}

// TestDTMFChoiceIsAPostback: the choices the previous answer kept in a
// session attribute map a keyed number back to the button's payload; the
// answer without choices drops them.
func TestDTMFChoiceIsAPostback(t *testing.T) {
	ev, resp := golden.Turn(t, New(Config{}), request(golden.Read(t, "dtmf_choice.json")), func(ev *msg.Event) *msg.TurnResult {
		return golden.Handled(ev, "Order", msg.Reply{Text: "One Diavola.", EndConversation: true})
	})
	if ev.Postback != "ORDER_D" || ev.Text != "2" {
		t.Fatalf("event = %+v", ev)
	}
	var r Response
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.SessionState.SessionAttributes[choicesAttribute]; ok || r.SessionState.SessionAttributes["customerId"] != "12345" {
		t.Errorf("attributes = %v", r.SessionState.SessionAttributes)
	}
}
