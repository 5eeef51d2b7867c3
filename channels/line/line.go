package line

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "line"

// SignatureHeader is the header LINE signs webhook requests with.
const SignatureHeader = "X-Line-Signature"

// Settings.
const (
	SettingChannelSecret      = "channel_secret"
	SettingChannelAccessToken = "channel_access_token"
	SettingAPIBaseURL         = "api_base_url"
)

// DefaultAPIBaseURL is the Messaging API root when api_base_url is empty.
const DefaultAPIBaseURL = "https://api.line.me"

// DefaultReplyTokenTTL is how long after the event Parley still answers
// with its reply token; LINE asks for a prompt answer, so later turns push.
const DefaultReplyTokenTTL = 50 * time.Second

// Platform limits (Messaging API reference).
const (
	maxMessages    = 5 // per reply or push call
	maxText        = 5000
	maxQuickItems  = 13
	maxQuickLabel  = 20
	maxQuickText   = 300
	maxAltText     = 1500 // characters of a Flex message's altText
	maxBubbles     = 12   // bubbles of a Flex carousel
	maxActionLabel = 40   // characters of a Flex button's label
	maxData        = 300  // characters of a postback action's data and displayText
	maxURI         = 1000 // characters of a URI action's uri
	maxMediaURL    = 2000 // characters of an image URL
	maxEvents      = 100
	maxID          = 256
	maxInboundText = 8192
)

// MaxEventAge is how far an event's timestamp may be from Parley's clock,
// either way; older events are dropped as replays (Slack's window).
const MaxEventAge = 5 * time.Minute

// retryKeySpace derives the X-Line-Retry-Key of a push from the event, so a
// retried send is not delivered twice.
var retryKeySpace = uuid.MustParse("6f1c2f9e-3c55-4f3e-9a7e-5d1b0c8f4a21")

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Client sends the replies; nil means a client with a 10 s timeout.
	Client *http.Client
	// Now is the clock that decides whether a reply token is still fresh;
	// nil means time.Now.
	Now func() time.Time
	// ReplyTokenTTL is how long a reply token is used; zero means
	// DefaultReplyTokenTTL.
	ReplyTokenTTL time.Duration
}

// Adapter implements [channels.Adapter], [channels.Configurer] and
// [channels.Sender] for LINE.
type Adapter struct {
	client *http.Client
	now    func() time.Time
	ttl    time.Duration
}

// New returns the LINE adapter.
func New(cfg Config) *Adapter {
	cfg.Client = channels.SendClient(cfg.Client)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReplyTokenTTL <= 0 {
		cfg.ReplyTokenTTL = DefaultReplyTokenTTL
	}
	return &Adapter{client: cfg.Client, now: cfg.Now, ttl: cfg.ReplyTokenTTL}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string {
	return []string{SettingChannelSecret, SettingChannelAccessToken}
}

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	known := []string{SettingChannelSecret, SettingChannelAccessToken, SettingAPIBaseURL}
	if err := channels.CheckSettingNames(Name, s, known...); err != nil {
		return err
	}
	for _, k := range known[:2] {
		if s[k] == "" {
			return channels.BadRequest("the line channel needs %q from the LINE Developers console", k)
		}
	}
	if err := meta.CheckBaseURL(s[SettingAPIBaseURL]); err != nil {
		return err
	}
	return nil
}

// Signature is the X-Line-Signature of body: base64 HMAC-SHA256 under the
// channel secret.
func Signature(channelSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(channelSecret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether header is LINE's signature of the exact
// body bytes, in constant time; an empty secret or header is never valid.
func ValidSignature(channelSecret string, body []byte, header string) bool {
	if channelSecret == "" || header == "" {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(channelSecret))
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the line channel takes POST"}
	}
	if !ValidSignature(req.Settings[SettingChannelSecret], req.Body, req.Header.Get(SignatureHeader)) {
		return nil, channels.Unauthorized("missing or wrong %s for the line channel", SignatureHeader)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	events, err := ParseWebhook(req.Body, now)
	if err != nil {
		return nil, err
	}
	for _, ev := range events {
		ev.Bot, ev.Channel = req.Bot, Name
	}
	return &channels.Inbound{Events: events, Async: true, Response: ack()}, nil
}

// Render implements [channels.Adapter]: the webhook is only acknowledged;
// the replies go out through [Adapter.Send].
func (*Adapter) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return ack(), nil
}

func ack() *channels.Response {
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json", Body: []byte("{}")}
}

type webhook struct {
	Destination string            `json:"destination"`
	Events      []json.RawMessage `json:"events"`
}

// event is one webhook event.
type event struct {
	Type           string `json:"type"`
	Mode           string `json:"mode"`
	Timestamp      int64  `json:"timestamp"`
	WebhookEventID string `json:"webhookEventId"`
	ReplyToken     string `json:"replyToken"`
	Source         struct {
		Type    string `json:"type"`
		UserID  string `json:"userId"`
		GroupID string `json:"groupId"`
		RoomID  string `json:"roomId"`
	} `json:"source"`
	DeliveryContext struct {
		IsRedelivery bool `json:"isRedelivery"`
	} `json:"deliveryContext"`
	Message *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"message"`
	Postback *struct {
		Data string `json:"data"`
	} `json:"postback"`
}

// ParseWebhook normalizes a verified webhook body into events, one per
// message or postback a bot can answer. The console's Verify button sends
// no events at all. An event whose timestamp is more than MaxEventAge from
// now, or missing, is dropped; a webhook whose events are all such is
// refused as a replay (401).
func ParseWebhook(body []byte, now time.Time) ([]*msg.Event, error) {
	var w webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, channels.BadRequest("body is not a LINE webhook: %v", err)
	}
	var events []*msg.Event
	seen, stale := 0, 0
	for _, raw := range w.Events {
		if len(events) == maxEvents {
			break
		}
		seen++
		var e event
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		if d := now.Sub(time.UnixMilli(e.Timestamp)); e.Timestamp <= 0 || d > MaxEventAge || d < -MaxEventAge {
			stale++
			continue
		}
		if ev := normalize(&e); ev != nil {
			ev.Raw = raw
			events = append(events, ev)
		}
	}
	if stale > 0 && stale == seen {
		return nil, channels.Unauthorized("every event of the line webhook is more than %s away from now", MaxEventAge)
	}
	return events, nil
}

func normalize(e *event) *msg.Event {
	if e.Mode == "standby" || e.WebhookEventID == "" || len(e.WebhookEventID) > maxID {
		return nil
	}
	conv := e.Source.UserID
	switch e.Source.Type {
	case "group":
		conv = e.Source.GroupID
	case "room":
		conv = e.Source.RoomID
	}
	if conv == "" || len(conv) > maxID || len(e.Source.UserID) > maxID {
		return nil
	}
	user := e.Source.UserID
	if user == "" {
		user = conv
	}
	ev := &msg.Event{ID: e.WebhookEventID, User: user, Conversation: conv}
	if e.Timestamp > 0 {
		ev.Timestamp = time.UnixMilli(e.Timestamp).UTC()
	}
	switch {
	case e.Type == "message" && e.Message != nil:
		if e.Message.Type == "text" {
			ev.Text = e.Message.Text
			if ev.Text == "" {
				return nil
			}
			channels.NumberedAnswer(ev) // "2" picks the second of the numbered lines
		}
	case e.Type == "postback" && e.Postback != nil:
		if e.Postback.Data == "" {
			return nil
		}
		channels.Pressed(ev, e.Postback.Data, "") // LINE does not send the button's label
	default:
		return nil // follow, unfollow, join, leave, unsend, read, ...
	}
	if len(ev.Text)+len(ev.Postback) > maxInboundText || !utf8.ValidString(ev.Text) || !utf8.ValidString(ev.Postback) {
		return nil
	}
	return ev
}

// ReplyRequest is the body of POST /v2/bot/message/reply.
type ReplyRequest struct {
	ReplyToken string    `json:"replyToken"`
	Messages   []Message `json:"messages"`
}

// PushRequest is the body of POST /v2/bot/message/push.
type PushRequest struct {
	To       string    `json:"to"`
	Messages []Message `json:"messages"`
}

// replyToken is the event's reply token while it may still be used.
func (a *Adapter) replyToken(ev *msg.Event) string {
	if ev == nil || len(ev.Raw) == 0 {
		return ""
	}
	var e event
	if json.Unmarshal(ev.Raw, &e) != nil || e.ReplyToken == "" || e.DeliveryContext.IsRedelivery {
		return ""
	}
	if e.Timestamp <= 0 || a.now().Sub(time.UnixMilli(e.Timestamp)) > a.ttl {
		return ""
	}
	return e.ReplyToken
}

// Send implements [channels.Sender]: the first five messages answer with
// the event's reply token while it is fresh, the rest (and all of them when
// it is not) are pushed to the conversation, with a retry key derived from
// the event so a retried push is delivered once. A refused reply token
// falls back to a push. Channel data that cannot be merged fails the whole
// turn before anything is sent.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	msgs := Messages(res)
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if _, err := json.Marshal(m); err != nil { // channel data that is not a JSON object
			return &channels.SendError{Err: fmt.Errorf("message %d: %w", i+1, err)}
		}
	}
	to := res.Conversation
	id := ""
	if res.Event != nil {
		if to == "" {
			to = res.Event.Conversation
		}
		id = res.Event.ID
	}
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	token := s[SettingChannelAccessToken]
	if rt := a.replyToken(res.Event); rt != "" {
		first := msgs[:min(len(msgs), maxMessages)]
		body, _ := json.Marshal(ReplyRequest{ReplyToken: rt, Messages: first})
		err := meta.Post(ctx, a.client, base+"/v2/bot/message/reply", token, body, nil)
		var se *channels.SendError
		switch {
		case err == nil:
			msgs = msgs[len(first):]
		case errors.As(err, &se) && se.Status == http.StatusBadRequest:
			// The token expired or was used: push instead.
		default:
			return err
		}
	}
	if to == "" && len(msgs) > 0 {
		return &channels.SendError{Err: meta.ErrNoRecipient}
	}
	for i := 0; len(msgs) > 0; i++ {
		batch := msgs[:min(len(msgs), maxMessages)]
		msgs = msgs[len(batch):]
		body, _ := json.Marshal(PushRequest{To: to, Messages: batch})
		h := http.Header{}
		if id != "" {
			h.Set("X-Line-Retry-Key", uuid.NewSHA1(retryKeySpace, []byte(id+"#"+strconv.Itoa(i))).String())
		}
		if err := meta.Post(ctx, a.client, base+"/v2/bot/message/push", token, body, h); err != nil {
			var se *channels.SendError
			if errors.As(err, &se) && se.Status == http.StatusConflict {
				continue // already delivered under this retry key
			}
			return err
		}
	}
	return nil
}
