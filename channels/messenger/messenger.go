package messenger

import (
	"bytes"
	"context"
	"encoding/json"
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
	maxPayload      = 1000 // characters of a quick reply's payload
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
			if ev := normalize(&m, e.ID, raw); ev != nil {
				events = append(events, ev)
			}
		}
	}
	return events, nil
}

// normalize makes an event of one messaging item, or nil for one to ignore.
func normalize(m *messaging, page string, raw json.RawMessage) *msg.Event {
	user := m.Sender.ID
	if user == "" || len(user) > maxID || user == page || user == m.Recipient.ID {
		return nil // the page's own message, or no sender
	}
	ev := &msg.Event{User: user, Conversation: user, Raw: compact(raw)}
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
			ev.Text = msg.QuickReply.Payload
		}
		if ev.Text == "" && len(msg.Attachments) == 0 {
			return nil
		}
	case m.Postback != nil:
		pb := m.Postback
		ev.ID, ev.Text = pb.Mid, pb.Payload
		if ev.Text == "" {
			ev.Text = pb.Title
		}
		if ev.ID == "" { // older postbacks have no mid
			ev.ID = "postback:" + user + ":" + strconv.FormatInt(m.Timestamp, 10)
		}
	default:
		return nil // reads, deliveries, reactions, edits, opt-ins, referrals
	}
	if len(ev.ID) > maxID || len(ev.Text) > maxInboundText || !utf8.ValidString(ev.Text) {
		return nil
	}
	return ev
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	return b.Bytes()
}

// Message is one Send API request.
type Message struct {
	Recipient     Recipient `json:"recipient"`
	MessagingType string    `json:"messaging_type"`
	Message       Content   `json:"message"`
}

// Recipient is whom a message goes to.
type Recipient struct {
	ID string `json:"id"`
}

// Content is a message's text and quick replies.
type Content struct {
	Text         string       `json:"text"`
	QuickReplies []QuickReply `json:"quick_replies,omitempty"`
}

// QuickReply is one quick-reply button; its payload comes back as the
// user's message.
type QuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// Messages renders a turn's replies as Send API requests, one per reply
// with text or options. A reply to a user's message is messaging type
// RESPONSE; a message Parley starts (a schedule) is UPDATE.
func Messages(res *msg.TurnResult) []Message {
	to := res.Conversation
	if to == "" && res.Event != nil {
		to = res.Event.Conversation
	}
	kind := "UPDATE"
	if res.Event != nil && len(res.Event.Raw) > 0 {
		kind = "RESPONSE"
	}
	var out []Message
	for _, r := range res.Replies {
		if r.Text == "" && len(r.Options) == 0 {
			continue
		}
		c := Content{Text: meta.Truncate(r.Text, maxText)}
		for _, o := range r.Options {
			if len(c.QuickReplies) == maxQuickReplies || o == "" {
				continue
			}
			c.QuickReplies = append(c.QuickReplies, QuickReply{ContentType: "text",
				Title: meta.Truncate(o, maxQuickTitle), Payload: meta.Truncate(o, maxPayload)})
		}
		if c.Text == "" {
			c.Text = meta.Truncate(r.Options[0], maxText)
		}
		out = append(out, Message{Recipient: Recipient{ID: to}, MessagingType: kind, Message: c})
	}
	return out
}

// Send implements [channels.Sender]: each reply is one Send API call.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	msgs := Messages(res)
	if len(msgs) > 0 && msgs[0].Recipient.ID == "" {
		return &channels.SendError{Err: meta.ErrNoRecipient}
	}
	url := meta.BaseURL(s) + "/me/messages"
	for _, m := range msgs {
		body, err := json.Marshal(m)
		if err != nil {
			return &channels.SendError{Err: err}
		}
		if err := meta.Post(ctx, a.client, url, s[meta.SettingAccessToken], body, nil); err != nil {
			return err
		}
	}
	return nil
}
