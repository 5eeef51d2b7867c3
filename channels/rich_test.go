package channels

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/msg"
)

func menuReply() msg.Reply {
	return msg.Reply{
		Text:    "Here is our menu",
		Options: []string{"Hours"},
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
		Cards: []msg.Card{
			{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
				Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
			{Title: "Diavola", Buttons: []msg.Button{{Title: "Add", Payload: "add:diavola"}, {Title: "Order now", Payload: "OrderPizza"}}},
		},
		Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
			{Type: msg.MediaFile, URL: "https://example.com/menu.pdf"}},
	}
}

func TestPlainText(t *testing.T) {
	r := menuReply()
	p := NewPlain([]msg.Reply{r})
	want := `Here is our menu
• Hours
Reply 1 for Order
Website: https://example.com

Margherita
Tomato, mozzarella
https://example.com/m.jpg
Reply 2 for Add

Diavola
Reply 3 for Add
Reply 1 for Order now

Menu: https://example.com/menu.png
https://example.com/menu.pdf`
	if got := p.Text(r, 0); got != want {
		t.Errorf("all as text:\n%s\n--- want ---\n%s", got, want)
	}
	// Native buttons and media: the cards' buttons keep their numbers.
	want = `Here is our menu
• Hours

Margherita
Tomato, mozzarella
https://example.com/m.jpg
Reply 2 for Add

Diavola
Reply 3 for Add
Reply 1 for Order now`
	if got := p.Text(r, NativeButtons|NativeMedia); got != want {
		t.Errorf("native buttons and media:\n%s\n--- want ---\n%s", got, want)
	}
	if got := p.Text(r, NativeOptions|NativeButtons|NativeCards|NativeMedia); got != "Here is our menu" {
		t.Errorf("all native: %q", got)
	}
	if got := p.Text(msg.Reply{}, 0); got != "" {
		t.Errorf("empty reply: %q", got)
	}
}

// TestNumberedRoundTrip: the number a user reads is the one the engine
// resolves, through the session's list of choices.
func TestNumberedRoundTrip(t *testing.T) {
	replies := []msg.Reply{menuReply(), {Buttons: []msg.Button{{Title: "Help", Payload: "Help"}}}}
	p := NewPlain(replies)
	choices := msg.Choices(replies)
	for _, tc := range []struct{ typed, payload string }{
		{"1", "OrderPizza"}, {" 2 ", "add:margherita"}, {"3.", "add:diavola"}, {"#4", "Help"},
	} {
		ev := &msg.Event{Text: tc.typed}
		NumberedAnswer(ev)
		got, ok := msg.ResolveChoice(choices, ev.Choice)
		if !ok || got != tc.payload {
			t.Errorf("%q: resolved to %q, %v; want %q", tc.typed, got, ok, tc.payload)
		}
		if n := p.Number(tc.payload); !strings.Contains(tc.typed, string(rune('0'+n))) {
			t.Errorf("%q: Plain numbers %s as %d", tc.typed, tc.payload, n)
		}
	}
	for _, typed := range []string{"5", "0", "two", "1 pizza", "-1", "+1", "", "1000"} {
		ev := &msg.Event{Text: typed}
		NumberedAnswer(ev)
		if _, ok := msg.ResolveChoice(choices, ev.Choice); ok {
			t.Errorf("%q resolved to a choice", typed)
		}
	}
	ev := &msg.Event{Text: "1", Postback: "already"}
	NumberedAnswer(ev)
	if ev.Choice != "" {
		t.Errorf("a press was marked as a number: %+v", ev)
	}
}

func TestButtonValues(t *testing.T) {
	long := strings.Repeat("x", 70)
	for _, tc := range []struct {
		name, value, label string
		want               msg.Event
	}{
		{"option", OptionValue("Large", 64), "Large", msg.Event{Text: "Large"}},
		{"payload", PayloadValue("add:margherita", 64), "Add", msg.Event{Text: "Add", Postback: "add:margherita"}},
		{"long payload", PayloadValue(long, 64), "Add", msg.Event{Text: "Add", Choice: msg.ChoiceRef(long)}},
		{"legacy value", "Large", "", msg.Event{Text: "Large", Postback: "Large"}},
		{"legacy value with a label", "size_l", "Large", msg.Event{Text: "Large", Postback: "size_l"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.value) > 64 {
				t.Fatalf("value %q is longer than 64 bytes", tc.value)
			}
			var ev msg.Event
			Pressed(&ev, tc.value, tc.label)
			if ev.Text != tc.want.Text || ev.Postback != tc.want.Postback || ev.Choice != tc.want.Choice {
				t.Errorf("got %+v, want %+v", ev, tc.want)
			}
		})
	}
	if got, ok := msg.ResolveChoice([]string{"a", long}, msg.ChoiceRef(long)); !ok || got != long {
		t.Errorf("reference resolved to %q, %v", got, ok)
	}
	if _, ok := msg.ResolveChoice([]string{"a"}, msg.ChoiceRef(long)); ok {
		t.Error("a reference to a payload no longer offered resolved")
	}
	if v := OptionValue(strings.Repeat("é", 40), 64); len(v) > 64 || !strings.HasPrefix(v, "o:é") {
		t.Errorf("clipped option value %q (%d bytes)", v, len(v))
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"}, {"hello!", 5, "hell…"}, {"héllo wörld", 6, "héllo…"}, {"abc", 0, ""}, {"abc", 1, "…"},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	if !SafeURL("HTTPS://example.com") || SafeURL("javascript:x") || SafeURL("https://") {
		t.Error("SafeURL")
	}
}

func TestMergeJSON(t *testing.T) {
	body := []byte(`{"channel":"C1","text":"hi"}`)
	got := string(MergeJSON(body, []byte(`{"text":"over","unfurl_links":false,"channel":"C9"}`), "channel"))
	if got != `{"channel":"C1","text":"over","unfurl_links":false}` {
		t.Errorf("merged %s", got)
	}
	for _, data := range []string{``, `[1]`, `"x"`, `{bad`} {
		if got := string(MergeJSON(body, []byte(data))); got != string(body) {
			t.Errorf("data %q changed the body to %s", data, got)
		}
	}
}
