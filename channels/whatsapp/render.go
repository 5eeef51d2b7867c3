package whatsapp

import (
	"encoding/json"
	"net/url"
	"path"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/msg"
)

// ChannelDataKind is the key of a reply's channel data merged into this
// channel's messages.
const ChannelDataKind = "whatsapp"

// Message is one Cloud API send request.
type Message struct {
	MessagingProduct string       `json:"messaging_product"`
	RecipientType    string       `json:"recipient_type"`
	To               string       `json:"to"`
	Type             string       `json:"type"`
	Text             *Text        `json:"text,omitempty"`
	Interactive      *Interactive `json:"interactive,omitempty"`
	Image            *Media       `json:"image,omitempty"`
	Audio            *Media       `json:"audio,omitempty"`
	Video            *Media       `json:"video,omitempty"`
	Document         *Media       `json:"document,omitempty"`
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

// Text is a text message's content.
type Text struct {
	Body string `json:"body"`
}

// Media is an image, audio, video or document by link.
type Media struct {
	Link     string `json:"link"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// Interactive is a reply-buttons or list message.
type Interactive struct {
	Type   string  `json:"type"`
	Header *Header `json:"header,omitempty"`
	Body   Body    `json:"body"`
	Action Action  `json:"action"`
}

// Header is an interactive message's header: an image above reply buttons.
type Header struct {
	Type  string `json:"type"`
	Image *Media `json:"image,omitempty"`
}

// Body is an interactive message's text.
type Body struct {
	Text string `json:"text"`
}

// Action holds the buttons, or the list's button label and rows.
type Action struct {
	Buttons  []Button  `json:"buttons,omitempty"`
	Button   string    `json:"button,omitempty"`
	Sections []Section `json:"sections,omitempty"`
}

// Button is one reply button.
type Button struct {
	Type  string `json:"type"`
	Reply Choice `json:"reply"`
}

// Choice is a button's or a row's id and title; the id comes back when the
// user picks it. A row may have a description.
type Choice struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// Section is one section of a list.
type Section struct {
	Rows []Choice `json:"rows"`
}

// Messages renders a turn's replies as Cloud API requests. For each reply,
// in order: its text with its buttons and options (up to 3 as reply
// buttons, up to 10 as a list), its media (image, audio, video, document
// with caption), its cards (an image header above reply buttons, or an
// image and a list), and a text of what WhatsApp could not show. A reply's
// channel data "whatsapp" is merged into its last request.
func Messages(res *msg.TurnResult) []Message {
	to := res.Conversation
	if to == "" && res.Event != nil {
		to = res.Event.Conversation
	}
	r := renderer{to: to, plain: channels.NewPlain(res.Replies)}
	var out []Message
	for _, rep := range res.Replies {
		out = append(out, r.reply(rep)...)
	}
	return out
}

type renderer struct {
	to    string
	plain channels.Plain // the turn's buttons, numbered for text
}

func (r renderer) message() Message {
	return Message{MessagingProduct: "whatsapp", RecipientType: "individual", To: r.to}
}

func (r renderer) text(body string) Message {
	m := r.message()
	m.Type, m.Text = "text", &Text{Body: meta.Truncate(body, maxText)}
	return m
}

// choice is something to pick: a button's payload (which comes back as a
// postback) or an option (which comes back as text).
type choice struct {
	title, id string
	button    msg.Button // the button, when it is one
}

func (r renderer) reply(rep msg.Reply) []Message {
	var (
		out      []Message
		leftover msg.Reply
	)
	// The text with the reply's buttons, then its options.
	cs, links, bad := choices(rep.Buttons)
	leftover.Buttons = append(leftover.Buttons, bad...)
	for _, o := range rep.Options {
		if o != "" {
			cs = append(cs, choice{title: o, id: channels.OptionValue(o, maxRowID)})
		}
	}
	text := strings.TrimSpace(rep.Text)
	if len(links) > 0 { // links in the text, where WhatsApp makes them clickable
		text = strings.TrimSpace(text + "\n" + strings.Join(r.plain.Buttons(links), "\n"))
	}
	if len(cs) == 0 {
		if text != "" {
			out = append(out, r.text(text))
		}
	} else {
		if len([]rune(text)) > maxBody {
			out = append(out, r.text(text))
			text = ""
		}
		msgs, rest := r.interactive(text, nil, cs)
		out = append(out, msgs...)
		leftover = appendChoices(leftover, rest)
	}

	// Media, one message each.
	for _, m := range rep.Media {
		msgs, ok := r.media(m)
		if !ok {
			leftover.Media = append(leftover.Media, m)
			continue
		}
		out = append(out, msgs...)
	}

	// Cards, one or two messages each.
	for _, c := range rep.Cards {
		cs, links, bad := choices(c.Buttons)
		leftover.Buttons = append(leftover.Buttons, bad...)
		body := "*" + strings.TrimSpace(c.Title) + "*"
		if c.Title == "" {
			body = ""
		}
		if s := strings.TrimSpace(c.Subtitle); s != "" {
			body = strings.TrimSpace(body + "\n" + s)
		}
		if len(links) > 0 {
			body = strings.TrimSpace(body + "\n" + strings.Join(r.plain.Buttons(links), "\n"))
		}
		var image *Media
		switch {
		case c.Image == "":
		case rich.WebURL(c.Image):
			image = &Media{Link: c.Image}
		default:
			leftover.Media = append(leftover.Media, msg.Media{Type: msg.MediaImage, URL: c.Image, Caption: c.Title})
		}
		switch {
		case len(cs) == 0 && image != nil:
			image.Caption = meta.Truncate(body, maxCaption)
			m := r.message()
			m.Type, m.Image = "image", image
			out = append(out, m)
		case len(cs) == 0:
			if body != "" {
				out = append(out, r.text(body))
			}
		default:
			msgs, rest := r.interactive(meta.Truncate(body, maxBody), image, cs)
			out = append(out, msgs...)
			leftover = appendChoices(leftover, rest)
		}
	}

	if t := r.plain.Text(leftover, 0); t != "" {
		out = append(out, r.text(t))
	}
	if patch := rep.ChannelData[ChannelDataKind]; len(patch) > 0 {
		if len(out) == 0 {
			out = append(out, r.message())
		}
		out[len(out)-1].Patch = patch
	}
	return out
}

// choices makes the payload buttons into choices, whose id is the payload
// (or the reference of a payload too long for a row's id); links are
// returned to be written in the message's text, and the buttons WhatsApp
// cannot show (no title) to be degraded with the rest.
func choices(bs []msg.Button) (cs []choice, links, bad []msg.Button) {
	for _, b := range bs {
		switch {
		case b.URL != "":
			links = append(links, b)
		case b.Payload != "" && strings.TrimSpace(b.Title) != "":
			cs = append(cs, choice{title: b.Title, id: channels.PayloadValue(b.Payload, maxRowID), button: b})
		default:
			bad = append(bad, b)
		}
	}
	return cs, links, bad
}

// appendChoices adds the choices an interactive message could not hold to
// what is shown as text: options to type, buttons to answer by number.
func appendChoices(r msg.Reply, cs []choice) msg.Reply {
	for _, c := range cs {
		if c.button.Payload != "" {
			r.Buttons = append(r.Buttons, c.button)
		} else {
			r.Options = append(r.Options, c.title)
		}
	}
	return r
}

// interactive renders choices under body: reply buttons for up to three
// with distinct titles (with the image as header), else a list of up to
// ten rows (after the image, since a list's header can only be text). The
// choices beyond ten are returned.
func (r renderer) interactive(body string, image *Media, cs []choice) ([]Message, []choice) {
	if body == "" {
		body = chooseBody
	}
	var out []Message
	if len(cs) <= maxButtons && distinctTitles(cs) {
		in := &Interactive{Type: "button", Body: Body{Text: body}}
		if image != nil {
			in.Header = &Header{Type: "image", Image: image}
		}
		for _, c := range cs {
			in.Action.Buttons = append(in.Action.Buttons, Button{Type: "reply",
				Reply: Choice{ID: c.id, Title: channels.Truncate(c.title, maxButtonTitle)}})
		}
		m := r.message()
		m.Type, m.Interactive = "interactive", in
		return append(out, m), nil
	}
	if image != nil {
		m := r.message()
		m.Type, m.Image = "image", image
		out = append(out, m)
	}
	n := min(len(cs), maxRows)
	rows := make([]Choice, 0, n)
	seen := map[string]bool{}
	var rest []choice
	for _, c := range cs {
		id := c.id
		if len(rows) == n || seen[id] { // row ids must be unique
			rest = append(rest, c)
			continue
		}
		seen[id] = true
		row := Choice{ID: id, Title: channels.Truncate(c.title, maxRowTitle)}
		if row.Title != c.title { // the whole title, under the cut one
			row.Description = channels.Truncate(c.title, maxRowDesc)
		}
		rows = append(rows, row)
	}
	m := r.message()
	m.Type = "interactive"
	m.Interactive = &Interactive{Type: "list", Body: Body{Text: body},
		Action: Action{Button: listButton, Sections: []Section{{Rows: rows}}}}
	return append(out, m), rest
}

// distinctTitles reports whether the choices' button titles, as cut to
// WhatsApp's length, and ids are all different, as reply buttons must be.
func distinctTitles(cs []choice) bool {
	titles, ids := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		t, id := channels.Truncate(c.title, maxButtonTitle), c.id
		if titles[t] || ids[id] {
			return false
		}
		titles[t], ids[id] = true, true
	}
	return true
}

// media renders one media item: the message, and its caption as a text
// after an audio message, which has none. ok is false for a link that is
// not http(s) or a type WhatsApp does not take.
func (r renderer) media(m msg.Media) (out []Message, ok bool) {
	if !rich.WebURL(m.URL) {
		return nil, false
	}
	caption := meta.Truncate(strings.TrimSpace(m.Caption), maxCaption)
	one := r.message()
	media := &Media{Link: m.URL, Caption: caption}
	switch m.Type {
	case msg.MediaImage:
		one.Type, one.Image = "image", media
	case msg.MediaVideo:
		one.Type, one.Video = "video", media
	case msg.MediaFile:
		media.Filename = filename(m.URL)
		one.Type, one.Document = "document", media
	case msg.MediaAudio:
		media.Caption = ""
		one.Type, one.Audio = "audio", media
		out = append(out, one)
		if caption != "" {
			out = append(out, r.text(caption))
		}
		return out, true
	default:
		return nil, false
	}
	return append(out, one), true
}

// filename is the last segment of a document's URL path, which WhatsApp
// shows as the document's name.
func filename(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	name := path.Base(u.Path)
	if name == "." || name == "/" {
		return ""
	}
	return meta.Truncate(name, 240)
}
