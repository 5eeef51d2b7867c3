package dialogflow

import (
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/msg"
)

// ChannelDataKind is the key of a reply's channel data merged into this
// channel's webhook response.
const ChannelDataKind = "dialogflow"

// Limits of the rich messages, those of Facebook Messenger, the strictest
// of Dialogflow's integrations that show them.
const (
	maxQuickReplies = 13
	maxQuickTitle   = 20
	maxCardButtons  = 3
	maxCardText     = 80
)

// choicesContext is the output context that carries the choices of a turn
// to the next, so that a button's title (what a pressed button sends) or
// number comes back as its payload. Its lifespan is 2: it is still listed
// in the next request's outputContexts, after that query used one.
const (
	choicesContext  = "parley_choices"
	choicesLifespan = 2
)

// Image is an image message.
type Image struct {
	ImageURI          string `json:"imageUri"`
	AccessibilityText string `json:"accessibilityText,omitempty"`
}

// QuickReplies are suggestions whose title is sent as the user's query.
type QuickReplies struct {
	Title        string   `json:"title,omitempty"`
	QuickReplies []string `json:"quickReplies"`
}

// Card is a card with buttons; a button's postback is the text sent as
// the user's query, or a URL to open.
type Card struct {
	Title    string       `json:"title,omitempty"`
	Subtitle string       `json:"subtitle,omitempty"`
	ImageURI string       `json:"imageUri,omitempty"`
	Buttons  []CardButton `json:"buttons,omitempty"`
}

// CardButton is one button of a card.
type CardButton struct {
	Text     string `json:"text"`
	Postback string `json:"postback"`
}

// platforms maps the integration a request came from
// (originalDetectIntentRequest.source) to Dialogflow's platform name, for
// the integrations that show rich messages.
var platforms = map[string]string{
	"facebook": "FACEBOOK", "slack": "SLACK", "telegram": "TELEGRAM", "line": "LINE",
	"kik": "KIK", "skype": "SKYPE", "viber": "VIBER", "hangouts": "GOOGLE_HANGOUTS",
}

// addRich adds the replies' rich messages to out: for every platform (API
// callers, the simulator) and, when the request came through an
// integration that shows them, for that platform with each reply's text
// before its rich messages (an integration takes its own platform's
// messages instead of the default ones). The choices offered go into an
// output context.
func addRich(out *WebhookResponse, w *WebhookRequest, replies []msg.Reply) {
	all := rich.Choices(replies)
	plain := channels.NewPlain(replies)
	var general, own []Message
	platform := platforms[strings.ToLower(w.OriginalDetectIntentRequest.Source)]
	for _, r := range replies {
		ms := richMessages(r, all, plain)
		for _, m := range ms {
			if m.QuickReplies != nil {
				m.QuickReplies = &QuickReplies{QuickReplies: m.QuickReplies.QuickReplies} // the title is the text
			}
			general = append(general, m)
		}
		if platform == "" || len(ms) == 0 && r.Text == "" {
			continue
		}
		text := strings.TrimSpace(r.Text)
		if text != "" && !(len(ms) == 1 && ms[0].QuickReplies != nil) { // quick replies alone carry the text
			own = append(own, Message{Text: &Text{Text: []string{text}}})
		}
		own = append(own, ms...)
	}
	out.OutputContexts = contexts(w, all)
	if len(general) == 0 {
		return
	}
	out.FulfillmentMessages = append(out.FulfillmentMessages, general...)
	for _, m := range own {
		m.Platform = platform
		out.FulfillmentMessages = append(out.FulfillmentMessages, m)
	}
}

// richMessages renders one reply's buttons, options, cards and media; what
// they cannot show is a text message.
func richMessages(r msg.Reply, all []rich.Choice, plain channels.Plain) []Message {
	var (
		out      []Message
		leftover msg.Reply
		quick    []string
	)
	// Payload buttons and options are quick replies: a tap sends the title,
	// which the next request resolves to the payload.
	var links []CardButton
	for _, b := range r.Buttons {
		switch {
		case b.Title == "":
			leftover.Buttons = append(leftover.Buttons, b)
		case b.URL != "" && rich.WebURL(b.URL):
			links = append(links, CardButton{Text: channels.Truncate(b.Title, maxQuickTitle), Postback: b.URL})
		case b.URL == "" && b.Payload != "" && len(quick) < maxQuickReplies:
			_, ch, _ := rich.Find(all, b)
			quick = append(quick, channels.Truncate(ch.Title, maxQuickTitle))
		default:
			leftover.Buttons = append(leftover.Buttons, b)
		}
	}
	for _, o := range r.Options {
		switch {
		case o == "":
		case len(quick) < maxQuickReplies:
			quick = append(quick, channels.Truncate(o, maxQuickTitle))
		default:
			leftover.Options = append(leftover.Options, o)
		}
	}
	for len(links) > 0 { // links as cards of buttons
		n := min(len(links), maxCardButtons)
		out = append(out, Message{Card: &Card{Title: links[0].Text, Buttons: links[:n]}})
		links = links[n:]
	}
	for _, m := range r.Media {
		if m.Type == msg.MediaImage && rich.WebURL(m.URL) {
			out = append(out, Message{Image: &Image{ImageURI: m.URL, AccessibilityText: m.Caption}})
		} else {
			leftover.Media = append(leftover.Media, m)
		}
	}
	for _, c := range r.Cards {
		card := &Card{Title: channels.Truncate(c.Title, maxCardText), Subtitle: channels.Truncate(c.Subtitle, maxCardText)}
		switch {
		case c.Image == "":
		case rich.WebURL(c.Image):
			card.ImageURI = c.Image
		default:
			leftover.Media = append(leftover.Media, msg.Media{Type: msg.MediaImage, URL: c.Image, Caption: c.Title})
		}
		for _, b := range c.Buttons {
			switch {
			case b.Title == "" || len(card.Buttons) == maxCardButtons:
				leftover.Buttons = append(leftover.Buttons, b)
			case b.URL != "" && rich.WebURL(b.URL):
				card.Buttons = append(card.Buttons, CardButton{Text: channels.Truncate(b.Title, maxQuickTitle), Postback: b.URL})
			case b.URL == "" && b.Payload != "":
				_, ch, _ := rich.Find(all, b)
				card.Buttons = append(card.Buttons, CardButton{Text: channels.Truncate(b.Title, maxQuickTitle), Postback: ch.Title})
			default:
				leftover.Buttons = append(leftover.Buttons, b)
			}
		}
		out = append(out, Message{Card: card})
	}
	if t := plain.Text(leftover, 0); t != "" {
		out = append(out, Message{Text: &Text{Text: []string{t}}})
	}
	if len(quick) > 0 {
		title := strings.TrimSpace(r.Text)
		if title == "" {
			title = strings.Join(quick, " / ")
		}
		out = append(out, Message{QuickReplies: &QuickReplies{Title: meta.Truncate(title, 640), QuickReplies: quick}})
	}
	return out
}

// context is one output context as Dialogflow sends and takes it.
type context struct {
	Name          string         `json:"name"`
	LifespanCount int            `json:"lifespanCount"`
	Parameters    map[string]any `json:"parameters,omitempty"`
}

// offered is the choices the previous turn offered, from the request's
// output contexts.
func offered(w *WebhookRequest) []rich.Choice {
	for _, raw := range w.QueryResult.OutputContexts {
		var c context
		if json.Unmarshal(raw, &c) != nil || !isChoices(c.Name) || c.LifespanCount <= 0 {
			continue
		}
		if s, ok := c.Parameters["choices"].(string); ok {
			return rich.DecodeChoices(s)
		}
	}
	return nil
}

func isChoices(name string) bool { return strings.HasSuffix(name, "/contexts/"+choicesContext) }

// contexts is the response's output contexts: nil (leave Dialogflow's as
// they are) unless choices are offered or the previous turn's must go.
// Dialogflow takes a response's output contexts as the session's whole set,
// so the request's others are sent back unchanged.
func contexts(w *WebhookRequest, all []rich.Choice) []json.RawMessage {
	var out []json.RawMessage
	had := false
	for _, raw := range w.QueryResult.OutputContexts {
		var c context
		if json.Unmarshal(raw, &c) == nil && isChoices(c.Name) {
			had = true
			continue
		}
		out = append(out, raw)
	}
	name := strings.TrimRight(w.Session, "/") + "/contexts/" + choicesContext
	switch {
	case len(all) > 0:
		c, _ := json.Marshal(context{Name: name, LifespanCount: choicesLifespan,
			Parameters: map[string]any{"choices": rich.EncodeChoices(all)}})
		return append(out, c)
	case had:
		c, _ := json.Marshal(context{Name: name, LifespanCount: 0})
		return append(out, c)
	}
	return nil
}
