package lex

import (
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// ChannelDataKind is the key of a reply's channel data merged into this
// channel's response.
const ChannelDataKind = "lex"

// choicesAttribute is the session attribute that carries the choices of a
// turn to the next, so that a pressed button's value, a title or a number
// comes back as the button's payload.
const choicesAttribute = "parley_choices"

// Limits of a response card (Lex V2 ImageResponseCard).
const (
	maxCardButtons = 5
	maxCardText    = 250 // title, subtitle, imageUrl
	maxButtonText  = 50  // a button's text and value
	maxAttribute   = 4096
)

// ImageResponseCard is a card with a title, an image and up to five
// buttons; a pressed button sends its value as the user's input.
type ImageResponseCard struct {
	Title    string       `json:"title"`
	Subtitle string       `json:"subtitle,omitempty"`
	ImageURL string       `json:"imageUrl,omitempty"`
	Buttons  []CardButton `json:"buttons,omitempty"`
}

// CardButton is one button of a response card.
type CardButton struct {
	Text  string `json:"text"`
	Value string `json:"value"`
}

// addRich renders the replies' buttons, options, cards and media. A text
// client gets response cards: each reply's text titles a card of its
// buttons and options, each card is a card, and the rest is text. A voice
// client hears the answer and then its choices by number. The choices go
// into a session attribute either way.
func addRich(r *Response, e *Event, res *msg.TurnResult) {
	all := rich.Choices(res.Replies)
	if s := rich.EncodeChoices(all); s != "" && len(s) <= maxAttribute && !r.closed() {
		if r.SessionState.SessionAttributes == nil {
			r.SessionState.SessionAttributes = map[string]string{}
		}
		r.SessionState.SessionAttributes[choicesAttribute] = s
	}
	if r.SessionState.DialogAction.Type == "Delegate" || !hasRich(res.Replies, e) {
		return
	}
	if voiceClient(e) {
		if p := rich.Spoken(all); p != "" {
			r.Messages = append(r.Messages, Message{ContentType: "PlainText", Content: voice.Truncate(p, maxMessage)})
		}
		return
	}
	var ms []Message
	p := channels.NewPlain(res.Replies)
	for _, rep := range res.Replies {
		ms = append(ms, cardMessages(rep, all, p)...)
	}
	r.Messages = ms
}

// closed reports whether the response ends the dialog, after which no
// choice can be answered.
func (r *Response) closed() bool { return r.SessionState.DialogAction.Type == "Close" }

// voiceClient reports whether the client takes audio: Lex speaks the
// messages and shows no cards.
func voiceClient(e *Event) bool { return strings.HasPrefix(e.ResponseContentType, "audio/") }

// hasRich reports whether replies hold anything a response card or a
// spoken choice shows: buttons, cards, media, and for a text client
// options.
func hasRich(replies []msg.Reply, e *Event) bool {
	for _, r := range replies {
		if len(r.Buttons) > 0 || len(r.Cards) > 0 || len(r.Media) > 0 || (!voiceClient(e) && len(r.Options) > 0) {
			return true
		}
	}
	return false
}

// cardMessages renders one reply for a text client.
func cardMessages(rep msg.Reply, all []rich.Choice, p channels.Plain) []Message {
	var (
		out      []Message
		leftover msg.Reply
	)
	text := strings.TrimSpace(rep.Text)
	if text == "" && rep.SSML != "" {
		if sp, err := voice.FromSSML(rep.SSML); err == nil {
			text = sp.Text
		}
	}
	buttons := func(bs []msg.Button) (out []CardButton) {
		for _, b := range bs {
			_, c, ok := rich.Find(all, b)
			if !ok || len(out) == maxCardButtons { // a link, or no room
				leftover.Buttons = append(leftover.Buttons, b)
				continue
			}
			out = append(out, CardButton{Text: channels.Truncate(b.Title, maxButtonText), Value: meta.Truncate(c.Title, maxButtonText)})
		}
		return out
	}
	bs := buttons(rep.Buttons)
	for _, o := range rep.Options {
		switch {
		case o == "":
		case len(bs) < maxCardButtons:
			bs = append(bs, CardButton{Text: channels.Truncate(o, maxButtonText), Value: meta.Truncate(o, maxButtonText)})
		default:
			leftover.Options = append(leftover.Options, o)
		}
	}
	switch {
	case len(bs) > 0 && text != "" && len([]rune(text)) <= maxCardText:
		out = append(out, card(&ImageResponseCard{Title: text, Buttons: bs}))
	case len(bs) > 0:
		out = append(out, plainText(text)...)
		labels := make([]string, len(bs))
		for i, b := range bs {
			labels[i] = b.Text
		}
		out = append(out, card(&ImageResponseCard{Title: meta.Truncate(strings.Join(labels, " / "), maxCardText), Buttons: bs}))
	default:
		out = append(out, plainText(text)...)
	}
	for _, c := range rep.Cards {
		rc := &ImageResponseCard{Title: meta.Truncate(strings.TrimSpace(c.Title), maxCardText), Subtitle: meta.Truncate(c.Subtitle, maxCardText)}
		if rc.Title == "" {
			rc.Title, rc.Subtitle = rc.Subtitle, ""
		}
		switch {
		case c.Image == "":
		case rich.WebURL(c.Image) && len(c.Image) <= maxCardText:
			rc.ImageURL = c.Image
		default:
			leftover.Media = append(leftover.Media, msg.Media{Type: msg.MediaImage, URL: c.Image, Caption: c.Title})
		}
		rc.Buttons = buttons(c.Buttons)
		if rc.Title == "" {
			rc.Title = "…" // Lex requires one
		}
		out = append(out, card(rc))
	}
	leftover.Media = append(leftover.Media, rep.Media...)
	return append(out, plainText(p.Text(leftover, 0))...)
}

func card(c *ImageResponseCard) Message {
	return Message{ContentType: "ImageResponseCard", ImageResponseCard: c}
}

// plainText is text as PlainText messages Lex accepts.
func plainText(text string) []Message {
	if text == "" {
		return nil
	}
	return messages(voice.FromText(text), false)
}
