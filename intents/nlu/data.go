package nlu

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/parleyhq/parley/intents"
)

// OutOfScope is the intent whose examples teach the classifier what a bot does
// not handle. It is the bot's fallback handler, so a message that looks like
// these examples goes there; it is never returned as a candidate.
const OutOfScope = intents.FallbackIntent

// Data is a bot's NLU training data, as uploaded with PUT /v1/bots/{bot}/nlu:
//
//	{"intents": {"OrderPizza": ["I want a [large](size) pizza", "order pizza"]},
//	 "slots": {"size": {"values": {"large": ["big", "huge"], "small": []}},
//	           "count": {"builtin": "number"}},
//	 "threshold": 0.4}
type Data struct {
	// Intents maps an intent name to example utterances. Examples may mark
	// slot values as [text](slot) or [text](slot:value). Examples under
	// "fallback" are out-of-scope examples.
	Intents map[string][]string `json:"intents"`
	// Slots defines slot types by name. A slot that is only marked up in
	// examples is a list of the marked values.
	Slots map[string]Slot `json:"slots,omitempty"`
	// Threshold is the minimum confidence for routing a message to an intent;
	// zero means the model's default. A bot's nlu_threshold setting overrides it.
	Threshold float64 `json:"threshold,omitempty"`
}

// Slot is one slot type. At most one of Values, Regex and Builtin is set.
type Slot struct {
	// Values maps each canonical value to its synonyms; any of them in a
	// message (whole words, ignoring case) yields the canonical value.
	Values map[string][]string `json:"values,omitempty"`
	// Regex is a regular expression (RE2 syntax); its first match, or the
	// first capturing group when it has one, is the value.
	Regex string `json:"regex,omitempty"`
	// Builtin is "number" (digits or English number words, as a decimal
	// number), "date" (as YYYY-MM-DD) or "time" (as HH:MM, 24-hour).
	Builtin string `json:"builtin,omitempty"`
}

// Built-in slot types.
const (
	BuiltinNumber = "number"
	BuiltinDate   = "date"
	BuiltinTime   = "time"
)

// Limits on NLU data, so that training stays bounded in time and memory.
const (
	MaxExamples      = 20000
	MaxIntents       = 500
	MaxExampleLength = 512
	MaxSlots         = 100
	MaxSlotValues    = 10000
	MaxRegexLength   = 1024
)

var slotName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// Validate checks sizes, slot names and definitions. Intent names are the
// caller's to check.
func (d Data) Validate() error {
	total := 0
	for name, examples := range d.Intents {
		if name == "" {
			return errors.New("empty intent name")
		}
		for _, ex := range examples {
			if len(ex) > MaxExampleLength {
				return fmt.Errorf("intent %s: example longer than %d bytes", name, MaxExampleLength)
			}
			for _, sp := range ParseExample(ex).Spans {
				if !slotName.MatchString(sp.Slot) {
					return fmt.Errorf("intent %s: example %q: bad slot name %q", name, ex, sp.Slot)
				}
			}
		}
		total += len(examples)
	}
	if total > MaxExamples {
		return fmt.Errorf("at most %d examples in all, got %d", MaxExamples, total)
	}
	if len(d.Intents) > MaxIntents {
		return fmt.Errorf("at most %d intents, got %d", MaxIntents, len(d.Intents))
	}
	if len(d.Slots) > MaxSlots {
		return fmt.Errorf("at most %d slots, got %d", MaxSlots, len(d.Slots))
	}
	values := 0
	for name, s := range d.Slots {
		if !slotName.MatchString(name) {
			return fmt.Errorf("slot name %q must be a letter or '_' then up to 63 letters, digits, '_', '.' or '-'", name)
		}
		kinds := 0
		if len(s.Values) > 0 {
			kinds++
		}
		if s.Regex != "" {
			kinds++
			if len(s.Regex) > MaxRegexLength {
				return fmt.Errorf("slot %s: regex longer than %d bytes", name, MaxRegexLength)
			}
			if _, err := regexp.Compile(s.Regex); err != nil {
				return fmt.Errorf("slot %s: %w", name, err)
			}
		}
		if s.Builtin != "" {
			kinds++
			switch s.Builtin {
			case BuiltinNumber, BuiltinDate, BuiltinTime:
			default:
				return fmt.Errorf("slot %s: builtin must be number, date or time, not %q", name, s.Builtin)
			}
		}
		if kinds > 1 {
			return fmt.Errorf("slot %s: set only one of values, regex and builtin", name)
		}
		for v, syn := range s.Values {
			values += 1 + len(syn)
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("slot %s: empty value", name)
			}
		}
	}
	if values > MaxSlotValues {
		return fmt.Errorf("at most %d slot values and synonyms in all, got %d", MaxSlotValues, values)
	}
	if d.Threshold < 0 || d.Threshold > 1 {
		return errors.New("threshold must be between 0 and 1")
	}
	return nil
}

// Examples returns the number of example utterances.
func (d Data) Examples() int {
	n := 0
	for _, ex := range d.Intents {
		n += len(ex)
	}
	return n
}

// intentNames returns the intent names with at least one example, sorted.
func (d Data) intentNames() []string {
	names := make([]string, 0, len(d.Intents))
	for name, ex := range d.Intents {
		if len(ex) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Example is an utterance with its slot markup parsed.
type Example struct {
	// Text is the utterance without markup.
	Text string
	// Spans are the marked slot values, in order.
	Spans []Span
}

// Span is one slot value marked in an example.
type Span struct {
	// Start and End are byte offsets of the value in Example.Text.
	Start, End int
	// Slot is the slot name.
	Slot string
	// Value is the canonical value: the text itself unless written as
	// [text](slot:value).
	Value string
}

// ParseExample removes slot markup from an example: "I want a [big](size:large)
// pizza" is "I want a big pizza" with the span "big" of slot size, value
// large. Brackets that are not followed by "(name)" stay as they are.
func ParseExample(s string) Example {
	if !strings.Contains(s, "](") {
		return Example{Text: s}
	}
	var b strings.Builder
	var spans []Span
	for {
		open := strings.IndexByte(s, '[')
		if open < 0 {
			break
		}
		rel := strings.Index(s[open:], "](")
		if rel < 0 {
			break
		}
		closeText := open + rel
		end := strings.IndexByte(s[closeText+2:], ')')
		inner := s[open+1 : closeText]
		if end < 0 || strings.ContainsAny(inner, "[]") {
			// Not markup: keep the bracket and look further on.
			b.WriteString(s[:open+1])
			s = s[open+1:]
			continue
		}
		spec := s[closeText+2 : closeText+2+end]
		slot, value, _ := strings.Cut(spec, ":")
		slot, value = strings.TrimSpace(slot), strings.TrimSpace(value)
		if slot == "" {
			b.WriteString(s[:open+1])
			s = s[open+1:]
			continue
		}
		if value == "" {
			value = inner
		}
		b.WriteString(s[:open])
		start := b.Len()
		b.WriteString(inner)
		spans = append(spans, Span{Start: start, End: b.Len(), Slot: slot, Value: value})
		s = s[closeText+2+end+1:]
	}
	b.WriteString(s)
	return Example{Text: b.String(), Spans: spans}
}
