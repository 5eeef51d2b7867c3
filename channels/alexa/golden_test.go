package alexa

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// TestGolden parses each real request in testdata (signed with the local
// PKI), renders a typical answer, and compares both with the golden file.
func TestGolden(t *testing.T) {
	p := newPKI(t)
	a := p.adapter()
	cases := []struct {
		name   string
		answer func(ev *msg.Event) *msg.TurnResult
	}{
		{"launch_request", golden.Builtin},
		{"intent_request", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "GetWeatherIntent", msg.Reply{
				Text: "It is sunny in Seattle.", SSML: "<speak>It is <emphasis>sunny</emphasis> in Seattle.</speak>",
				Reprompt: "Anything else?"})
		}},
		{"intent_entity_resolution", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "OrderPizza", msg.Reply{Text: "A large one. Thin or thick crust?",
				Reprompt: "Thin or thick?", Options: []string{"thin", "thick"}, Expect: "crust"})
		}},
		{"intent_multiple_values", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "AddToppings", msg.Reply{Text: "Mushroom and olive it is."})
		}},
		{"confirm_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "OrderPizza", msg.Reply{Text: "A large thin pizza. Shall I order it?",
				Options: []string{"yes", "no"}, Expect: "OrderPizza"})
		}},
		{"dialog_delegate", golden.Builtin},
		{"help_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "help", msg.Reply{Text: "You can order a pizza or ask for opening hours."})
		}},
		{"stop_intent", golden.Builtin},
		{"cancel_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "cancel", msg.Reply{Text: "Order cancelled. Bye!", EndConversation: true})
		}},
		{"fallback_intent", golden.Builtin},
		{"yes_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Confirm", msg.Reply{Text: "Ordered!", EndConversation: true})
		}},
		{"handler_error", func(ev *msg.Event) *msg.TurnResult {
			return golden.Failed(ev, "GetWeatherIntent", msg.OutcomeTimeout)
		}},
		{"invalid_ssml", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "GetWeatherIntent", msg.Reply{Text: "Rain in Oslo.",
				SSML: "<speak>Rain in <city>Oslo</speak>"})
		}},
		// A Standard card with the first card's image; the rest spoken and
		// shown as the card's text.
		{"rich_card", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "help", msg.Reply{Text: "Here is our menu.",
				Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
				Cards: []msg.Card{{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
					Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
					{Title: "Diavola", Image: "https://example.com/d.jpg"}},
				Media:       []msg.Media{{Type: msg.MediaAudio, URL: "https://example.com/jingle.mp3", Caption: "Our jingle"}},
				ChannelData: map[string]json.RawMessage{"alexa": json.RawMessage(`{"directives":[{"type":"Alexa.Presentation.APL.RenderDocument","token":"menu"}],"shouldEndSession":true}`)}})
		}},
		// An http image cannot be shown: the first https one is.
		{"rich_media", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "welcome", msg.Reply{Text: "Welcome!",
				Media: []msg.Media{{Type: msg.MediaImage, URL: "http://example.com/old.png", Caption: "Old"},
					{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"}}})
		}},
		{"session_ended_request", golden.Builtin},
		{"session_ended_error", golden.Builtin},
		{"exception_encountered", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := p.signedRequest(t, golden.Read(t, c.name+".json"))
			in, err := a.Parse(req)
			if err != nil {
				t.Fatal(err)
			}
			if c.answer == nil {
				if len(in.Events) != 0 || in.Response == nil {
					t.Fatalf("want an immediate answer, got %+v", in)
				}
				golden.Check(t, c.name, golden.Render(nil, in.Response))
				return
			}
			if len(in.Events) != 1 {
				t.Fatalf("got %d events", len(in.Events))
			}
			ev := in.Events[0]
			resp, err := a.Render(req, []*msg.TurnResult{c.answer(ev)})
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, c.name, golden.Render(ev, resp))
		})
	}
}
