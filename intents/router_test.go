package intents

import (
	"reflect"
	"testing"

	"github.com/parleyhq/parley/msg"
)

// fakeClassifier answers fixed candidates per text.
type fakeClassifier map[string][]msg.Candidate

func (f fakeClassifier) Classify(text string) []msg.Candidate { return f[text] }

func TestRoute(t *testing.T) {
	matcher := fakeClassifier{
		"I want a pizza":           {{Intent: "OrderPizza", Confidence: 0.9}},
		"opening hours":            {{Intent: "Hours", Confidence: 1}},
		"I WANT a pizza!":          {{Intent: "OrderPizza", Confidence: 1}},
		"large pizza please":       {{Intent: "OrderPizza", Confidence: 2.0 / 3.0}},
		"pizza toppings list menu": {{Intent: "OrderPizza", Confidence: 0.25}},
		"order or hours":           {{Intent: "Gone", Confidence: 0.8}, {Intent: "Hours", Confidence: 0.6}},
	}
	handlers := func(names ...string) func(string) bool {
		set := make(map[string]bool)
		for _, n := range names {
			set[n] = true
		}
		return func(s string) bool { return set[s] }
	}
	all := handlers("OrderPizza", "Hours", "AskSize", "fallback", "Help")

	tests := []struct {
		name string
		ev   msg.Event
		in   RouteInput
		want msg.Decision
	}{
		{
			name: "platform intent wins over expect and text",
			ev:   msg.Event{Intent: "Help", Confidence: 0.9, Text: "I want a pizza"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "Help", Source: msg.SourcePlatform, Confidence: 0.9},
		},
		{
			name: "platform intent without handler falls through to expect",
			ev:   msg.Event{Intent: "AMAZON.StopIntent"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "AskSize", Source: msg.SourceExpect},
		},
		{
			name: "postback naming an intent wins over expect and text",
			ev:   msg.Event{Postback: "Hours", Text: "I want a pizza"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "Hours", Source: msg.SourcePostback, Confidence: 1},
		},
		{
			name: "platform intent wins over postback",
			ev:   msg.Event{Intent: "Help", Confidence: 0.9, Postback: "Hours"},
			in:   RouteInput{Has: all},
			want: msg.Decision{Intent: "Help", Source: msg.SourcePlatform, Confidence: 0.9},
		},
		{
			name: "postback that is no intent goes to expect",
			ev:   msg.Event{Postback: "add:margherita", Text: "Add"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "AskSize", Source: msg.SourceExpect},
		},
		{
			name: "postback that is no intent is classified, not its text",
			ev:   msg.Event{Postback: "opening hours", Text: "I want a pizza"},
			in:   RouteInput{Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "Hours", Source: msg.SourceClassifier, Confidence: 1},
		},
		{
			name: "postback without a handler or a match falls back",
			ev:   msg.Event{Postback: "Gone"},
			in:   RouteInput{Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "fallback", Source: msg.SourceFallback},
		},
		{
			name: "expect wins over classifier",
			ev:   msg.Event{Text: "opening hours"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "AskSize", Source: msg.SourceExpect},
		},
		{
			name: "expect without handler is ignored",
			ev:   msg.Event{Text: "opening hours"},
			in:   RouteInput{Expect: "Gone", Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "Hours", Source: msg.SourceClassifier, Confidence: 1},
		},
		{
			name: "confident match",
			ev:   msg.Event{Text: "I WANT a pizza!"},
			in:   RouteInput{Has: all, Classifier: matcher},
			want: msg.Decision{Intent: "OrderPizza", Source: msg.SourceClassifier, Confidence: 1},
		},
		{
			name: "match above threshold",
			ev:   msg.Event{Text: "large pizza please"},
			in:   RouteInput{Has: all, Classifier: matcher, Threshold: 0.5},
			want: msg.Decision{Intent: "OrderPizza", Source: msg.SourceClassifier, Confidence: 2.0 / 3.0},
		},
		{
			name: "match below threshold goes to fallback with candidates",
			ev:   msg.Event{Text: "pizza toppings list menu"},
			in:   RouteInput{Has: all, Classifier: matcher, Threshold: 0.5},
			want: msg.Decision{Intent: FallbackIntent, Source: msg.SourceFallback,
				Candidates: []msg.Candidate{{Intent: "OrderPizza", Confidence: 0.25}}},
		},
		{
			name: "classifier match without handler goes to fallback",
			ev:   msg.Event{Text: "opening hours"},
			in:   RouteInput{Has: handlers("fallback"), Classifier: matcher},
			want: msg.Decision{Intent: FallbackIntent, Source: msg.SourceFallback,
				Candidates: []msg.Candidate{{Intent: "Hours", Confidence: 1}}},
		},
		{
			name: "first candidate with a handler above the threshold",
			ev:   msg.Event{Text: "order or hours"},
			in:   RouteInput{Has: all, Classifier: matcher, Threshold: 0.5},
			want: msg.Decision{Intent: "Hours", Source: msg.SourceClassifier, Confidence: 0.6},
		},
		{
			name: "no fallback handler: built-in",
			ev:   msg.Event{Text: "tell me a joke"},
			in:   RouteInput{Has: handlers("OrderPizza"), Classifier: matcher},
			want: msg.Decision{Source: msg.SourceBuiltin},
		},
		{
			name: "no classifier, no handlers",
			ev:   msg.Event{Text: "hi"},
			in:   RouteInput{},
			want: msg.Decision{Source: msg.SourceBuiltin},
		},
		{
			name: "empty text skips the classifier",
			ev:   msg.Event{},
			in:   RouteInput{Has: all, Classifier: matcher},
			want: msg.Decision{Intent: FallbackIntent, Source: msg.SourceFallback},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Route(&tt.ev, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Route() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
