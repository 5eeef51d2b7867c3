package slack

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Block Kit limits (docs.slack.dev/reference/block-kit).
const (
	maxBlocks       = 50   // per message
	maxSectionText  = 3000 // section text
	maxAltText      = 2000 // image alt_text and title
	maxURL          = 3000 // button url, image_url
	actionButton    = "parley_button_"
	actionLink      = "parley_link_"
	actionOption    = "parley_option_"
	channelDataKind = Name
)

// richMessages renders one reply as chat.postMessage bodies in Block Kit:
// the text as sections, options and buttons as actions blocks (at most 25
// buttons each), each card as a section with its image as accessory and
// its buttons in an actions block, images as image blocks and other media
// as links. A reply needing more than 50 blocks is sent as several
// messages. The handler's channel_data.slack is merged into the first
// message; its blocks, if any, replace Parley's.
func richMessages(conv string, r msg.Reply, plain channels.Plain) []PostMessage {
	channel, thread, _ := strings.Cut(conv, ":")
	var blocks []Block
	for _, part := range splitText(r.Text, maxSectionText) {
		blocks = append(blocks, Block{Type: "section", Text: &TextObj{Type: "mrkdwn", Text: part}})
	}
	blocks = append(blocks, optionBlocks(r.Options)...)
	next := 0 // action ids are unique within a message: numbered across the reply
	blocks = append(blocks, buttonBlocks(r.Buttons, &next)...)
	for _, c := range r.Cards {
		blocks = append(blocks, cardBlocks(c, &next)...)
	}
	for _, m := range r.Media {
		blocks = append(blocks, mediaBlock(m))
	}

	// The notification text: the reply's text, or what the blocks say.
	fallback := r.Text
	if fallback == "" {
		fallback = channels.Truncate(plain.Text(r, 0), maxSectionText)
	}
	var out []PostMessage
	for len(blocks) > 0 || len(out) == 0 {
		n := min(len(blocks), maxBlocks)
		out = append(out, PostMessage{Channel: channel, ThreadTS: thread, Text: fallback, Blocks: blocks[:n]})
		blocks = blocks[n:]
	}
	if raw, ok := r.ChannelData[channelDataKind]; ok {
		out[0].Extra = raw
	}
	return out
}

// optionBlocks are the reply's options as buttons whose press comes back
// as the option's text.
func optionBlocks(options []string) []Block {
	var elems []Element
	for i, opt := range options {
		elems = append(elems, Element{Type: "button",
			Text:  &TextObj{Type: "plain_text", Text: channels.Truncate(opt, maxButtonText)},
			Value: clip(opt, maxButtonValue), ActionID: actionOption + strconv.Itoa(i)})
	}
	return actionBlocks(elems)
}

// buttonBlocks are buttons in actions blocks: a payload button's value is
// channels.PayloadValue (a reference when the payload is longer than a
// button's value takes), a link button opens its URL.
func buttonBlocks(bs []msg.Button, next *int) []Block {
	var elems []Element
	for _, b := range bs {
		e := Element{Type: "button", Text: &TextObj{Type: "plain_text", Text: channels.Truncate(b.Title, maxButtonText)}}
		id := strconv.Itoa(*next)
		*next++
		if b.URL != "" {
			if !channels.SafeURL(b.URL) || len(b.URL) > maxURL {
				continue // the sandbox lets none of these through
			}
			e.URL, e.ActionID = b.URL, actionLink+id
		} else {
			e.Value, e.ActionID = channels.PayloadValue(b.Payload, maxButtonValue), actionButton+id
		}
		elems = append(elems, e)
	}
	return actionBlocks(elems)
}

// actionBlocks puts elements in actions blocks of at most 25.
func actionBlocks(elems []Element) []Block {
	var out []Block
	for len(elems) > 0 {
		n := min(len(elems), maxButtons)
		out = append(out, Block{Type: "actions", Elements: elems[:n]})
		elems = elems[n:]
	}
	return out
}

// cardBlocks is a card: a section with the title in bold and the subtitle,
// the image as its accessory, then the card's buttons.
func cardBlocks(c msg.Card, next *int) []Block {
	text := "*" + escape(c.Title) + "*"
	if c.Subtitle != "" {
		text += "\n" + escape(c.Subtitle)
	}
	sec := Block{Type: "section", Text: &TextObj{Type: "mrkdwn", Text: channels.Truncate(text, maxSectionText)}}
	if c.Image != "" && channels.SafeURL(c.Image) && len(c.Image) <= maxURL {
		sec.Accessory = &Element{Type: "image", ImageURL: c.Image, AltText: channels.Truncate(c.Title, maxAltText)}
	}
	return append([]Block{sec}, buttonBlocks(c.Buttons, next)...)
}

// mediaBlock is an image block for an image, and a section with a link for
// audio, video and files, which Block Kit cannot play.
func mediaBlock(m msg.Media) Block {
	if m.Type == msg.MediaImage && channels.SafeURL(m.URL) && len(m.URL) <= maxURL {
		alt := m.Caption
		if alt == "" {
			alt = "image"
		}
		b := Block{Type: "image", ImageURL: m.URL, AltText: channels.Truncate(alt, maxAltText)}
		if m.Caption != "" {
			b.Title = &TextObj{Type: "plain_text", Text: channels.Truncate(m.Caption, maxAltText)}
		}
		return b
	}
	label := m.Caption
	if label == "" {
		label = m.URL
	}
	text := "<" + m.URL + "|" + escape(label) + ">"
	return Block{Type: "section", Text: &TextObj{Type: "mrkdwn", Text: channels.Truncate(text, maxSectionText)}}
}

// escape makes text literal in mrkdwn: Slack wants &, < and > escaped.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// splitText cuts s into pieces of at most n characters, at line ends
// where it can.
func splitText(s string, n int) []string {
	var out []string
	for s != "" {
		rs := []rune(s)
		if len(rs) <= n {
			return append(out, s)
		}
		piece := string(rs[:n])
		cut := len(piece)
		if i := strings.LastIndexByte(piece, '\n'); i > 0 {
			cut = i
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], "\n")
	}
	return out
}

// MarshalJSON writes the message, with the handler's channel data merged
// into it (the channel and thread stay Parley's).
func (pm PostMessage) MarshalJSON() ([]byte, error) {
	type plain PostMessage
	raw, err := json.Marshal(plain(pm))
	if err != nil {
		return nil, err
	}
	return channels.MergeJSON(raw, pm.Extra, "channel", "thread_ts"), nil
}

// pressed reads a click on a button of an actions block: a Parley option
// is its text, a Parley link was opened in the browser (no turn), and any
// other button (Parley's payload buttons, or a handler's own blocks) is a
// press of its value. ok is false when the click is no turn.
func pressed(ev *msg.Event, actionID, value, label string) (ok bool) {
	switch {
	case strings.HasPrefix(actionID, actionLink):
		return false
	case strings.HasPrefix(actionID, actionOption):
		ev.Text = value
		if ev.Text == "" {
			ev.Text = label
		}
		return ev.Text != ""
	case value == "":
		return false
	}
	channels.Pressed(ev, value, label)
	return true
}
