package dialogflowcx

import (
	"encoding/json"
	"path"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/msg"
)

// ChannelDataKind is the key of a reply's channel data merged into this
// channel's webhook response.
const ChannelDataKind = "dialogflow-cx"

// choicesParam is the session parameter that carries the choices of a turn
// to the next, so that a chip's text (what a pressed chip sends) or a
// choice's number comes back as the button's payload.
const choicesParam = "parley_choices"

// Payload is a custom payload message; Parley sends Dialogflow CX
// Messenger's rich content in it.
type Payload struct {
	// RichContent is a list of visual cards, each a list of elements.
	RichContent [][]Element `json:"richContent"`
}

// Element is one Dialogflow CX Messenger rich content element: info (a
// card's title, subtitle and image), image, button (a link), or chips.
type Element struct {
	Type              string  `json:"type"`
	Title             string  `json:"title,omitempty"`
	Subtitle          string  `json:"subtitle,omitempty"`
	Text              string  `json:"text,omitempty"`
	Image             *RawURL `json:"image,omitempty"`
	RawURL            string  `json:"rawUrl,omitempty"`
	AccessibilityText string  `json:"accessibilityText,omitempty"`
	Anchor            *Anchor `json:"anchor,omitempty"`
	Options           []Chip  `json:"options,omitempty"`
}

// RawURL is an image by its public URL.
type RawURL struct {
	RawURL string `json:"rawUrl"`
}

// Anchor is a link an element opens.
type Anchor struct {
	Href string `json:"href"`
}

// Chip is one suggestion chip: its text is sent as the user's query, or it
// opens its anchor.
type Chip struct {
	Text   string  `json:"text"`
	Anchor *Anchor `json:"anchor,omitempty"`
}

// addRich adds the replies' rich content to out as one custom payload
// after the text (what CX Messenger shows; other integrations show the
// text), their undisplayable parts as a text message, and the choices they
// offer as a session parameter.
func addRich(out *WebhookResponse, res *msg.TurnResult) {
	all := rich.Choices(res.Replies)
	plain := channels.NewPlain(res.Replies)
	var cards [][]Element
	var degraded []string
	for _, r := range res.Replies {
		c, d := richContent(r, all, plain)
		cards = append(cards, c...)
		if d != "" {
			degraded = append(degraded, d)
		}
	}
	if len(cards) > 0 || len(degraded) > 0 {
		if out.FulfillmentResponse == nil {
			out.FulfillmentResponse = &FulfillmentResponse{}
		}
		if len(cards) > 0 {
			out.FulfillmentResponse.Messages = append(out.FulfillmentResponse.Messages, Message{Payload: &Payload{RichContent: cards}})
		}
		if len(degraded) > 0 {
			out.FulfillmentResponse.Messages = append(out.FulfillmentResponse.Messages,
				Message{Text: &Text{Text: []string{strings.Join(degraded, "\n")}}})
		}
	}
	if len(all) > 0 {
		if out.SessionInfo == nil {
			out.SessionInfo = &SessionInfo{Parameters: map[string]any{}}
		}
		out.SessionInfo.Parameters[choicesParam] = rich.EncodeChoices(all)
	}
}

// richContent renders one reply: its media (images, and other media as
// link buttons) and its buttons and options (link buttons and chips) as one
// visual card, each of its cards as another; what cannot be shown is
// returned as text.
func richContent(r msg.Reply, all []rich.Choice, plain channels.Plain) ([][]Element, string) {
	var (
		out      [][]Element
		first    []Element
		leftover msg.Reply
	)
	for _, m := range r.Media {
		switch {
		case !rich.WebURL(m.URL):
			leftover.Media = append(leftover.Media, m)
		case m.Type == msg.MediaImage:
			first = append(first, Element{Type: "image", RawURL: m.URL, AccessibilityText: m.Caption})
		default:
			text := strings.TrimSpace(m.Caption)
			if text == "" {
				text = mediaName(m.URL)
			}
			first = append(first, Element{Type: "button", Text: text, Anchor: &Anchor{Href: m.URL}})
		}
	}
	buttons := func(bs []msg.Button) (links []Element, chips []Chip) {
		for _, b := range bs {
			switch {
			case strings.TrimSpace(b.Title) == "":
				leftover.Buttons = append(leftover.Buttons, b)
			case b.URL != "" && rich.WebURL(b.URL):
				links = append(links, Element{Type: "button", Text: b.Title, Anchor: &Anchor{Href: b.URL}})
			case b.URL == "" && b.Payload != "":
				_, c, _ := rich.Find(all, b)
				chips = append(chips, Chip{Text: c.Title})
			default:
				leftover.Buttons = append(leftover.Buttons, b)
			}
		}
		return links, chips
	}
	links, chips := buttons(r.Buttons)
	first = append(first, links...)
	for _, o := range r.Options {
		if o != "" {
			chips = append(chips, Chip{Text: o})
		}
	}
	for _, c := range r.Cards {
		info := Element{Type: "info", Title: c.Title, Subtitle: c.Subtitle}
		switch {
		case c.Image == "":
		case rich.WebURL(c.Image):
			info.Image = &RawURL{RawURL: c.Image}
		default:
			leftover.Media = append(leftover.Media, msg.Media{Type: msg.MediaImage, URL: c.Image, Caption: c.Title})
		}
		card := []Element{info}
		links, chips := buttons(c.Buttons)
		card = append(card, links...)
		if len(chips) > 0 {
			card = append(card, Element{Type: "chips", Options: chips})
		}
		out = append(out, card)
	}
	// The reply's media and links first, then its cards, then its chips,
	// where the user answers; without cards, all in one visual card.
	if len(chips) > 0 {
		if len(r.Cards) > 0 {
			out = append(out, []Element{{Type: "chips", Options: chips}})
		} else {
			first = append(first, Element{Type: "chips", Options: chips})
		}
	}
	if len(first) > 0 {
		out = append([][]Element{first}, out...)
	}
	return out, plain.Text(leftover, 0)
}

// mediaName is the last segment of a media URL's path, the label of its
// link button.
func mediaName(link string) string {
	name := path.Base(strings.SplitN(strings.SplitN(link, "?", 2)[0], "#", 2)[0])
	if name == "" || name == "." || name == "/" {
		return link
	}
	return name
}

// offered is the choices the previous turn offered, from the session
// parameters.
func offered(w *WebhookRequest) []rich.Choice {
	raw, ok := w.SessionInfo.Parameters[choicesParam]
	if !ok {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return rich.DecodeChoices(s)
}
