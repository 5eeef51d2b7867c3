// Package rich holds what the adapters that render rich replies (buttons,
// cards, media, channel data) share beyond the degrade-to-text helper of
// package channels: the JSON merge patch that applies a reply's channel
// data, URL checks, and the choices a voice or Dialogflow platform carries
// from one turn to the next so that a pressed button, spoken title or
// keyed digit comes back as the button's payload.
//
// Everything here is a pure function, safe for concurrent use.
package rich

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/parleyhq/parley/msg"
)

// maxPatchDepth bounds the nesting a merge patch may have.
const maxPatchDepth = 32

// ErrNotObject is a merge patch (or the document it patches) that is not a
// JSON object.
var ErrNotObject = errors.New("channel data is not a JSON object")

// MergePatch applies patch to doc as a JSON merge patch (RFC 7396): the
// patch's members replace the document's, objects merge recursively, null
// deletes a member, and arrays are replaced whole. Both must be objects.
func MergePatch(doc, patch []byte) ([]byte, error) {
	var d, p map[string]any
	if err := decodeObject(doc, &d); err != nil {
		return nil, err
	}
	if err := decodeObject(patch, &p); err != nil {
		return nil, err
	}
	merged, err := merge(d, p, 0)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(merged); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func decodeObject(b []byte, into *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(into); err != nil || *into == nil {
		return ErrNotObject
	}
	return nil
}

func merge(doc map[string]any, patch map[string]any, depth int) (map[string]any, error) {
	if depth > maxPatchDepth {
		return nil, errors.New("channel data is nested too deeply")
	}
	if doc == nil {
		doc = map[string]any{}
	}
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dv, _ := doc[k].(map[string]any)
			m, err := merge(dv, pv, depth+1)
			if err != nil {
				return nil, err
			}
			doc[k] = m
		default:
			doc[k] = pv
		}
	}
	return doc, nil
}

// WebURL reports whether u is an absolute http or https URL with a host,
// one a platform can fetch or open.
func WebURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" && p.User == nil
}

// HTTPS reports whether u is an absolute https URL with a host.
func HTTPS(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "https" && p.Host != "" && p.User == nil
}

// Choice is a button that answers with a payload: what a platform without
// postbacks offers by number or title, and maps back.
type Choice struct {
	// Title answers the choice: the button's title, and a card's button
	// the card's title after it ("Order Margherita"), made unique among the
	// turn's choices by its place ("Order (2)").
	Title   string `json:"t"`
	Payload string `json:"p"`
	// Label is the button's own title, when it differs from Title: it
	// answers the choice too when no other choice has it.
	Label string `json:"l,omitempty"`
	card  string // the card's title; "" for a reply's own button
}

// Choices lists the buttons with a payload of replies in the order and
// numbering of [msg.Choices] (each reply's own buttons, then its cards'
// buttons; a payload offered twice keeps its first place), which is also
// how [channels.Plain] numbers them. Options are not choices: choosing one
// is saying it.
func Choices(replies []msg.Reply) []Choice {
	var out []Choice
	seen := map[string]bool{}
	add := func(bs []msg.Button, card string) {
		for _, b := range bs {
			if b.Payload == "" || seen[b.Payload] || len(out) == msg.MaxChoices {
				continue
			}
			seen[b.Payload] = true
			title := strings.TrimSpace(b.Title)
			if title == "" {
				title = b.Payload
			}
			out = append(out, Choice{Title: title, Payload: b.Payload, Label: b.Title, card: card})
		}
	}
	for _, r := range replies {
		add(r.Buttons, "")
		for _, c := range r.Cards {
			add(c.Buttons, strings.TrimSpace(c.Title))
		}
	}
	// A card's button names its card; titles that still repeat, their place.
	for i := range out {
		if out[i].card != "" {
			out[i].Title += " " + out[i].card
		}
	}
	defer func() {
		for i := range out {
			if out[i].Label == out[i].Title {
				out[i].Label = ""
			}
		}
	}()
	times := map[string]int{}
	for i := range out {
		k := normalize(out[i].Title)
		times[k]++
		if times[k] > 1 {
			out[i].Title += " (" + strconv.Itoa(times[k]) + ")"
		}
	}
	return out
}

// Find returns the place (from 1) and the choice of button b; ok is false
// when b is not among all (a link, or beyond [msg.MaxChoices]). A payload
// offered twice is one choice, the first.
func Find(all []Choice, b msg.Button) (n int, c Choice, ok bool) {
	if b.Payload == "" || b.URL != "" {
		return 0, Choice{}, false
	}
	for i, c := range all {
		if c.Payload == b.Payload {
			return i + 1, c, true
		}
	}
	return 0, Choice{}, false
}

// Resolve maps an answer to the payload of the choice it names: its number
// (digits, or a number word up to ten, as speech recognition writes them),
// its title, the start (12 characters or more) of exactly one title, or the
// button's own title when only one choice has it, ignoring case, spaces and
// final punctuation.
func Resolve(answer string, choices []Choice) (string, bool) {
	a := normalize(answer)
	if a == "" || len(choices) == 0 {
		return "", false
	}
	if n, ok := number(a); ok {
		if n >= 1 && n <= len(choices) {
			return choices[n-1].Payload, true
		}
		return "", false
	}
	for _, c := range choices {
		if normalize(c.Title) == a {
			return c.Payload, true
		}
	}
	// A platform that cuts long titles (to 20 characters, say) sends the
	// cut title: a long enough start of exactly one title answers it.
	found := -1
	for i, c := range choices {
		if len([]rune(a)) >= minPrefix && strings.HasPrefix(normalize(c.Title), a) {
			if found >= 0 {
				return "", false
			}
			found = i
		}
	}
	if found >= 0 {
		return choices[found].Payload, true
	}
	// A button's own title, when no other choice has it.
	found = -1
	for i, c := range choices {
		if c.Label != "" && normalize(c.Label) == a {
			if found >= 0 {
				return "", false
			}
			found = i
		}
	}
	if found >= 0 {
		return choices[found].Payload, true
	}
	return "", false
}

// minPrefix is the shortest start of a title that answers it.
const minPrefix = 12

var numberWords = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
	"six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}

func number(a string) (int, bool) {
	a = strings.TrimPrefix(a, "number ")
	if n, err := strconv.Atoi(a); err == nil {
		return n, true
	}
	n, ok := numberWords[a]
	return n, ok
}

// normalize lowercases s, collapses spaces and drops final punctuation.
func normalize(s string) string {
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	return strings.TrimSpace(strings.TrimRightFunc(s, unicode.IsPunct))
}

// EncodeChoices is choices as compact JSON, for a platform's session
// parameters; "" when there are none.
func EncodeChoices(choices []Choice) string {
	if len(choices) == 0 {
		return ""
	}
	b, _ := json.Marshal(choices)
	return string(b)
}

// DecodeChoices reads what EncodeChoices wrote; nil when s is not that.
func DecodeChoices(s string) []Choice {
	var in []Choice
	if s == "" || json.Unmarshal([]byte(s), &in) != nil {
		return nil
	}
	out := in[:0]
	for _, c := range in {
		if c.Payload != "" && len(out) < msg.MaxChoices {
			out = append(out, c)
		}
	}
	return out
}
