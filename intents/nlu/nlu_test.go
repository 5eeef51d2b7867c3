package nlu

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/msg"
)

func TestParseExample(t *testing.T) {
	tests := []struct {
		in   string
		want Example
	}{
		{"plain text", Example{Text: "plain text"}},
		{"I want a [large](size) pizza", Example{Text: "I want a large pizza",
			Spans: []Span{{Start: 9, End: 14, Slot: "size", Value: "large"}}}},
		{"a [big](size:large) one with [2](count)", Example{Text: "a big one with 2",
			Spans: []Span{{Start: 2, End: 5, Slot: "size", Value: "large"}, {Start: 15, End: 16, Slot: "count", Value: "2"}}}},
		{"[New York](city)", Example{Text: "New York", Spans: []Span{{Start: 0, End: 8, Slot: "city", Value: "New York"}}}},
		{"not [markup] here", Example{Text: "not [markup] here"}},
		{"half [open](", Example{Text: "half [open]("}},
		{"empty [x]() slot", Example{Text: "empty [x]() slot"}},
		{"[a [b](s)", Example{Text: "[a b", Spans: []Span{{Start: 3, End: 4, Slot: "s", Value: "b"}}}},
	}
	for _, tt := range tests {
		got := ParseExample(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseExample(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseExample(f *testing.F) {
	for _, s := range []string{"I want a [large](size) pizza", "[a](b:c)", "[[]]((", "]("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := ParseExample(s)
		for _, sp := range e.Spans {
			if sp.Start < 0 || sp.End < sp.Start || sp.End > len(e.Text) {
				t.Fatalf("span %+v out of %q", sp, e.Text)
			}
		}
		if len(e.Text) > len(s) {
			t.Fatalf("text %q longer than input %q", e.Text, s)
		}
	})
}

func pizzaData() Data {
	return Data{
		Intents: map[string][]string{
			"Greet":      {"hi", "hello", "hey there", "good evening"},
			"OrderPizza": {"I want a [large](size) pizza", "I'd like to order a [small](size) pizza", "can I get a pizza", "order pizza", "[two](count) pizzas please"},
			"Hours":      {"when are you open", "what are your opening hours", "are you open now", "hours"},
			"Book":       {"book a table for [4](people) at [8pm](time)", "reserve a table [tomorrow](day)"},
		},
		Slots: map[string]Slot{
			"size":   {Values: map[string][]string{"large": {"big", "huge", "extra large"}, "medium": {"regular"}}},
			"people": {Builtin: BuiltinNumber},
			"count":  {Builtin: BuiltinNumber},
			"time":   {Builtin: BuiltinTime},
			"day":    {Builtin: BuiltinDate},
			"order":  {Regex: `(?i)order #?([A-Z]{2}\d{4})`},
		},
	}
}

func train(t testing.TB, d Data) *Model {
	t.Helper()
	m, err := Train(context.Background(), d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSlots(t *testing.T) {
	m := train(t, pizzaData())
	// Wednesday 2026-11-25, 10:00 UTC.
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		text string
		want map[string]string
	}{
		{"I want a large pizza", map[string]string{"size": "large"}},
		{"a HUGE one please", map[string]string{"size": "large"}},
		{"an extra large pizza", map[string]string{"size": "large"}},
		{"a regular pizza", map[string]string{"size": "medium"}},
		{"a small pizza", map[string]string{"size": "small"}}, // learned from markup
		{"where is order #AB1234", map[string]string{"order": "AB1234"}},
		{"table for 4", map[string]string{"people": "4", "count": "4"}},
		{"twenty five guests", map[string]string{"people": "25", "count": "25"}},
		{"one hundred and ten", map[string]string{"people": "110", "count": "110"}},
		{"a dozen pizzas", map[string]string{"people": "12", "count": "12"}},
		{"2.5 kilos", map[string]string{"people": "2.5", "count": "2.5"}},
		{"1,200 people", map[string]string{"people": "1200", "count": "1200"}},
		{"at 3pm", map[string]string{"time": "15:00"}},
		{"at 3:30 p.m.", map[string]string{"time": "15:30"}},
		{"at 12 am", map[string]string{"time": "00:00"}},
		{"at 18:45", map[string]string{"time": "18:45"}},
		{"around noon", map[string]string{"time": "12:00"}},
		{"at midnight", map[string]string{"time": "00:00"}},
		{"today", map[string]string{"day": "2026-11-25"}},
		{"tomorrow", map[string]string{"day": "2026-11-26"}},
		{"the day after tomorrow", map[string]string{"day": "2026-11-27"}},
		{"on friday", map[string]string{"day": "2026-11-27"}},
		{"wednesday", map[string]string{"day": "2026-11-25"}},
		{"next wednesday", map[string]string{"day": "2026-12-02"}},
		{"in 2 weeks", map[string]string{"day": "2026-12-09"}},
		{"on 2027-01-15", map[string]string{"day": "2027-01-15"}},
		{"on May 3rd", map[string]string{"day": "2027-05-03"}},
		{"on december 24", map[string]string{"day": "2026-12-24"}},
		{"2 pizzas on december 24 at 7pm", map[string]string{"day": "2026-12-24", "time": "19:00", "people": "2", "count": "2"}},
		{"one pizza", map[string]string{"people": "1", "count": "1"}},
		{"just one", map[string]string{"people": "1", "count": "1"}},
		{"the 1st of march 2028", map[string]string{"day": "2028-03-01"}},
		{"on 12/31", map[string]string{"day": "2026-12-31"}},
		{"nothing to see", nil},
	}
	for _, tt := range tests {
		got := m.SlotsAt(tt.text, now)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SlotsAt(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	d := pizzaData()
	a := train(t, d)
	b, err := Train(context.Background(), d, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := a.MarshalBinary()
	rb, _ := b.MarshalBinary()
	if !bytes.Equal(ra, rb) {
		t.Fatal("two trainings on the same data gave different models")
	}
	for _, text := range []string{"a big pizza", "are you open", "what's up", "zzz"} {
		if ca, cb := a.Classify(text), b.Classify(text); !reflect.DeepEqual(ca, cb) {
			t.Errorf("Classify(%q): %v vs %v", text, ca, cb)
		}
	}
	// Calibration and the nearest-intent selection run too from 1,000
	// examples and 32 intents on: a CLINC150 subset, with 1 and 2 workers.
	full, _ := clinc(t)
	sub := Data{Intents: map[string][]string{}}
	for _, name := range full.intentNames()[:60] {
		sub.Intents[name] = full.Intents[name][:20]
	}
	var models [][]byte
	for _, workers := range []int{1, 2} {
		m, err := Train(context.Background(), sub, Options{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if m.Threshold() == defaultThreshold {
			t.Error("a 1,200-example model was not calibrated")
		}
		raw, _ := m.MarshalBinary()
		models = append(models, raw)
	}
	if !bytes.Equal(models[0], models[1]) {
		t.Fatal("calibrated models differ between 1 and 2 workers")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	m := train(t, pizzaData())
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	u, err := UnmarshalModel(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := u.MarshalBinary()
	if !bytes.Equal(raw, again) {
		t.Fatal("marshal(unmarshal(b)) != b")
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, text := range []string{"I'd like a huge pizza tomorrow at 7pm", "hello", "opening hours?", "tell me a joke"} {
		if a, b := m.Classify(text), u.Classify(text); !reflect.DeepEqual(a, b) {
			t.Errorf("Classify(%q): %v before, %v after", text, a, b)
		}
		if a, b := m.SlotsAt(text, now), u.SlotsAt(text, now); !reflect.DeepEqual(a, b) {
			t.Errorf("SlotsAt(%q): %v before, %v after", text, a, b)
		}
	}
	if m.Threshold() != u.Threshold() || !reflect.DeepEqual(m.Intents(), u.Intents()) {
		t.Errorf("threshold or intents changed: %v %v / %v %v", m.Threshold(), m.Intents(), u.Threshold(), u.Intents())
	}
	// Other versions, garbage and truncations are refused, never a panic.
	other := bytes.Clone(raw)
	other[4]++
	for name, b := range map[string][]byte{"version": other, "garbage": []byte("not a model"), "empty": nil} {
		if _, err := UnmarshalModel(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
	for n := 0; n < len(raw); n += 1 + n/3 {
		if _, err := UnmarshalModel(raw[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
}

func FuzzUnmarshalModel(f *testing.F) {
	m := train(f, Data{Intents: map[string][]string{"A": {"hello there"}, "B": {"good bye"}}})
	raw, _ := m.MarshalBinary()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := UnmarshalModel(b); err == nil {
			m.Classify("hello there friend")
			m.Slots("hello")
		}
	})
}

func TestThresholdAndFallback(t *testing.T) {
	m := train(t, pizzaData())
	if c := m.Calibration(); m.Threshold() != c.Threshold || c.HeldOut == 0 || c.Threshold <= 0 || c.Threshold >= 1 {
		t.Fatalf("threshold of small data = %v, calibration %+v: want a calibrated one", m.Threshold(), c)
	}
	has := func(intent string) bool { return intent != "Book" }
	route := func(text string, threshold float64) msg.Decision {
		return intents.Route(&msg.Event{Text: text}, intents.RouteInput{Has: has, Classifier: m, Threshold: threshold})
	}
	if d := route("hello!", m.Threshold()); d.Intent != "Greet" || d.Source != msg.SourceClassifier || d.Confidence < 0.8 {
		t.Errorf("in scope: %+v", d)
	}
	// Out of scope: below the threshold, to fallback with the near misses.
	d := route("what is the weather like on mars", m.Threshold())
	if d.Intent != intents.FallbackIntent || d.Source != msg.SourceFallback || len(d.Candidates) == 0 {
		t.Fatalf("out of scope: %+v", d)
	}
	for i, c := range d.Candidates {
		if c.Confidence >= m.Threshold() || (i > 0 && c.Confidence > d.Candidates[i-1].Confidence) {
			t.Errorf("candidates not below the threshold, best first: %+v", d.Candidates)
		}
	}
	// Unknown words only: no candidates at all.
	if d := route("zxqv", m.Threshold()); d.Source != msg.SourceFallback || d.Candidates != nil {
		t.Errorf("unknown words: %+v", d)
	}
	// The data's own threshold replaces the calibrated one (a bot's
	// nlu_threshold setting, in turn, replaces both: bots.Bot.Threshold).
	d2 := pizzaData()
	d2.Threshold = 0.99
	strict := train(t, d2)
	if strict.Threshold() != 0.99 {
		t.Fatalf("data threshold = %v", strict.Threshold())
	}
	if d := route("i would like a pizza", strict.Threshold()); d.Source != msg.SourceFallback || d.Candidates[0].Intent != "OrderPizza" {
		t.Errorf("strict threshold: %+v", d)
	}
}

func TestSingleIntent(t *testing.T) {
	m := train(t, Data{Intents: map[string][]string{"Ask": {"I want a shirt", "buy a shirt"}}})
	if c := m.Classify("I want a shirt!"); len(c) != 1 || c[0].Intent != "Ask" || c[0].Confidence < 0.8 {
		t.Errorf("exact example: %v", c)
	}
	if c := m.Classify("a shirt maybe with sleeves"); len(c) != 1 || c[0].Confidence >= m.Threshold() {
		t.Errorf("partial match should fall below the threshold with a candidate: %v", c)
	}
	if c := m.Classify("green"); c != nil {
		t.Errorf("unrelated word: %v", c)
	}
}

func TestValidate(t *testing.T) {
	bad := []Data{
		{Intents: map[string][]string{"A": {"x"}}, Slots: map[string]Slot{"s": {Regex: "("}}},
		{Intents: map[string][]string{"A": {"x"}}, Slots: map[string]Slot{"s": {Builtin: "colour"}}},
		{Intents: map[string][]string{"A": {"x"}}, Slots: map[string]Slot{"s": {Builtin: "number", Regex: "x"}}},
		{Intents: map[string][]string{"A": {"x"}}, Slots: map[string]Slot{"bad name": {}}},
		{Intents: map[string][]string{"A": {"[x](bad name)"}}},
		{Intents: map[string][]string{"A": {"x"}}, Threshold: 1.5},
	}
	for i, d := range bad {
		if err := d.Validate(); err == nil {
			t.Errorf("%d: %+v accepted", i, d)
		}
	}
	if err := pizzaData().Validate(); err != nil {
		t.Error(err)
	}
	if _, err := Train(context.Background(), Data{}, Options{}); !errors.Is(err, ErrNoData) {
		t.Errorf("no data: %v", err)
	}
}

func TestTrainStopsWithContext(t *testing.T) {
	d, _ := clinc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := Train(ctx, d, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}
