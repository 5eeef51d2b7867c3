package messenger

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
// replies) as the answer to a Messenger message, or to an Instagram one for
// the instagram_ cases, through a fake Send API; the golden file holds the
// Send API calls.
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
			inbound := "text.json"
			if strings.HasPrefix(name, "instagram_") {
				inbound = "instagram_text.json"
			}
			api := metatest.New(t)
			a := New(Config{})
			in, err := a.Parse(signed(golden.Read(t, inbound), settings(api.URL)))
			if err != nil || len(in.Events) != 1 {
				t.Fatal(in, err)
			}
			if err := a.Send(context.Background(), settings(api.URL), golden.Handled(in.Events[0], "Menu", replies...)); err != nil {
				t.Fatal(err)
			}
			calls := api.Calls()
			for _, c := range calls {
				if !json.Valid(c.Body) {
					t.Fatalf("invalid JSON sent: %s", c.Body)
				}
			}
			golden.Check(t, filepath.Join("rich", name), metatest.Transcript(nil, calls))
		})
	}
}

// TestRichLimits checks what the golden files show, as properties: no
// template holds more than three buttons, no carousel more than ten cards,
// no message more than thirteen quick replies; and nothing the reply holds
// is lost: each option, button, card and media item is sent natively or
// named in a text.
func TestRichLimits(t *testing.T) {
	var buttons []msg.Button
	for i := range 20 {
		buttons = append(buttons, msg.Button{Title: "Choice " + string(rune('A'+i)), Payload: "P" + string(rune('A'+i))})
	}
	var cards []msg.Card
	for i := range 25 {
		cards = append(cards, msg.Card{Title: "Card " + string(rune('A'+i)), Buttons: buttons[:5]})
	}
	var opts []string
	for i := range 16 {
		opts = append(opts, "Option "+string(rune('a'+i)))
	}
	rep := msg.Reply{Text: "Choose", Buttons: buttons, Cards: cards, Options: opts}
	msgs := Messages(&msg.TurnResult{Conversation: "PSID", Replies: []msg.Reply{rep}})
	var all strings.Builder
	carousels, seenCards := 0, 0
	for _, m := range msgs {
		b, _ := m.Body()
		all.Write(b)
		if len(m.Message.QuickReplies) > maxQuickReplies {
			t.Errorf("%d quick replies", len(m.Message.QuickReplies))
		}
		if a := m.Message.Attachment; a != nil && a.Type == "template" {
			if len(a.Payload.Buttons) > maxButtons || len(a.Payload.Elements) > maxElements {
				t.Errorf("template with %d buttons, %d elements", len(a.Payload.Buttons), len(a.Payload.Elements))
			}
			for _, e := range a.Payload.Elements {
				if len(e.Buttons) > maxButtons {
					t.Errorf("element with %d buttons", len(e.Buttons))
				}
			}
			if a.Payload.TemplateType == "generic" {
				carousels++
				seenCards += len(a.Payload.Elements)
			}
		}
	}
	if carousels != 3 || seenCards != 25 {
		t.Errorf("%d cards in %d carousels, want 25 in 3", seenCards, carousels)
	}
	sent := all.String()
	for _, o := range opts {
		if !strings.Contains(sent, o) {
			t.Errorf("option %q lost", o)
		}
	}
	for _, b := range buttons {
		if !strings.Contains(sent, b.Title) {
			t.Errorf("button %q lost", b.Title)
		}
	}
}

// TestPostbackEvents: a postback button and a button offered as a quick
// reply become events with the payload as Postback and what the user saw as
// Text; an option's quick reply stays the option as text; a typed number
// is marked as a choice of the previous turn's numbered lines.
func TestPostbackEvents(t *testing.T) {
	a := New(Config{})
	for _, tt := range []struct {
		file, text, postback string
	}{
		{"postback.json", "Get Started", "GET_STARTED"},
		{"quick_reply_button.json", "Pepperoni", "ORDER pepperoni"},
		{"instagram_postback.json", "Track my order", "TRACK_ORDER"},
		{"quick_reply.json", "Large", ""},
		{"quick_reply_legacy.json", "Large", "Large"},
	} {
		in, err := a.Parse(signed(golden.Read(t, tt.file), settings("")))
		if err != nil || len(in.Events) != 1 {
			t.Fatalf("%s: %v %v", tt.file, in, err)
		}
		if ev := in.Events[0]; ev.Text != tt.text || ev.Postback != tt.postback || ev.Choice != "" {
			t.Errorf("%s: text %q postback %q choice %q, want %q %q", tt.file, ev.Text, ev.Postback, ev.Choice, tt.text, tt.postback)
		}
	}
	body := strings.Replace(string(golden.Read(t, "text.json")), `"text":"hello, world!"`, `"text":"2"`, 1)
	in, err := a.Parse(signed([]byte(body), settings("")))
	if err != nil || in.Events[0].Choice != "2" || in.Events[0].Postback != "" {
		t.Fatalf("a typed number: %+v, %v", in.Events[0], err)
	}
	// A payload too long for Messenger travels as a reference the engine
	// resolves.
	long := strings.Repeat("x", 1200)
	msgs := Messages(&msg.TurnResult{Conversation: "PSID", Replies: []msg.Reply{{Text: "Go", Buttons: []msg.Button{{Title: "Long", Payload: long}}}}})
	b := msgs[0].Message.Attachment.Payload.Buttons[0]
	ev := &msg.Event{}
	channels.Pressed(ev, b.Payload, b.Title)
	if len(b.Payload) > maxPayload || ev.Choice != msg.ChoiceRef(long) {
		t.Errorf("long payload sent as %q", b.Payload)
	}
}

// TestInstagramIsTold: the raw payload of an Instagram event says so, and
// its answer sends no file attachment (Instagram takes none).
func TestInstagramIsTold(t *testing.T) {
	evs, err := ParseNotification(golden.Read(t, "instagram_text.json"))
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	var raw map[string]any
	if json.Unmarshal(evs[0].Raw, &raw) != nil || raw["object"] != "instagram" || raw["message"] == nil {
		t.Fatalf("raw = %s", evs[0].Raw)
	}
	res := &msg.TurnResult{Event: evs[0], Conversation: "IGSID_1",
		Replies: []msg.Reply{{Media: []msg.Media{{Type: msg.MediaFile, URL: "https://x.example/a.pdf"}}}}}
	msgs := Messages(res)
	if len(msgs) != 1 || msgs[0].Message.Attachment != nil || !strings.Contains(msgs[0].Message.Text, "https://x.example/a.pdf") {
		t.Fatalf("messages = %+v", msgs)
	}
	res.Event = &msg.Event{Conversation: "PSID", Raw: withObject([]byte(`{"sender":{"id":"PSID"}}`), "page")}
	if msgs := Messages(res); len(msgs) != 1 || msgs[0].Message.Attachment == nil || msgs[0].Message.Attachment.Type != "file" {
		t.Fatalf("messenger messages = %+v", msgs)
	}
}

// TestBadChannelData: channel data that is not a JSON object fails the
// turn before anything is sent, and no retry can fix it.
func TestBadChannelData(t *testing.T) {
	api := metatest.New(t)
	res := &msg.TurnResult{Conversation: "PSID", Replies: []msg.Reply{{Text: "first"},
		{Text: "second", ChannelData: map[string]json.RawMessage{ChannelDataKind: json.RawMessage(`[1,2]`)}}}}
	err := New(Config{}).Send(context.Background(), settings(api.URL), res)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retryable || len(api.Calls()) != 0 {
		t.Fatalf("err = %v, calls = %d", err, len(api.Calls()))
	}
}
