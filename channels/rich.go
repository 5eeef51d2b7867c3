package channels

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/msg"
)

// Rich replies (buttons, cards, media; see [msg.Reply]) on platforms that
// show only some of them.
//
// An adapter renders natively what its platform has and hands the rest to
// [Plain], which writes it as text that still works:
//
//   - a button with a payload becomes a numbered line, "Reply 2 for Add",
//     and the user's typed "2" comes back as that button's press;
//   - a link button becomes "Website: https://example.com";
//   - a card becomes its title, subtitle and image URL on lines of their
//     own, followed by its buttons;
//   - a media item becomes its caption and URL, "Menu: https://...".
//
// The numbers are positions in [msg.Choices] of the turn's replies (each
// reply's buttons, then its cards' buttons), whichever of them a platform
// shows natively, so that numbers stay the same however much of a turn is
// degraded. The engine keeps that list in the conversation's session after
// every turn; an adapter that shows numbered lines calls [NumberedAnswer]
// on each inbound text event, which marks a bare number as a choice
// (msg.Event.Choice), and the engine turns it into the button's payload
// (msg.Event.Postback) when the previous turn offered that many. Only the
// previous turn's buttons can be picked by number; a number that names none
// stays plain text.
//
// Platforms whose buttons carry back only a short value (Telegram's 64-byte
// callback_data, Discord's 100-character custom_id) encode it with
// [OptionValue] and [PayloadValue], and read a press with [Pressed]: a
// payload too long for the value travels as a [msg.ChoiceRef] that the
// engine resolves against the same session list.

// Native says which parts of a reply a platform shows natively; [Plain.Text]
// writes the others as text.
type Native uint8

// Parts of a reply.
const (
	NativeOptions Native = 1 << iota
	NativeButtons
	NativeCards
	NativeMedia
)

// Plain writes the parts of one turn's replies a platform cannot show as
// text. Make it with [NewPlain] over all of the turn's replies, so that
// button numbers follow [msg.Choices]. The zero value numbers nothing.
type Plain struct {
	choices []string
}

// NewPlain prepares the text forms of a turn's replies.
func NewPlain(replies []msg.Reply) Plain {
	return Plain{choices: msg.Choices(replies)}
}

// Number is the number under which a payload is offered (from 1), or 0
// when it is not (an empty payload, or beyond [msg.MaxChoices]).
func (p Plain) Number(payload string) int {
	if payload == "" {
		return 0
	}
	for i, c := range p.choices {
		if c == payload {
			return i + 1
		}
	}
	return 0
}

// Button is a button as one line of text: "Reply 1 for Order" for a
// payload, "Website: https://example.com" for a link.
func (p Plain) Button(b msg.Button) string {
	if b.URL != "" {
		if b.Title == "" {
			return b.URL
		}
		return b.Title + ": " + b.URL
	}
	if n := p.Number(b.Payload); n > 0 {
		return "Reply " + strconv.Itoa(n) + " for " + b.Title
	}
	return b.Title
}

// Buttons is one line per button.
func (p Plain) Buttons(bs []msg.Button) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, p.Button(b))
	}
	return out
}

// Card is a card as lines of text: its title, subtitle and image URL, then
// its buttons.
func (p Plain) Card(c msg.Card) []string {
	var out []string
	for _, s := range []string{c.Title, c.Subtitle, c.Image} {
		if s != "" {
			out = append(out, s)
		}
	}
	return append(out, p.Buttons(c.Buttons)...)
}

// MediaText is a media item as one line: "caption: URL", or the URL.
func MediaText(m msg.Media) string {
	if m.Caption == "" {
		return m.URL
	}
	return m.Caption + ": " + m.URL
}

// Text is reply r as text, leaving out the parts the platform shows
// natively: the text, then options (one "• option" line each), buttons,
// cards and media, each card and the media in a paragraph of their own.
// A reply with nothing left to write gives "".
func (p Plain) Text(r msg.Reply, native Native) string {
	var paras []string
	var first []string
	if r.Text != "" {
		first = append(first, r.Text)
	}
	if native&NativeOptions == 0 {
		for _, o := range r.Options {
			if o != "" {
				first = append(first, "• "+o)
			}
		}
	}
	if native&NativeButtons == 0 {
		first = append(first, p.Buttons(r.Buttons)...)
	}
	if len(first) > 0 {
		paras = append(paras, strings.Join(first, "\n"))
	}
	if native&NativeCards == 0 {
		for _, c := range r.Cards {
			if lines := p.Card(c); len(lines) > 0 {
				paras = append(paras, strings.Join(lines, "\n"))
			}
		}
	}
	if native&NativeMedia == 0 && len(r.Media) > 0 {
		lines := make([]string, 0, len(r.Media))
		for _, m := range r.Media {
			lines = append(lines, MediaText(m))
		}
		paras = append(paras, strings.Join(lines, "\n"))
	}
	return strings.Join(paras, "\n\n")
}

// NumberedAnswer marks an inbound text that is only a number ("2", "2.")
// as a choice by number (ev.Choice), for a platform whose buttons
// [Plain] wrote as numbered lines. The engine resolves it to the payload
// the previous turn offered under that number, if any.
func NumberedAnswer(ev *msg.Event) {
	if ev.Postback != "" || ev.Choice != "" {
		return
	}
	if n, ok := msg.ChoiceNumber(ev.Text); ok {
		ev.Choice = strconv.Itoa(n)
	}
}

// Prefixes of button values (see [OptionValue], [PayloadValue]).
const (
	valueOption  = "o:"
	valuePayload = "p:"
	valueRef     = "r:"
)

// OptionValue is the value of a button for a reply option (see
// msg.Reply.Options), at most max bytes: "o:" and the option, clipped.
// The press comes back as the option's text, as if typed.
func OptionValue(option string, max int) string {
	return valueOption + ClipBytes(option, max-len(valueOption))
}

// PayloadValue is the value of a button that sends payload back, at most
// max bytes (max must be at least 15): "p:" and the payload when it fits,
// else "r:" and its [msg.ChoiceRef], which the engine resolves while the
// payload is among the previous turn's choices.
func PayloadValue(payload string, max int) string {
	if len(valuePayload)+len(payload) <= max {
		return valuePayload + payload
	}
	return valueRef + msg.ChoiceRef(payload)
}

// Pressed puts on ev what a pressed button's value (made by [OptionValue]
// or [PayloadValue]) says: an option's text in ev.Text, a payload in
// ev.Postback, a reference in ev.Choice. label, the button's title when
// the platform tells it, becomes ev.Text of a press when the event has no
// text. A value without a known prefix (a button sent before this
// encoding, or one a handler built itself in channel data) is a payload,
// and also the text when there is no label, as such presses were before.
func Pressed(ev *msg.Event, value, label string) {
	switch {
	case strings.HasPrefix(value, valueOption):
		ev.Text = value[len(valueOption):]
		return
	case strings.HasPrefix(value, valuePayload):
		ev.Postback = value[len(valuePayload):]
	case strings.HasPrefix(value, valueRef):
		ev.Choice = value[len(valueRef):]
	default:
		ev.Postback = value
		if label == "" {
			label = value
		}
	}
	if ev.Text == "" {
		ev.Text = label
	}
}

// ClipBytes cuts s to at most n bytes, at a character boundary.
func ClipBytes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Truncate cuts s to at most n characters, ending a cut text with "…" so
// that the reader sees it was cut.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for j := range s {
		if count == n-1 {
			i = j
			break
		}
		count++
	}
	return s[:i] + "…"
}

// SafeURL reports whether s is a URL a platform may be asked to open or
// fetch: https or http. The sandbox checks replies already; adapters check
// again what they put into links, since a reply may also come from
// elsewhere (a scheduled push).
func SafeURL(s string) bool {
	return len(s) > 8 && strings.EqualFold(s[:8], "https://") || len(s) > 7 && strings.EqualFold(s[:7], "http://")
}

// MergeJSON merges a handler's channel data (a JSON object, see
// msg.Reply.ChannelData) into body, a JSON object an adapter built: the
// data's keys replace the body's, except the protected ones, which name
// where the message goes. Data that is no object, or a body that is none,
// leaves body as it is.
func MergeJSON(body []byte, data json.RawMessage, protected ...string) []byte {
	if len(data) == 0 {
		return body
	}
	var m, extra map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || json.Unmarshal(data, &extra) != nil || m == nil {
		return body
	}
	for k, v := range extra {
		if !slices.Contains(protected, k) {
			m[k] = v
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as the body was written: <, > and & stay as they are
	if enc.Encode(m) != nil {
		return body
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
