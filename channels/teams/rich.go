package teams

import (
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Teams' limits for bot messages and Adaptive Cards.
const (
	// maxActivityBytes is the most an outbound activity may weigh: Teams
	// refuses messages over about 28 KB. A card activity over it is split,
	// and a card that is too heavy alone is sent as text.
	maxActivityBytes = 27 << 10
	// maxTextBytes is the most text one message carries; a longer text
	// is split at line ends.
	maxTextBytes = 20 << 10
	// maxCardText is the longest text shown in the card of a reply's
	// buttons; a longer one goes in a message of its own before it.
	maxCardText = 4000
	// maxAttachments is the most cards one activity carries (a carousel).
	maxAttachments = 10
	// maxActionsPerSet is the most buttons in one row (ActionSet).
	maxActionsPerSet = 6
	// maxTitle bounds a button's title.
	maxTitle = 80
	// maxValue bounds a button's value; a longer payload travels as a
	// reference (channels.PayloadValue).
	maxValue = 2048
	// maxURL bounds a link or an image's URL.
	maxURL = 2048
	// cardVersion is the Adaptive Card schema used (Teams takes up to 1.5).
	cardVersion     = "1.4"
	contentTypeCard = "application/vnd.microsoft.card.adaptive"
	channelDataKind = Name
)

// OutActivity is an activity Parley sends to the connector.
type OutActivity struct {
	Type             string        `json:"type"`
	From             *Account      `json:"from,omitempty"`
	Recipient        *Account      `json:"recipient,omitempty"`
	Conversation     *Conversation `json:"conversation,omitempty"`
	ReplyToID        string        `json:"replyToId,omitempty"`
	Text             string        `json:"text,omitempty"`
	TextFormat       string        `json:"textFormat,omitempty"`
	AttachmentLayout string        `json:"attachmentLayout,omitempty"`
	Attachments      []Attachment  `json:"attachments,omitempty"`
	// Extra is the handler's channel_data.teams, a JSON object whose keys
	// are merged into the activity (see MarshalJSON).
	Extra json.RawMessage `json:"-"`
	// fallback is the attachments as text, for an activity too heavy to send.
	fallback []string
}

// Attachment is an Adaptive Card attachment.
type Attachment struct {
	ContentType string       `json:"contentType"`
	Content     AdaptiveCard `json:"content"`
}

// AdaptiveCard is an Adaptive Card with text, images and buttons.
type AdaptiveCard struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []Element `json:"body,omitempty"`
}

// Element is an Adaptive Card element: a TextBlock, an Image or an
// ActionSet.
type Element struct {
	Type     string   `json:"type"`
	Text     string   `json:"text,omitempty"`
	Wrap     bool     `json:"wrap,omitempty"`
	Weight   string   `json:"weight,omitempty"`
	Size     string   `json:"size,omitempty"`
	IsSubtle bool     `json:"isSubtle,omitempty"`
	URL      string   `json:"url,omitempty"`
	AltText  string   `json:"altText,omitempty"`
	Actions  []Action `json:"actions,omitempty"`
}

// Action is an Action.Submit, whose data comes back as the value of a
// message activity, or an Action.OpenUrl.
type Action struct {
	Type  string            `json:"type"`
	Title string            `json:"title"`
	Data  map[string]string `json:"data,omitempty"`
	URL   string            `json:"url,omitempty"`
}

// MarshalJSON writes the activity with the handler's channel data merged
// into it; where the activity goes stays Parley's.
func (a OutActivity) MarshalJSON() ([]byte, error) {
	type plain OutActivity
	raw, err := json.Marshal(plain(a))
	if err != nil {
		return nil, err
	}
	return channels.MergeJSON(raw, a.Extra, "conversation", "replyToId", "from", "recipient", "serviceUrl", "id"), nil
}

// Render renders one turn's replies as message activities (without their
// addresses, which Send fills in). Per reply: its text (markdown), and
// its options and buttons as Action.Submit and Action.OpenUrl buttons of
// an Adaptive Card that also shows the text; its cards as Adaptive Cards,
// several in a carousel; its images as cards, other media as links; its
// channel_data.teams merged into its first activity.
func Render(replies []msg.Reply) []OutActivity {
	plain := channels.NewPlain(replies)
	var out []OutActivity
	for _, r := range replies {
		acts := renderReply(r, plain)
		if raw, ok := r.ChannelData[channelDataKind]; ok {
			if len(acts) == 0 {
				acts = []OutActivity{{Type: "message"}}
			}
			acts[0].Extra = raw
		}
		out = append(out, acts...)
	}
	return out
}

func renderReply(r msg.Reply, plain channels.Plain) []OutActivity {
	var out []OutActivity
	actions := append(optionActions(r.Options), buttonActions(r.Buttons)...)
	text := r.Text
	if len(actions) > 0 && len([]rune(text)) <= maxCardText {
		text = "" // shown in the buttons' card
	}
	for _, part := range splitText(text, maxTextBytes) {
		out = append(out, textActivity(part))
	}
	if len(actions) > 0 {
		card := newCard()
		if text == "" && r.Text != "" {
			card.Body = append(card.Body, Element{Type: "TextBlock", Text: r.Text, Wrap: true})
		}
		card.Body = append(card.Body, actionSets(actions)...)
		fb := plain.Text(msg.Reply{Text: r.Text, Options: r.Options, Buttons: r.Buttons}, 0)
		if text != "" { // the text went before
			fb = plain.Text(msg.Reply{Options: r.Options, Buttons: r.Buttons}, 0)
		}
		out = append(out, cardActivity("", []Attachment{attach(card)}, []string{fb}))
	}
	if len(r.Cards) > 0 {
		atts := make([]Attachment, 0, len(r.Cards))
		fbs := make([]string, 0, len(r.Cards))
		for _, c := range r.Cards {
			atts = append(atts, attach(cardOf(c)))
			fbs = append(fbs, strings.Join(plain.Card(c), "\n"))
		}
		out = append(out, carousels(atts, fbs)...)
	}
	if len(r.Media) > 0 {
		out = append(out, mediaActivities(r.Media)...)
	}
	return out
}

func textActivity(text string) OutActivity {
	return OutActivity{Type: "message", Text: text, TextFormat: "markdown"}
}

func cardActivity(text string, atts []Attachment, fallback []string) OutActivity {
	a := OutActivity{Type: "message", Text: text, Attachments: atts, fallback: fallback}
	if text != "" {
		a.TextFormat = "markdown"
	}
	return a
}

func newCard() AdaptiveCard {
	return AdaptiveCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: cardVersion}
}

func attach(c AdaptiveCard) Attachment {
	return Attachment{ContentType: contentTypeCard, Content: c}
}

// carousels puts cards in carousels of at most maxAttachments.
func carousels(atts []Attachment, fbs []string) []OutActivity {
	var out []OutActivity
	for len(atts) > 0 {
		n := min(len(atts), maxAttachments)
		a := cardActivity("", atts[:n], fbs[:n])
		if n > 1 {
			a.AttachmentLayout = "carousel"
		}
		out = append(out, a)
		atts, fbs = atts[n:], fbs[n:]
	}
	return out
}

// optionActions are options as buttons whose press comes back as the
// option's text.
func optionActions(options []string) []Action {
	var out []Action
	for _, o := range options {
		if o == "" {
			continue
		}
		title := channels.Truncate(o, maxTitle)
		out = append(out, Action{Type: "Action.Submit", Title: title,
			Data: map[string]string{dataValue: channels.OptionValue(o, maxValue), dataTitle: title}})
	}
	return out
}

// buttonActions are payload buttons (Action.Submit with the payload, or a
// reference to a long one) and link buttons (Action.OpenUrl).
func buttonActions(bs []msg.Button) []Action {
	var out []Action
	for _, b := range bs {
		title := channels.Truncate(b.Title, maxTitle)
		if b.URL != "" {
			if !channels.SafeURL(b.URL) || len(b.URL) > maxURL {
				continue // the sandbox lets none of these through
			}
			out = append(out, Action{Type: "Action.OpenUrl", Title: title, URL: b.URL})
			continue
		}
		out = append(out, Action{Type: "Action.Submit", Title: title,
			Data: map[string]string{dataValue: channels.PayloadValue(b.Payload, maxValue), dataTitle: title}})
	}
	return out
}

// actionSets puts actions in rows of at most maxActionsPerSet.
func actionSets(actions []Action) []Element {
	var out []Element
	for len(actions) > 0 {
		n := min(len(actions), maxActionsPerSet)
		out = append(out, Element{Type: "ActionSet", Actions: actions[:n]})
		actions = actions[n:]
	}
	return out
}

// cardOf is a card: its title in bold, its subtitle, its image, its buttons.
func cardOf(c msg.Card) AdaptiveCard {
	card := newCard()
	if c.Title != "" {
		card.Body = append(card.Body, Element{Type: "TextBlock", Text: c.Title, Weight: "bolder", Size: "medium", Wrap: true})
	}
	if c.Subtitle != "" {
		card.Body = append(card.Body, Element{Type: "TextBlock", Text: c.Subtitle, IsSubtle: true, Wrap: true})
	}
	if c.Image != "" && channels.SafeURL(c.Image) && len(c.Image) <= maxURL {
		card.Body = append(card.Body, Element{Type: "Image", URL: c.Image, AltText: channels.Truncate(c.Title, maxTitle)})
	}
	card.Body = append(card.Body, actionSets(buttonActions(c.Buttons))...)
	return card
}

// mediaActivities are images as cards (with their captions), and audio,
// video and files as markdown links in a message, which Teams cannot play
// from a URL.
func mediaActivities(media []msg.Media) []OutActivity {
	var atts []Attachment
	var fbs, links []string
	for _, m := range media {
		if !channels.SafeURL(m.URL) || len(m.URL) > maxURL {
			continue // the sandbox lets none of these through
		}
		if m.Type == msg.MediaImage {
			card := newCard()
			card.Body = append(card.Body, Element{Type: "Image", URL: m.URL, AltText: channels.Truncate(m.Caption, maxTitle)})
			if m.Caption != "" {
				card.Body = append(card.Body, Element{Type: "TextBlock", Text: m.Caption, Wrap: true, IsSubtle: true})
			}
			atts = append(atts, attach(card))
			fbs = append(fbs, channels.MediaText(m))
			continue
		}
		label := m.Caption
		if label == "" {
			label = m.URL
		}
		links = append(links, "["+escapeMarkdown(label)+"]("+m.URL+")")
	}
	var out []OutActivity
	for len(atts) > 0 {
		n := min(len(atts), maxAttachments)
		out = append(out, cardActivity("", atts[:n], fbs[:n]))
		atts, fbs = atts[n:], fbs[n:]
	}
	for _, part := range splitText(strings.Join(links, "\n\n"), maxTextBytes) {
		out = append(out, textActivity(part))
	}
	return out
}

// escapeMarkdown keeps a link's label from closing it.
func escapeMarkdown(s string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(s)
}

// splitText cuts s into pieces of at most n bytes, at line ends where it
// can, else at a character boundary.
func splitText(s string, n int) []string {
	var out []string
	for s != "" {
		if len(s) <= n {
			return append(out, s)
		}
		piece := channels.ClipBytes(s, n)
		cut := len(piece)
		if i := strings.LastIndexByte(piece, '\n'); i > 0 {
			cut = i
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], "\n")
	}
	return out
}

// fit makes activities Teams takes: one whose JSON is over
// maxActivityBytes is split into an activity per card, and a card that is
// still too heavy is sent as its text form.
func fit(acts []OutActivity) []OutActivity {
	var out []OutActivity
	for _, a := range acts {
		if size(a) <= maxActivityBytes || len(a.Attachments) == 0 {
			out = append(out, a)
			continue
		}
		for i, att := range a.Attachments {
			one := OutActivity{Type: a.Type, Attachments: []Attachment{att}, fallback: a.fallback[i : i+1]}
			if i == 0 {
				one.Text, one.TextFormat, one.Extra = a.Text, a.TextFormat, a.Extra
			}
			if size(one) > maxActivityBytes {
				one.Attachments = nil
				text := strings.TrimSpace(one.Text + "\n\n" + a.fallback[i])
				for j, part := range splitText(text, maxTextBytes) {
					t := textActivity(part)
					if j == 0 {
						t.Extra = one.Extra
					}
					out = append(out, t)
				}
				continue
			}
			out = append(out, one)
		}
	}
	return out
}

func size(a OutActivity) int {
	b, err := json.Marshal(a)
	if err != nil {
		return 0
	}
	return len(b)
}
