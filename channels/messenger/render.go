package messenger

import (
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/msg"
)

// ChannelDataKind is the key of a reply's channel data merged into this
// channel's messages.
const ChannelDataKind = "messenger"

// Message is one Send API request.
type Message struct {
	Recipient     Recipient `json:"recipient"`
	MessagingType string    `json:"messaging_type"`
	Message       Content   `json:"message"`
	// Patch is the reply's channel data, merged into the request's JSON
	// (RFC 7396) by Body.
	Patch json.RawMessage `json:"-"`
}

// Body is the request's JSON, with the channel data merged in.
func (m Message) Body() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil || len(m.Patch) == 0 {
		return b, err
	}
	return rich.MergePatch(b, m.Patch)
}

// Recipient is whom a message goes to.
type Recipient struct {
	ID string `json:"id"`
}

// Content is a message: text or an attachment, and quick replies.
type Content struct {
	Text         string       `json:"text,omitempty"`
	Attachment   *Attachment  `json:"attachment,omitempty"`
	QuickReplies []QuickReply `json:"quick_replies,omitempty"`
}

// Attachment is media by URL, or a template.
type Attachment struct {
	// Type is image, audio, video, file or template.
	Type    string  `json:"type"`
	Payload Payload `json:"payload"`
}

// Payload is a media attachment's URL, or a template.
type Payload struct {
	URL          string    `json:"url,omitempty"`
	TemplateType string    `json:"template_type,omitempty"`
	Text         string    `json:"text,omitempty"`
	Buttons      []Button  `json:"buttons,omitempty"`
	Elements     []Element `json:"elements,omitempty"`
}

// Button is a postback button (its payload, made by
// [channels.PayloadValue], comes back as a postback) or a web_url button
// (it opens the URL).
type Button struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Element is one card of a generic template.
type Element struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle,omitempty"`
	ImageURL string   `json:"image_url,omitempty"`
	Buttons  []Button `json:"buttons,omitempty"`
}

// QuickReply is one quick-reply button: an option (its payload, made by
// [channels.OptionValue], comes back as the user's text) or a reply's
// button (its payload, made by [channels.PayloadValue], comes back as a
// postback).
type QuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// Messages renders a turn's replies as Send API requests. A reply to a
// user's message is messaging type RESPONSE; a message Parley starts (a
// schedule) is UPDATE. Each reply is rendered natively where Messenger
// can show it (see [renderer.reply]) and the rest is degraded to text.
func Messages(res *msg.TurnResult) []Message {
	to := res.Conversation
	if to == "" && res.Event != nil {
		to = res.Event.Conversation
	}
	kind := "UPDATE"
	if res.Event != nil && len(res.Event.Raw) > 0 {
		kind = "RESPONSE"
	}
	r := renderer{to: to, kind: kind, instagram: instagram(res.Event), plain: channels.NewPlain(res.Replies)}
	var out []Message
	for _, rep := range res.Replies {
		out = append(out, r.reply(rep)...)
	}
	return out
}

// renderer renders replies to one recipient.
type renderer struct {
	to, kind  string
	instagram bool           // Instagram shows no file attachments
	plain     channels.Plain // the turn's buttons, numbered for text
}

func (r renderer) message(c Content) Message {
	return Message{Recipient: Recipient{ID: r.to}, MessagingType: r.kind, Message: c}
}

// reply renders one reply as messages, in order: the text (a button
// template when it has buttons), the media, the cards (generic templates of
// up to ten elements), and a text of what could not be shown natively. The
// options, and the postback buttons that did not fit a template, are quick
// replies under the last message; the channel data is merged into it.
func (r renderer) reply(rep msg.Reply) []Message {
	var (
		out      []Message
		quick    []QuickReply // postback buttons beyond the templates
		leftover msg.Reply    // what is degraded to text
	)
	overflow := func(bs []msg.Button) {
		for _, b := range bs {
			if b.URL == "" && len(quick) < maxQuickReplies {
				quick = append(quick, QuickReply{ContentType: "text",
					Title: channels.Truncate(b.Title, maxQuickTitle), Payload: channels.PayloadValue(b.Payload, maxPayload)})
			} else {
				leftover.Buttons = append(leftover.Buttons, b)
			}
		}
	}

	// The text, with the reply's buttons.
	ok, bad := buttons(rep.Buttons)
	leftover.Buttons = append(leftover.Buttons, bad...)
	fit, rest := template(ok)
	text := strings.TrimSpace(rep.Text)
	switch {
	case len(fit) > 0 && len([]rune(text)) > maxTemplateText:
		// Too long for a template: the text alone, the buttons as quick
		// replies or links.
		out = append(out, r.message(Content{Text: meta.Truncate(text, maxText)}))
		overflow(ok)
	case len(fit) > 0:
		if text == "" {
			text = titles(fit)
		}
		out = append(out, r.message(Content{Attachment: &Attachment{Type: "template",
			Payload: Payload{TemplateType: "button", Text: text, Buttons: fit}}}))
		overflow(rest)
	case text != "":
		out = append(out, r.message(Content{Text: meta.Truncate(text, maxText)}))
		overflow(rest)
	default:
		overflow(rest)
	}

	// Media, each an attachment; a caption is a text message after it.
	for _, m := range rep.Media {
		kind := attachmentType(m.Type, r.instagram)
		if kind == "" || !rich.WebURL(m.URL) {
			leftover.Media = append(leftover.Media, m)
			continue
		}
		out = append(out, r.message(Content{Attachment: &Attachment{Type: kind, Payload: Payload{URL: m.URL}}}))
		if c := strings.TrimSpace(m.Caption); c != "" {
			out = append(out, r.message(Content{Text: meta.Truncate(c, maxText)}))
		}
	}

	// Cards, ten to a carousel.
	var elements []Element
	for _, c := range rep.Cards {
		e := Element{Title: channels.Truncate(c.Title, maxElementText), Subtitle: channels.Truncate(c.Subtitle, maxElementText)}
		if e.Title == "" {
			e.Title, e.Subtitle = e.Subtitle, ""
		}
		switch {
		case c.Image == "":
		case rich.WebURL(c.Image):
			e.ImageURL = c.Image
		default:
			leftover.Media = append(leftover.Media, msg.Media{Type: msg.MediaImage, URL: c.Image, Caption: c.Title})
		}
		ok, bad := buttons(c.Buttons)
		fit, rest := template(ok)
		e.Buttons = fit
		leftover.Buttons = append(leftover.Buttons, bad...)
		overflow(rest)
		if e.Title == "" {
			e.Title = "…" // Messenger requires one
		}
		elements = append(elements, e)
	}
	for len(elements) > 0 {
		n := min(len(elements), maxElements)
		out = append(out, r.message(Content{Attachment: &Attachment{Type: "template",
			Payload: Payload{TemplateType: "generic", Elements: elements[:n]}}}))
		elements = elements[n:]
	}

	// Options, after the buttons, as quick replies too.
	for _, o := range rep.Options {
		switch {
		case o == "":
		case len(quick) < maxQuickReplies:
			quick = append(quick, QuickReply{ContentType: "text",
				Title: channels.Truncate(o, maxQuickTitle), Payload: channels.OptionValue(o, maxPayload)})
		default:
			leftover.Options = append(leftover.Options, o)
		}
	}

	if t := r.plain.Text(leftover, 0); t != "" {
		out = append(out, r.message(Content{Text: meta.Truncate(t, maxText)}))
	}
	if len(quick) > 0 && len(out) == 0 {
		// Quick replies need a message: the first one's title says what they are.
		first := rep.Options
		text := ""
		if len(first) > 0 {
			text = first[0]
		}
		if text == "" {
			text = quick[0].Title
		}
		out = append(out, r.message(Content{Text: meta.Truncate(text, maxText)}))
	}
	if len(quick) > 0 {
		out[len(out)-1].Message.QuickReplies = quick
	}
	if patch := rep.ChannelData[ChannelDataKind]; len(patch) > 0 {
		if len(out) == 0 {
			out = append(out, r.message(Content{}))
		}
		out[len(out)-1].Patch = patch
	}
	return out
}

// buttons splits buttons into those Messenger can send (a title, and an
// http(s) link or a payload, which a reference stands for when it is too
// long) and those it cannot.
func buttons(bs []msg.Button) (ok, bad []msg.Button) {
	for _, b := range bs {
		switch {
		case b.Title == "":
			bad = append(bad, b)
		case b.URL != "" && rich.WebURL(b.URL):
			ok = append(ok, b)
		case b.URL == "" && b.Payload != "":
			ok = append(ok, b)
		default:
			bad = append(bad, b)
		}
	}
	return ok, bad
}

// template picks the buttons a template shows, at most three, preferring
// links (quick replies cannot carry them) and otherwise in order; rest are
// the others, in order.
func template(ok []msg.Button) (fit []Button, rest []msg.Button) {
	links := 0
	for _, b := range ok {
		if b.URL != "" {
			links++
		}
	}
	room := maxButtons - min(links, maxButtons) // places left for postbacks
	for _, b := range ok {
		switch {
		case len(fit) == maxButtons:
			rest = append(rest, b)
		case b.URL != "":
			fit = append(fit, Button{Type: "web_url", Title: channels.Truncate(b.Title, maxButtonTitle), URL: b.URL})
		case room > 0:
			room--
			fit = append(fit, Button{Type: "postback", Title: channels.Truncate(b.Title, maxButtonTitle),
				Payload: channels.PayloadValue(b.Payload, maxPayload)})
		default:
			rest = append(rest, b)
		}
	}
	return fit, rest
}

func titles(bs []Button) string {
	t := make([]string, len(bs))
	for i, b := range bs {
		t[i] = b.Title
	}
	return meta.Truncate(strings.Join(t, " / "), maxTemplateText)
}

// attachmentType is the Send API attachment type of a media type; "" for
// one the platform does not take (Instagram sends no files).
func attachmentType(t msg.MediaType, instagram bool) string {
	switch t {
	case msg.MediaImage, msg.MediaAudio, msg.MediaVideo:
		return string(t)
	case msg.MediaFile:
		if !instagram {
			return "file"
		}
	}
	return ""
}
