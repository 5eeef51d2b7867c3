package line

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
const ChannelDataKind = "line"

// maxFlexButtons is how many buttons Parley puts in one bubble: LINE sets
// no count, only a size (30 KB a bubble), and a longer column of buttons
// would not read as one.
const maxFlexButtons = 10

// Message is one LINE message object: text, image or Flex.
type Message struct {
	Type               string         `json:"type"`
	Text               string         `json:"text,omitempty"`
	AltText            string         `json:"altText,omitempty"`
	Contents           *FlexContainer `json:"contents,omitempty"`
	OriginalContentURL string         `json:"originalContentUrl,omitempty"`
	PreviewImageURL    string         `json:"previewImageUrl,omitempty"`
	QuickReply         *QuickReply    `json:"quickReply,omitempty"`
	// Patch is the reply's channel data, merged into the message's JSON
	// (RFC 7396) when it is marshaled.
	Patch json.RawMessage `json:"-"`
}

// MarshalJSON is the message's JSON with its channel data merged in.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message
	b, err := json.Marshal(plain(m))
	if err != nil || len(m.Patch) == 0 {
		return b, err
	}
	return rich.MergePatch(b, m.Patch)
}

// QuickReply holds the quick-reply buttons under a message.
type QuickReply struct {
	Items []QuickItem `json:"items"`
}

// QuickItem is one quick-reply button.
type QuickItem struct {
	Type   string `json:"type"`
	Action Action `json:"action"`
}

// Action is what tapping a button does: "message" sends Text as the
// user's message, "postback" sends Data back as a postback event (and shows
// DisplayText as the user's message), "uri" opens URI.
type Action struct {
	Type        string `json:"type"`
	Label       string `json:"label"`
	Text        string `json:"text,omitempty"`
	Data        string `json:"data,omitempty"`
	DisplayText string `json:"displayText,omitempty"`
	URI         string `json:"uri,omitempty"`
}

// FlexContainer is a Flex bubble, or a carousel of bubbles.
type FlexContainer struct {
	Type     string          `json:"type"`
	Hero     *FlexComponent  `json:"hero,omitempty"`
	Body     *FlexComponent  `json:"body,omitempty"`
	Footer   *FlexComponent  `json:"footer,omitempty"`
	Contents []FlexContainer `json:"contents,omitempty"`
}

// FlexComponent is a box, text, image or button of a bubble.
type FlexComponent struct {
	Type        string          `json:"type"`
	Layout      string          `json:"layout,omitempty"`
	Spacing     string          `json:"spacing,omitempty"`
	Contents    []FlexComponent `json:"contents,omitempty"`
	Text        string          `json:"text,omitempty"`
	Wrap        bool            `json:"wrap,omitempty"`
	Weight      string          `json:"weight,omitempty"`
	Size        string          `json:"size,omitempty"`
	Color       string          `json:"color,omitempty"`
	URL         string          `json:"url,omitempty"`
	AspectMode  string          `json:"aspectMode,omitempty"`
	AspectRatio string          `json:"aspectRatio,omitempty"`
	Style       string          `json:"style,omitempty"`
	Height      string          `json:"height,omitempty"`
	Action      *Action         `json:"action,omitempty"`
}

// Messages renders a turn's replies as LINE messages. For each reply, in
// order: its text, as a Flex bubble with a column of buttons when it has
// buttons (a text message otherwise); its images (https only); its cards,
// as Flex carousels of up to twelve bubbles; and a text of what LINE could
// not show. Options are quick-reply buttons under the reply's last message,
// into which its channel data "line" is also merged.
//
// Flex rather than template messages: a buttons template holds 4 actions
// under 160 characters of text (60 with a title or image), and a carousel
// template needs the same number of actions, and an image or none, in every
// column; Flex bubbles take a reply's whole text, any number of buttons and
// mixed cards, and render on LINE for PC too.
func Messages(res *msg.TurnResult) []Message {
	plain := channels.NewPlain(res.Replies)
	var out []Message
	for _, r := range res.Replies {
		out = append(out, reply(r, plain)...)
	}
	return out
}

func textMessage(t string) Message {
	return Message{Type: "text", Text: meta.Truncate(t, maxText)}
}

// reply renders one reply; plain writes what LINE cannot show, its buttons
// numbered among the turn's.
func reply(rep msg.Reply, plain channels.Plain) []Message {
	var (
		out      []Message
		leftover msg.Reply
	)
	text := strings.TrimSpace(rep.Text)
	actions, bad := buttons(rep.Buttons)
	leftover.Buttons = append(leftover.Buttons, bad...)
	switch {
	case len(actions) > 0:
		alt := text
		if alt == "" {
			alt = labels(actions)
		}
		bubble := FlexContainer{Type: "bubble", Footer: footer(actions)}
		if text != "" {
			bubble.Body = &FlexComponent{Type: "box", Layout: "vertical", Contents: []FlexComponent{
				{Type: "text", Text: meta.Truncate(text, maxText), Wrap: true}}}
		}
		out = append(out, Message{Type: "flex", AltText: meta.Truncate(alt, maxAltText), Contents: &bubble})
	case text != "":
		out = append(out, textMessage(text))
	}

	for _, m := range rep.Media {
		if m.Type != msg.MediaImage || !image(m.URL) {
			leftover.Media = append(leftover.Media, m)
			continue
		}
		// The image itself is the preview: LINE shows it scaled down.
		out = append(out, Message{Type: "image", OriginalContentURL: m.URL, PreviewImageURL: m.URL})
		if c := strings.TrimSpace(m.Caption); c != "" {
			out = append(out, textMessage(c))
		}
	}

	var bubbles []FlexContainer
	var titles []string
	for _, c := range rep.Cards {
		b := FlexContainer{Type: "bubble"}
		switch {
		case c.Image == "":
		case image(c.Image):
			b.Hero = &FlexComponent{Type: "image", URL: c.Image, Size: "full", AspectMode: "cover", AspectRatio: "20:13"}
		default:
			leftover.Media = append(leftover.Media, msg.Media{Type: msg.MediaImage, URL: c.Image, Caption: c.Title})
		}
		var body []FlexComponent
		if t := strings.TrimSpace(c.Title); t != "" {
			body = append(body, FlexComponent{Type: "text", Text: meta.Truncate(t, maxText), Weight: "bold", Size: "lg", Wrap: true})
			titles = append(titles, t)
		}
		if s := strings.TrimSpace(c.Subtitle); s != "" {
			body = append(body, FlexComponent{Type: "text", Text: meta.Truncate(s, maxText), Size: "sm", Color: "#666666", Wrap: true})
		}
		if len(body) > 0 {
			b.Body = &FlexComponent{Type: "box", Layout: "vertical", Spacing: "sm", Contents: body}
		}
		actions, bad := buttons(c.Buttons)
		leftover.Buttons = append(leftover.Buttons, bad...)
		if len(actions) > 0 {
			b.Footer = footer(actions)
		}
		if b.Hero == nil && b.Body == nil && b.Footer == nil {
			continue // nothing to show; its link, if any, is in the text
		}
		bubbles = append(bubbles, b)
	}
	alt := text
	if alt == "" {
		alt = strings.Join(titles, ", ")
	}
	if alt == "" {
		alt = "Cards"
	}
	for len(bubbles) > 0 {
		n := min(len(bubbles), maxBubbles)
		c := &FlexContainer{Type: "carousel", Contents: bubbles[:n]}
		out = append(out, Message{Type: "flex", AltText: meta.Truncate(alt, maxAltText), Contents: c})
		bubbles = bubbles[n:]
	}

	var quick []QuickItem
	for _, o := range rep.Options {
		switch {
		case o == "":
		case len(quick) < maxQuickItems:
			quick = append(quick, QuickItem{Type: "action",
				Action: Action{Type: "message", Label: channels.Truncate(o, maxQuickLabel), Text: meta.Truncate(o, maxQuickText)}})
		default:
			leftover.Options = append(leftover.Options, o)
		}
	}
	if t := plain.Text(leftover, 0); t != "" {
		out = append(out, textMessage(t))
	}
	if len(quick) > 0 {
		if len(out) == 0 {
			var opts []string
			for _, q := range quick {
				opts = append(opts, q.Action.Text)
			}
			out = append(out, textMessage(strings.Join(opts, " / ")))
		}
		out[len(out)-1].QuickReply = &QuickReply{Items: quick}
	}
	if patch := rep.ChannelData[ChannelDataKind]; len(patch) > 0 {
		if len(out) == 0 {
			out = append(out, Message{Type: "text"})
		}
		out[len(out)-1].Patch = patch
	}
	return out
}

// buttons makes actions of the buttons LINE can carry (at most
// maxFlexButtons): postbacks, whose data is the payload (or the reference
// of one longer than a postback's data), with the title shown as what the
// user said, and http(s) links. The others are returned to be shown as
// text.
func buttons(bs []msg.Button) (actions []Action, bad []msg.Button) {
	for _, b := range bs {
		title := strings.TrimSpace(b.Title)
		switch {
		case title == "" || len(actions) == maxFlexButtons:
			bad = append(bad, b)
		case b.URL != "" && rich.WebURL(b.URL) && len(b.URL) <= maxURI:
			actions = append(actions, Action{Type: "uri", Label: channels.Truncate(title, maxActionLabel), URI: b.URL})
		case b.URL == "" && b.Payload != "":
			actions = append(actions, Action{Type: "postback", Label: channels.Truncate(title, maxActionLabel),
				Data: channels.PayloadValue(b.Payload, maxData), DisplayText: channels.Truncate(title, maxData)})
		default:
			bad = append(bad, b)
		}
	}
	return actions, bad
}

// footer is a bubble's column of buttons.
func footer(actions []Action) *FlexComponent {
	f := &FlexComponent{Type: "box", Layout: "vertical", Spacing: "sm"}
	for i := range actions {
		f.Contents = append(f.Contents, FlexComponent{Type: "button", Style: "link", Height: "sm", Action: &actions[i]})
	}
	return f
}

func labels(actions []Action) string {
	l := make([]string, len(actions))
	for i, a := range actions {
		l[i] = a.Label
	}
	return strings.Join(l, " / ")
}

// image reports whether LINE can show the image at u: https, at most 2000
// characters.
func image(u string) bool { return rich.HTTPS(u) && len(u) <= maxMediaURL }
