package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "messenger"

// Platform limits (Messenger Platform reference).
const (
	maxText         = 2000 // characters of a text message
	maxQuickReplies = 13
	maxQuickTitle   = 20   // characters of a quick reply's title
	maxPayload      = 1000 // characters of a quick reply's or a postback button's payload
	maxButtons      = 3    // buttons of a button template, or of a generic template's element
	maxButtonTitle  = 20   // characters of a button's title
	maxTemplateText = 640  // characters of a button template's text
	maxElements     = 10   // elements of a generic template (a carousel)
	maxElementText  = 80   // characters of an element's title and subtitle
	maxEvents       = 100  // events taken from one notification
	maxID           = 256
	maxInboundText  = 8192
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Client sends the replies; nil means a client with a 10 s timeout.
	Client *http.Client
}

// Adapter implements [channels.Adapter], [channels.Configurer] and
// [channels.Sender] for Messenger and Instagram.
type Adapter struct {
	client *http.Client
}

// New returns the Messenger adapter.
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

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	return meta.CheckSettings(Name, s, nil)
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if resp, ok := meta.Handshake(req, req.Settings[meta.SettingVerifyToken]); ok {
		return &channels.Inbound{Response: resp}, nil
	}
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the messenger channel takes POST (and the GET subscription check)"}
	}
	if !meta.ValidSignature(req.Settings[meta.SettingAppSecret], req.Body, req.Header.Get(meta.SignatureHeader)) {
		return nil, channels.Unauthorized("missing or wrong %s for the messenger channel", meta.SignatureHeader)
	}
	events, err := ParseNotification(req.Body)
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

// notification is the webhook body.
type notification struct {
	Object string `json:"object"`
	Entry  []struct {
		ID        string            `json:"id"`
		Messaging []json.RawMessage `json:"messaging"`
	} `json:"entry"`
}

type messaging struct {
	Sender    struct{ ID string } `json:"sender"`
	Recipient struct{ ID string } `json:"recipient"`
	Timestamp int64               `json:"timestamp"`
	Message   *struct {
		Mid         string          `json:"mid"`
		Text        string          `json:"text"`
		IsEcho      bool            `json:"is_echo"`
		IsDeleted   bool            `json:"is_deleted"`
		Unsupported bool            `json:"is_unsupported"`
		Attachments json.RawMessage `json:"attachments"`
		QuickReply  *struct {
			Payload string `json:"payload"`
		} `json:"quick_reply"`
	} `json:"message"`
	Postback *struct {
		Mid     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
}

// ParseNotification normalizes a verified webhook body into events, one per
// message or postback a bot can answer; everything else is left out.
func ParseNotification(body []byte) ([]*msg.Event, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, channels.BadRequest("body is not a Messenger notification: %v", err)
	}
	if n.Object != "page" && n.Object != "instagram" {
		return nil, nil
	}
	var events []*msg.Event
	for _, e := range n.Entry {
		for _, raw := range e.Messaging {
			if len(events) == maxEvents {
				return events, nil
			}
			var m messaging
			if json.Unmarshal(raw, &m) != nil {
				continue
			}
			if ev := normalize(&m, e.ID, raw, n.Object); ev != nil {
				events = append(events, ev)
			}
		}
	}
	return events, nil
}

// normalize makes an event of one messaging item, or nil for one to ignore.
// object is the notification's object ("page" or "instagram").
func normalize(m *messaging, page string, raw json.RawMessage, object string) *msg.Event {
	user := m.Sender.ID
	if user == "" || len(user) > maxID || user == page || user == m.Recipient.ID {
		return nil // the page's own message, or no sender
	}
	ev := &msg.Event{User: user, Conversation: user, Raw: withObject(compact(raw), object)}
	if m.Timestamp > 0 {
		ev.Timestamp = time.UnixMilli(m.Timestamp).UTC()
	}
	switch {
	case m.Message != nil:
		msg := m.Message
		if msg.IsEcho || msg.IsDeleted || msg.Unsupported || msg.Mid == "" {
			return nil
		}
		ev.ID, ev.Text = msg.Mid, msg.Text
		if msg.QuickReply != nil && msg.QuickReply.Payload != "" {
			// An option's quick reply gives the option as the text; a
			// button's, its payload (or the reference of a long one).
			channels.Pressed(ev, msg.QuickReply.Payload, msg.Text)
		} else {
			channels.NumberedAnswer(ev) // "2" picks the second of the numbered lines
		}
		if ev.Text == "" && len(msg.Attachments) == 0 {
			return nil
		}
	case m.Postback != nil:
		pb := m.Postback
		ev.ID = pb.Mid
		if pb.Payload == "" {
			ev.Text = pb.Title
		} else {
			channels.Pressed(ev, pb.Payload, pb.Title)
		}
		if ev.Text == "" && ev.Postback == "" && ev.Choice == "" {
			return nil
		}
		if ev.ID == "" { // older postbacks have no mid
			ev.ID = "postback:" + user + ":" + strconv.FormatInt(m.Timestamp, 10)
		}
	default:
		return nil // reads, deliveries, reactions, edits, opt-ins, referrals
	}
	if len(ev.ID) > maxID || len(ev.Text)+len(ev.Postback) > maxInboundText ||
		!utf8.ValidString(ev.Text) || !utf8.ValidString(ev.Postback) {
		return nil
	}
	return ev
}

// withObject adds the notification's object to a compact messaging item, so
// that a handler, and the rendering of the answer, can tell Instagram from
// Messenger: {"object":"instagram","sender":...}.
func withObject(item json.RawMessage, object string) json.RawMessage {
	if len(item) < 2 || item[0] != '{' {
		return item
	}
	q, _ := json.Marshal(object)
	head := `{"object":` + string(q)
	if item[1] != '}' {
		head += ","
	}
	return append([]byte(head), item[1:]...)
}

// instagram reports whether ev came from Instagram; false for a message
// Parley starts (a schedule), which has no payload to tell.
func instagram(ev *msg.Event) bool {
	if ev == nil || len(ev.Raw) == 0 {
		return false
	}
	var o struct {
		Object string `json:"object"`
	}
	return json.Unmarshal(ev.Raw, &o) == nil && o.Object == "instagram"
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	return b.Bytes()
}

// Send implements [channels.Sender]: each message of [Messages] is one Send
// API call. Channel data that cannot be merged fails the whole turn before
// anything is sent.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	msgs := Messages(res)
	if len(msgs) > 0 && msgs[0].Recipient.ID == "" {
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
	url := meta.BaseURL(s) + "/me/messages"
	for _, body := range bodies {
		if err := meta.Post(ctx, a.client, url, s[meta.SettingAccessToken], body, nil); err != nil {
			return err
		}
	}
	return nil
}
