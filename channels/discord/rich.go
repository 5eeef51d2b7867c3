package discord

import (
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Message limits (discord-api-docs resources/message.mdx, components).
const (
	buttonLink         = 5 // link button style: a url, no custom_id
	maxEmbeds          = 10
	maxEmbedTotal      = 6000 // characters of all embeds together
	maxEmbedTitle      = 256
	maxEmbedDesc       = 4096
	maxLinkURL         = 512
	channelDataKind    = Name
	moreButtonsHeading = "More:"
)

// Embed is a message embed: a card, or an image.
type Embed struct {
	Title       string      `json:"title,omitempty"`
	Description string      `json:"description,omitempty"`
	Image       *EmbedImage `json:"image,omitempty"`
}

// EmbedImage is an embed's image, by URL.
type EmbedImage struct {
	URL string `json:"url"`
}

// message collects a turn's replies as one Discord message: texts, buttons
// (at most 25, five to a row), embeds (at most 10, 6000 characters), and
// the lines of what did not fit, written as text.
type message struct {
	texts    []string
	buttons  []Component
	ids      map[string]bool
	embeds   []Embed
	embedLen int
	overflow []string
	extra    json.RawMessage
}

// add puts a reply into the message: its text, options and buttons as
// buttons (payloads as channels.PayloadValue, a reference when longer than
// a custom_id takes), each card as an embed with its buttons labelled with
// the card's title, images as embeds, other media as links in the text.
func (m *message) add(r msg.Reply) {
	if r.Text != "" {
		m.texts = append(m.texts, r.Text)
	}
	for _, o := range r.Options {
		if o != "" {
			m.button(o, Component{Type: componentButton, Style: buttonPrimary,
				Label: channels.Truncate(o, maxLabel), CustomID: channels.OptionValue(o, maxCustomID)}, "• "+o)
		}
	}
	for _, b := range r.Buttons {
		m.msgButton(b, "")
	}
	for _, c := range r.Cards {
		e := Embed{Title: channels.Truncate(c.Title, maxEmbedTitle), Description: channels.Truncate(c.Subtitle, maxEmbedDesc)}
		if c.Image != "" && channels.SafeURL(c.Image) {
			e.Image = &EmbedImage{URL: c.Image}
		}
		if !m.embed(e) {
			m.overflow = append(m.overflow, channels.Plain{}.Card(msg.Card{Title: c.Title, Subtitle: c.Subtitle, Image: c.Image})...)
		}
		for _, b := range c.Buttons {
			m.msgButton(b, c.Title)
		}
	}
	for _, md := range r.Media {
		if md.Type == msg.MediaImage && channels.SafeURL(md.URL) &&
			m.embed(Embed{Description: channels.Truncate(md.Caption, maxEmbedDesc), Image: &EmbedImage{URL: md.URL}}) {
			continue
		}
		// Audio, video and files: Discord shows a player or a preview of the link.
		m.texts = append(m.texts, channels.MediaText(md))
	}
	if raw, ok := r.ChannelData[channelDataKind]; ok && m.extra == nil {
		m.extra = raw
	}
}

// msgButton adds a reply's or a card's button; a card's is labelled
// "Add · Margherita", since a message's buttons sit under all its embeds.
func (m *message) msgButton(b msg.Button, card string) {
	label := b.Title
	if card != "" {
		label += " · " + card
	}
	if b.URL != "" {
		if channels.SafeURL(b.URL) && len(b.URL) <= maxLinkURL {
			m.button("url:"+b.URL, Component{Type: componentButton, Style: buttonLink,
				Label: channels.Truncate(label, maxLabel), URL: b.URL}, label+": "+b.URL)
			return
		}
		m.overflow = append(m.overflow, label+": "+b.URL)
		return
	}
	id := channels.PayloadValue(b.Payload, maxCustomID)
	m.button(id, Component{Type: componentButton, Style: buttonPrimary, Label: channels.Truncate(label, maxLabel), CustomID: id},
		"• "+label)
}

// button adds c unless a button with the same key (custom_id or URL) is
// there; past 25 buttons, line goes to the text instead.
func (m *message) button(key string, c Component, line string) {
	if m.ids == nil {
		m.ids = map[string]bool{}
	}
	if m.ids[key] {
		return // the same action twice: one button does
	}
	if len(m.buttons) == maxRows*maxButtonsPerRow {
		m.overflow = append(m.overflow, line)
		return
	}
	m.ids[key] = true
	m.buttons = append(m.buttons, c)
}

// embed adds e if the message has room for it.
func (m *message) embed(e Embed) bool {
	n := len([]rune(e.Title)) + len([]rune(e.Description))
	if len(m.embeds) == maxEmbeds || m.embedLen+n > maxEmbedTotal {
		return false
	}
	m.embeds = append(m.embeds, e)
	m.embedLen += n
	return true
}

// data is the message as an interaction response's or Create Message's
// data: the texts joined by blank lines, what did not fit listed under
// them, cut to 2000 characters.
func (m *message) data() *ResponseData {
	content := strings.Join(m.texts, "\n\n")
	if len(m.overflow) > 0 {
		if content != "" {
			content += "\n\n"
		}
		content += moreButtonsHeading + "\n" + strings.Join(m.overflow, "\n")
	}
	d := &ResponseData{Content: channels.Truncate(content, maxContent), Embeds: m.embeds, extra: m.extra}
	for i, b := range m.buttons {
		if i%maxButtonsPerRow == 0 {
			d.Components = append(d.Components, Component{Type: componentActionRow})
		}
		row := &d.Components[len(d.Components)-1]
		row.Components = append(row.Components, b)
	}
	return d
}

// buttonLabel is the label of the button with customID in an interaction's
// message, or "".
func buttonLabel(rows []Component, customID string) string {
	for _, row := range rows {
		for _, c := range row.Components {
			if c.CustomID == customID {
				return c.Label
			}
		}
	}
	return ""
}
