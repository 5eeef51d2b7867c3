package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/msg"
)

// TestRichGolden renders each testdata/rich/<case>.json (a handler's
// replies) as the answer to a WhatsApp message through a fake Cloud API;
// the golden file holds the messages calls.
func TestRichGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rich", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no rich cases", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			var replies []msg.Reply
			if err := json.Unmarshal(golden.Read(t, filepath.Join("rich", name+".json")), &replies); err != nil {
				t.Fatal(err)
			}
			api := metatest.New(t)
			a := New(Config{})
			in, err := a.Parse(signed(golden.Read(t, "text.json"), settings(api.URL)))
			if err != nil || len(in.Events) != 1 {
				t.Fatal(in, err)
			}
			if err := a.Send(context.Background(), settings(api.URL), golden.Handled(in.Events[0], "Menu", replies...)); err != nil {
				t.Fatal(err)
			}
			calls := api.Calls()
			for _, c := range calls {
				checkLimits(t, c.Body)
			}
			golden.Check(t, filepath.Join("rich", name), metatest.Transcript(nil, calls))
		})
	}
}

// checkLimits holds a sent message to the Cloud API's limits.
func checkLimits(t *testing.T, body []byte) {
	t.Helper()
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("invalid JSON sent: %s", body)
	}
	if in := m.Interactive; in != nil {
		if in.Body.Text == "" || len([]rune(in.Body.Text)) > maxBody {
			t.Errorf("interactive body of %d characters", len([]rune(in.Body.Text)))
		}
		if len(in.Action.Buttons) > maxButtons {
			t.Errorf("%d reply buttons", len(in.Action.Buttons))
		}
		titles := map[string]bool{}
		for _, b := range in.Action.Buttons {
			if len([]rune(b.Reply.Title)) > maxButtonTitle || len(b.Reply.ID) > maxButtonID || titles[b.Reply.Title] {
				t.Errorf("reply button %+v", b.Reply)
			}
			titles[b.Reply.Title] = true
		}
		rows := 0
		for _, s := range in.Action.Sections {
			for _, r := range s.Rows {
				rows++
				if len([]rune(r.Title)) > maxRowTitle || len([]rune(r.ID)) > maxRowID || len([]rune(r.Description)) > maxRowDesc {
					t.Errorf("row %+v", r)
				}
			}
		}
		if rows > maxRows {
			t.Errorf("%d rows", rows)
		}
		if in.Header != nil && in.Type != "button" {
			t.Errorf("an image header on a %s message", in.Type)
		}
	}
	for _, md := range []*Media{m.Image, m.Video, m.Document, m.Audio} {
		if md != nil && (len([]rune(md.Caption)) > maxCaption || !strings.HasPrefix(md.Link, "http")) {
			t.Errorf("media %+v", md)
		}
	}
	if m.Audio != nil && m.Audio.Caption != "" {
		t.Error("an audio message with a caption")
	}
}

// TestFiveButtons: five buttons do not fit reply buttons; they are a list
// whose rows answer with the payloads, none lost.
func TestFiveButtons(t *testing.T) {
	var bs []msg.Button
	for _, s := range []string{"S", "M", "L", "XL", "XXL"} {
		bs = append(bs, msg.Button{Title: "Size " + s, Payload: "SIZE_" + s})
	}
	msgs := Messages(&msg.TurnResult{Conversation: "1", Replies: []msg.Reply{{Text: "Pick a size", Buttons: bs}}})
	if len(msgs) != 1 || msgs[0].Interactive == nil || msgs[0].Interactive.Type != "list" {
		t.Fatalf("messages = %+v", msgs)
	}
	rows := msgs[0].Interactive.Action.Sections[0].Rows
	if len(rows) != 5 || rows[4].ID != "p:SIZE_XXL" || rows[4].Title != "Size XXL" {
		t.Fatalf("rows = %+v", rows)
	}
}

// TestPostbackEvents: a reply button or list row that offered a button
// becomes an event with the payload as Postback and the title as Text; a
// template's quick-reply button too; an option stays the option as text.
func TestPostbackEvents(t *testing.T) {
	a := New(Config{})
	for _, tt := range []struct {
		file, text, postback string
	}{
		{"button_reply_postback.json", "Order a pizza", "ORDER"},
		{"list_reply_postback.json", "Family", "SIZE_XL"},
		{"template_button.json", "Order again", "REORDER"},
		{"button_reply.json", "Large", ""},
		{"list_reply.json", "Margherita with extra basil", ""},
	} {
		in, err := a.Parse(signed(golden.Read(t, tt.file), settings("")))
		if err != nil || len(in.Events) != 1 {
			t.Fatalf("%s: %v %v", tt.file, in, err)
		}
		if ev := in.Events[0]; ev.Text != tt.text || ev.Postback != tt.postback {
			t.Errorf("%s: text %q postback %q, want %q %q", tt.file, ev.Text, ev.Postback, tt.text, tt.postback)
		}
	}
	// A typed number picks one of the previous turn's numbered lines.
	body := strings.Replace(string(golden.Read(t, "text.json")), `"body":"Does it come in another color?"`, `"body":"11"`, 1)
	in, err := a.Parse(signed([]byte(body), settings("")))
	if err != nil || in.Events[0].Choice != "11" {
		t.Fatalf("a typed number: %+v, %v", in.Events[0], err)
	}
}

// TestLongPayloadIsAReference: a payload longer than a row's id travels as
// a reference the engine resolves, not degraded.
func TestLongPayloadIsAReference(t *testing.T) {
	long := strings.Repeat("x", 300)
	msgs := Messages(&msg.TurnResult{Conversation: "1", Replies: []msg.Reply{{Text: "Go", Buttons: []msg.Button{{Title: "Long", Payload: long}}}}})
	id := msgs[0].Interactive.Action.Buttons[0].Reply.ID
	ev := &msg.Event{}
	channels.Pressed(ev, id, "Long")
	if len(id) > maxRowID || ev.Choice != msg.ChoiceRef(long) {
		t.Errorf("long payload sent as %q", id)
	}
}

// TestBadChannelData: channel data that is not a JSON object fails the
// turn before anything is sent, and no retry can fix it.
func TestBadChannelData(t *testing.T) {
	api := metatest.New(t)
	res := &msg.TurnResult{Conversation: "1", Replies: []msg.Reply{{Text: "first"},
		{Text: "second", ChannelData: map[string]json.RawMessage{ChannelDataKind: json.RawMessage(`"text"`)}}}}
	err := New(Config{}).Send(context.Background(), settings(api.URL), res)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retryable || len(api.Calls()) != 0 {
		t.Fatalf("err = %v, calls = %d", err, len(api.Calls()))
	}
}
