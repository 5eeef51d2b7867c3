package intents

import (
	"reflect"
	"testing"
)

func TestRoute(t *testing.T) {
	matcher := NewExampleMatcher(map[string][]string{
		"OrderPizza": {"I want a pizza", "order a large pizza"},
		"Hours":      {"when are you open", "opening hours"},
	})
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
		ev   Event
		in   RouteInput
		want Decision
	}{
		{
			name: "platform intent wins over expect and text",
			ev:   Event{Intent: "Help", Confidence: 0.9, Text: "I want a pizza"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: Decision{Intent: "Help", Source: SourcePlatform, Confidence: 0.9},
		},
		{
			name: "platform intent without handler falls through to expect",
			ev:   Event{Intent: "AMAZON.StopIntent"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: Decision{Intent: "AskSize", Source: SourceExpect},
		},
		{
			name: "expect wins over classifier",
			ev:   Event{Text: "opening hours"},
			in:   RouteInput{Expect: "AskSize", Has: all, Classifier: matcher},
			want: Decision{Intent: "AskSize", Source: SourceExpect},
		},
		{
			name: "expect without handler is ignored",
			ev:   Event{Text: "opening hours"},
			in:   RouteInput{Expect: "Gone", Has: all, Classifier: matcher},
			want: Decision{Intent: "Hours", Source: SourceClassifier, Confidence: 1},
		},
		{
			name: "exact example, case and punctuation ignored",
			ev:   Event{Text: "I WANT a pizza!"},
			in:   RouteInput{Has: all, Classifier: matcher},
			want: Decision{Intent: "OrderPizza", Source: SourceClassifier, Confidence: 1},
		},
		{
			name: "keyword overlap above threshold",
			ev:   Event{Text: "large pizza please"},
			in:   RouteInput{Has: all, Classifier: matcher, Threshold: 0.5},
			want: Decision{Intent: "OrderPizza", Source: SourceClassifier, Confidence: 2.0 / 3.0},
		},
		{
			name: "overlap below threshold goes to fallback with candidates",
			ev:   Event{Text: "pizza toppings list menu"},
			in:   RouteInput{Has: all, Classifier: matcher, Threshold: 0.5},
			want: Decision{Intent: FallbackIntent, Source: SourceFallback,
				Candidates: []Candidate{{Intent: "OrderPizza", Confidence: 0.25}}},
		},
		{
			name: "classifier match without handler goes to fallback",
			ev:   Event{Text: "opening hours"},
			in:   RouteInput{Has: handlers("fallback"), Classifier: matcher},
			want: Decision{Intent: FallbackIntent, Source: SourceFallback,
				Candidates: []Candidate{{Intent: "Hours", Confidence: 1}}},
		},
		{
			name: "no fallback handler: built-in",
			ev:   Event{Text: "tell me a joke"},
			in:   RouteInput{Has: handlers("OrderPizza"), Classifier: matcher},
			want: Decision{Source: SourceBuiltin},
		},
		{
			name: "no classifier, no handlers",
			ev:   Event{Text: "hi"},
			in:   RouteInput{},
			want: Decision{Source: SourceBuiltin},
		},
		{
			name: "empty text skips the classifier",
			ev:   Event{},
			in:   RouteInput{Has: all, Classifier: matcher},
			want: Decision{Intent: FallbackIntent, Source: SourceFallback},
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

func TestExampleMatcherDeterministic(t *testing.T) {
	data := map[string][]string{"B": {"hello there"}, "A": {"hello there"}, "C": {"hello"}}
	for i := 0; i < 20; i++ {
		got := NewExampleMatcher(data).Classify("Hello there")
		if len(got) != 1 || got[0].Intent != "A" {
			t.Fatalf("run %d: Classify = %+v, want the alphabetically first intent A", i, got)
		}
	}
	got := NewExampleMatcher(data).Classify("hello friend")
	want := []Candidate{{"C", 0.5}, {"A", 1.0 / 3.0}, {"B", 1.0 / 3.0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Classify(hello friend) = %+v, want %+v", got, want)
	}
}
