package whatsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "whatsapp"

// SettingPhoneNumberID names the business phone number that answers.
const SettingPhoneNumberID = "phone_number_id"

// Platform limits (Cloud API messages reference).
const (
	maxText        = 4096 // characters of a text message
	maxBody        = 1024 // characters of an interactive message's body
	maxCaption     = 1024 // characters of a media caption
	maxButtons     = 3
	maxButtonTitle = 20
	maxButtonID    = 256
	maxRows        = 10
	maxRowTitle    = 24
	maxRowDesc     = 72
	maxRowID       = 200
	maxEvents      = 100
	maxID          = 256
	maxInboundText = 8192
)

// listButton is the label of the button that opens a list.
const listButton = "Options"

// chooseBody is the body of an interactive message whose reply has no text
// to put there (WhatsApp requires one).
const chooseBody = "Please choose:"

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Client sends the replies; nil means a client with a 10 s timeout.
	Client *http.Client
}

// Adapter implements [channels.Adapter], [channels.Configurer] and
// [channels.Sender] for the WhatsApp Cloud API.
type Adapter struct {
	client *http.Client
}

// New returns the WhatsApp Cloud API adapter.
func New(cfg Config) *Adapter {
	cfg.Client = channels.SendClient(cfg.Client)
	return &Adapter{client: cfg.Client}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string {
	return []string{meta.SettingAppSecret, meta.SettingVerifyToken, meta.SettingAccessToken}
}

// SettingKinds implements [channels.Typed]: the phone number id is a number.
func (*Adapter) SettingKinds() map[string]channels.Kind {
	return map[string]channels.Kind{SettingPhoneNumberID: channels.KindNumber}
}

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := meta.CheckSettings(Name, s, []string{SettingPhoneNumberID}); err != nil {
		return err
	}
	if _, err := strconv.ParseUint(s[SettingPhoneNumberID], 10, 64); err != nil {
		return channels.BadRequest("%q is the number's id from the WhatsApp Manager (digits)", SettingPhoneNumberID)
	}
	return nil
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if resp, ok := meta.Handshake(req, req.Settings[meta.SettingVerifyToken]); ok {
		return &channels.Inbound{Response: resp}, nil
	}
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the whatsapp channel takes POST (and the GET subscription check)"}
	}
	if !meta.ValidSignature(req.Settings[meta.SettingAppSecret], req.Body, req.Header.Get(meta.SignatureHeader)) {
		return nil, channels.Unauthorized("missing or wrong %s for the whatsapp channel", meta.SignatureHeader)
	}
	events, err := ParseNotification(req.Body, req.Settings[SettingPhoneNumberID])
	if err != nil {
		return nil, err
	}
	for _, ev := range events {
		ev.Bot, ev.Channel = req.Bot, Name
	}
	return &channels.Inbound{Events: events, Async: true, Response: meta.Ack()}, nil
}

// Render implements [channels.Adapter]: the webhook is only acknowledged;
// the replies go out through [Adapter.Send].
func (*Adapter) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return meta.Ack(), nil
}

type notification struct {
	Object string `json:"object"`
	Entry  []struct {
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Metadata json.RawMessage `json:"metadata"`
				Contacts []struct {
					WaID    string `json:"wa_id"`
					Profile struct {
						Name string `json:"name"`
					} `json:"profile"`
				} `json:"contacts"`
				Messages []json.RawMessage `json:"messages"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type metadata struct {
	PhoneNumberID string `json:"phone_number_id"`
}

type message struct {
	From        string                `json:"from"`
	ID          string                `json:"id"`
	Timestamp   string                `json:"timestamp"`
	Type        string                `json:"type"`
	Text        struct{ Body string } `json:"text"`
	Interactive struct {
		ButtonReply struct{ ID, Title string } `json:"button_reply"`
		ListReply   struct{ ID, Title string } `json:"list_reply"`
	} `json:"interactive"`
	Button   struct{ Payload, Text string } `json:"button"`
	Image    struct{ Caption string }       `json:"image"`
	Video    struct{ Caption string }       `json:"video"`
	Document struct{ Caption string }       `json:"document"`
}

// Raw is an event's raw payload: the message with the business number's
// metadata and the sender's profile name.
type Raw struct {
	Metadata json.RawMessage `json:"metadata,omitempty"`
	Name     string          `json:"name,omitempty"`
	Message  json.RawMessage `json:"message"`
}

// ParseNotification normalizes a verified webhook body into events, one per
// message a bot can answer; messages to a number other than phoneNumberID
// (when given) and everything else are left out.
func ParseNotification(body []byte, phoneNumberID string) ([]*msg.Event, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, channels.BadRequest("body is not a WhatsApp notification: %v", err)
	}
	if n.Object != "whatsapp_business_account" {
		return nil, nil
	}
	var events []*msg.Event
	for _, e := range n.Entry {
		for _, c := range e.Changes {
			if c.Field != "messages" {
				continue
			}
			var md metadata
			_ = json.Unmarshal(c.Value.Metadata, &md)
			if phoneNumberID != "" && md.PhoneNumberID != phoneNumberID {
				continue
			}
			for _, raw := range c.Value.Messages {
				if len(events) == maxEvents {
					return events, nil
				}
				var m message
				if json.Unmarshal(raw, &m) != nil {
					continue
				}
				ev := normalize(&m)
				if ev == nil {
					continue
				}
				r := Raw{Metadata: c.Value.Metadata, Message: raw}
				for _, ct := range c.Value.Contacts {
					if ct.WaID == m.From {
						r.Name = ct.Profile.Name
					}
				}
				ev.Raw, _ = json.Marshal(r)
				events = append(events, ev)
			}
		}
	}
	return events, nil
}

func normalize(m *message) *msg.Event {
	if m.From == "" || m.ID == "" || len(m.From) > maxID || len(m.ID) > maxID {
		return nil
	}
	ev := &msg.Event{ID: m.ID, User: m.From, Conversation: m.From}
	if s, err := strconv.ParseInt(m.Timestamp, 10, 64); err == nil && s > 0 {
		ev.Timestamp = time.Unix(s, 0).UTC()
	}
	switch m.Type {
	case "text":
		ev.Text = m.Text.Body
		channels.NumberedAnswer(ev) // "2" picks the second of the numbered lines
	case "interactive":
		// A reply's button gives its payload, an option the option as text.
		id := firstOf(m.Interactive.ButtonReply.ID, m.Interactive.ListReply.ID)
		title := firstOf(m.Interactive.ButtonReply.Title, m.Interactive.ListReply.Title)
		if id == "" {
			ev.Text = title
		} else {
			channels.Pressed(ev, id, title)
		}
	case "button": // a template's quick-reply button
		if m.Button.Payload == "" {
			ev.Text = m.Button.Text
		} else {
			channels.Pressed(ev, m.Button.Payload, m.Button.Text)
		}
	case "image", "video", "document", "audio", "sticker", "location", "contacts":
		ev.Text = firstOf(m.Image.Caption, m.Video.Caption, m.Document.Caption)
	default:
		return nil // reactions, system notices, unsupported
	}
	if ev.Text == "" && ev.Postback == "" && ev.Choice == "" && (m.Type == "text" || m.Type == "interactive" || m.Type == "button") {
		return nil
	}
	if len(ev.Text)+len(ev.Postback) > maxInboundText || !utf8.ValidString(ev.Text) || !utf8.ValidString(ev.Postback) {
		return nil
	}
	return ev
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Send implements [channels.Sender]: each message of [Messages] is one
// messages call. Channel data that cannot be merged fails the whole turn
// before anything is sent.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	msgs := Messages(res)
	if len(msgs) > 0 && msgs[0].To == "" {
		return &channels.SendError{Err: meta.ErrNoRecipient}
	}
	bodies := make([][]byte, len(msgs))
	for i, m := range msgs {
		b, err := m.Body()
		if err != nil { // channel data that is not a JSON object
			return &channels.SendError{Err: fmt.Errorf("message %d: %w", i+1, err)}
		}
		bodies[i] = b
	}
	endpoint := meta.BaseURL(s) + "/" + url.PathEscape(s[SettingPhoneNumberID]) + "/messages"
	for _, b := range bodies {
		if err := meta.Post(ctx, a.client, endpoint, s[meta.SettingAccessToken], b, nil); err != nil {
			return err
		}
	}
	return nil
}
