package voice

import (
	"testing"

	"github.com/parleyhq/parley/msg"
)

func TestNewAnswer(t *testing.T) {
	r := &msg.TurnResult{
		Decision: msg.Decision{Intent: "OrderPizza", Source: msg.SourcePlatform},
		Outcome:  msg.OutcomeHandled,
		Replies: []msg.Reply{{
			Text: "Which size?", Reprompt: "Small, medium or large?", Options: []string{"small", "large"}, Expect: "size",
		}},
	}
	a := NewAnswer(r)
	if a.Speech.SSML != "<speak>Which size?</speak>" || a.Reprompt.SSML != "<speak>Small, medium or large?</speak>" ||
		a.Expect != "size" || a.Intent != "OrderPizza" || a.End || a.Failed || a.Unhandled || a.HasSSML {
		t.Errorf("NewAnswer = %+v", a)
	}

	r.Replies = []msg.Reply{{Text: "plain", SSML: "<speak>rich <break/></speak>"}}
	if a := NewAnswer(r); a.Speech.SSML != "<speak>rich <break/></speak>" || a.Speech.Text != "rich" || !a.HasSSML {
		t.Errorf("SSML reply: %+v", a)
	}
	r.Replies = []msg.Reply{{Text: "the text", SSML: "<speak><blink>bad</blink></speak>"}}
	if a := NewAnswer(r); a.Speech.SSML != "<speak>the text</speak>" || len(a.SSMLErrors) != 1 || a.HasSSML {
		t.Errorf("invalid SSML must fall back to the text: %+v", a)
	}
	r.Replies = []msg.Reply{{SSML: "<speak>unclosed"}}
	if a := NewAnswer(r); a.Speech.Text != DefaultApology || len(a.SSMLErrors) != 1 {
		t.Errorf("invalid SSML without text must be an apology: %+v", a)
	}
	r.Replies = []msg.Reply{{Text: "a < b"}, {Text: "two", SSML: "<speak>two <break/></speak>"}}
	if a := NewAnswer(r); a.Speech.SSML != "<speak>a &lt; b two <break/></speak>" || a.Speech.Text != "a < b two" {
		t.Errorf("joined replies: %+v", a)
	}
	r.Replies = []msg.Reply{{Text: "x", Reprompt: "<speak>Still <emphasis>there</emphasis>?</speak>"}}
	if a := NewAnswer(r); a.Reprompt.SSML != "<speak>Still <emphasis>there</emphasis>?</speak>" {
		t.Errorf("SSML reprompt: %+v", a.Reprompt)
	}
}

func TestNext(t *testing.T) {
	order := Dialog{Intent: "OrderPizza", Slots: []string{"size", "crust"}, Managed: true}
	open := Dialog{Intent: "OrderPizza", Slots: []string{"size"}}
	say := FromText("something")
	tests := []struct {
		name string
		a    Answer
		d    Dialog
		want Step
		slot string
	}{
		{"failed turn", Answer{Speech: say, Failed: true, Expect: "size"}, order, Fail, ""},
		{"end", Answer{Speech: say, End: true}, order, Close, ""},
		{"no handler in a managed dialog", Answer{Speech: say, Unhandled: true}, order, Delegate, ""},
		{"no handler outside a dialog", Answer{Speech: say, Unhandled: true}, open, Listen, ""},
		{"expect a slot", Answer{Speech: say, Expect: "crust"}, order, ElicitSlot, "crust"},
		{"expect a slot, no dialog model", Answer{Speech: say, Expect: "size"}, open, ElicitSlot, "size"},
		{"yes/no about the intent", Answer{Speech: say, Expect: "OrderPizza", Options: []string{"Yes", "No"}}, order, ConfirmIntent, ""},
		{"same intent, open question", Answer{Speech: say, Expect: "OrderPizza"}, order, Listen, ""},
		{"another intent", Answer{Speech: say, Expect: "ChooseSize"}, order, Listen, ""},
		{"nothing to say in a managed dialog", Answer{}, order, Delegate, ""},
		{"nothing to say outside a dialog", Answer{}, open, Listen, ""},
		{"no platform intent", Answer{Speech: say, Expect: "size"}, Dialog{}, Listen, ""},
	}
	for _, tt := range tests {
		step, slot := tt.a.Next(tt.d)
		if step != tt.want || slot != tt.slot {
			t.Errorf("%s: Next = %v %q, want %v %q", tt.name, step, slot, tt.want, tt.slot)
		}
	}
}

func TestAmazonIntent(t *testing.T) {
	tests := map[string][2]string{
		"AMAZON.StopIntent":     {"stop", "stop"},
		"AMAZON.CancelIntent":   {"cancel", "cancel"},
		"AMAZON.HelpIntent":     {"help", "help"},
		"AMAZON.YesIntent":      {"yes", "yes"},
		"AMAZON.FallbackIntent": {"", ""},
		"FallbackIntent":        {"", ""},
		"OrderPizza":            {"OrderPizza", ""},
		"AMAZON.PauseIntent":    {"AMAZON.PauseIntent", ""},
	}
	for in, want := range tests {
		if i, txt := AmazonIntent(in); i != want[0] || txt != want[1] {
			t.Errorf("AmazonIntent(%s) = %q %q, want %q", in, i, txt, want)
		}
	}
}

func TestIntentName(t *testing.T) {
	tests := map[string]string{
		"Order Pizza":            "Order_Pizza",
		"order.status":           "order.status",
		"  Matched Intent Name ": "Matched_Intent_Name",
		"42 answers":             "I42_answers",
		"café au lait":           "caf_au_lait",
		"!!!":                    "",
	}
	for in, want := range tests {
		if got := IntentName(in); got != want {
			t.Errorf("IntentName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := IntentName(string(make([]byte, 100)) + "x"); got != "x" {
		t.Errorf("IntentName of control characters = %q", got)
	}
}
