// Package web is the plain HTTP/JSON channel: a website widget, a mobile app
// or a test script posts the user's message and gets the bot's answer in the
// same response.
//
// Request (POST /hooks/{bot}/web, Authorization: Bearer <token>):
//
//	{"user": "u1", "text": "hi", "conversation": "optional", "intent": "optional",
//	 "slots": {"size": "large"}, "locale": "en-US", "id": "optional message id"}
//
// A button press sends the button's payload instead of (or with) the text:
//
//	{"user": "u1", "postback": "OrderPizza"}
//
// Response:
//
//	{"conversation": "u1", "intent": "Greet", "replies": [{"text": "Hello!",
//	 "buttons": [{"title": "Order", "payload": "OrderPizza"}]}], "end_conversation": false}
//
// Replies carry buttons, cards and media as the handler gave them, and the
// handler's channel_data.web as "channel_data"; the client renders them.
//
// The conversation defaults to the user, so each user has one running
// conversation. It is a conversation of the web channel only: Parley keys
// every conversation by its channel too, so a caller naming another
// channel's conversation id (an SMS sender's number) gets a web
// conversation of that id, never the other channel's. A client that may retry a request sends the same "id" each
// time; Parley then runs the turn once and answers every retry the same way.
//
// Browsers do not get the channel's token: they use user tokens ([Tokens]),
// which act as one user of one bot, from the pages of the channel's
// allowed_origins ([OriginAllowed]). The adapter is a [channels.Sender]:
// what the bot pushes goes to the conversation's [Outbox], which live
// connections read. The user manual is docs/channels/web.md.
package web

import (
	gojson "github.com/goccy/go-json"

	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "web"

// Limits on request fields.
const (
	maxIDLength   = 256
	maxTextLength = 4096
	// maxPostback bounds a pressed button's payload; a handler's payloads
	// may be as long as its reply cap allows, which is 64 KiB by default.
	maxPostback = 64 << 10
	maxSlots    = 64
	minTokenLen = channels.MinSecretLen
)

// Outbox keeps the answers of web conversations for their live
// connections (WebSocket), across replicas.
type Outbox interface {
	// Append adds one answer, the JSON of an [Answer], to the outbox of the
	// bot's web conversation, and returns the id it got there.
	Append(ctx context.Context, bot, conversation string, answer []byte) (id string, err error)
}

// Config configures the web channel adapter.
type Config struct {
	// Tokens verifies user tokens; nil accepts only the channel's token.
	Tokens *Tokens
	// Outbox receives what the bot sends later (schedules, human agents)
	// for live connections; nil makes the channel unable to push.
	Outbox Outbox
}

// Adapter implements [channels.Adapter] for the web channel, and
// [channels.Sender]: a pushed answer goes to the conversation's outbox,
// which live connections read.
type Adapter struct {
	cfg Config
}

// New returns the web channel adapter.
func New(cfg Config) *Adapter { return &Adapter{cfg: cfg} }

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// OriginAllowed reports whether a browser of origin may call the channel
// (see the package function [OriginAllowed]).
func (*Adapter) OriginAllowed(s channels.Settings, origin string) bool {
	return OriginAllowed(s, origin)
}

// Tokens is the adapter's user token signer (nil without one).
func (a *Adapter) Tokens() *Tokens { return a.cfg.Tokens }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{"token"} }

// SettingKinds implements [channels.Typed].
func (*Adapter) SettingKinds() map[string]channels.Kind {
	return map[string]channels.Kind{"allow_anonymous": channels.KindBool}
}

// ValidateSettings implements [channels.Configurer]: a token of at least 12
// characters; allowed_origins, exact origins separated by commas; and
// allow_anonymous, which needs allowed origins.
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, "token", "allowed_origins", "allow_anonymous"); err != nil {
		return err
	}
	if len(s["token"]) < minTokenLen {
		return channels.BadRequest("the web channel needs a \"token\" of at least %d characters", minTokenLen)
	}
	origins, err := ParseOrigins(s["allowed_origins"])
	if err != nil {
		return err
	}
	if v, set := s["allow_anonymous"]; set && v != "true" && v != "false" {
		return channels.BadRequest("\"allow_anonymous\" is true or false")
	}
	if AllowsAnonymous(s) && len(origins) == 0 {
		return channels.BadRequest("\"allow_anonymous\" needs \"allowed_origins\": anonymous sessions are opened by browsers of those origins only")
	}
	return nil
}

// Message is the body a client posts.
type Message struct {
	ID           string            `json:"id"`
	User         string            `json:"user"`
	Text         string            `json:"text"`
	Conversation string            `json:"conversation"`
	Intent       string            `json:"intent"`
	Postback     string            `json:"postback"`
	Slots        map[string]string `json:"slots"`
	Locale       string            `json:"locale"`
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the web channel takes POST"}
	}
	user, err := a.Authenticate(req.Bot, req.Settings, req.Header.Get("Authorization"), req.Now)
	if err != nil {
		return nil, err
	}
	ev, err := DecodeMessageAs(req.Body, user)
	if err != nil {
		return nil, err
	}
	ev.Bot, ev.Channel, ev.Timestamp = req.Bot, Name, req.Now
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

// Authenticate checks an Authorization header: the channel's token lets
// the caller act as any user (user is empty); a user token lets it act as
// the token's user only. Anything else is a 401 [channels.Error].
func (a *Adapter) Authenticate(bot string, s channels.Settings, header string, now time.Time) (user string, err error) {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || s["token"] == "" {
		return "", channels.Unauthorized("missing or wrong bearer token for the web channel")
	}
	if IsChannelToken(s, got) {
		return "", nil
	}
	user, _, err = a.cfg.Tokens.Verify(bot, s["token"], got, now)
	if err != nil {
		return "", channels.Unauthorized("missing or wrong bearer token for the web channel")
	}
	return user, nil
}

// IsChannelToken reports, in constant time, whether got is the channel's
// secret token.
func IsChannelToken(s channels.Settings, got string) bool {
	token := s["token"]
	return token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// DecodeMessage parses and checks a web message body into an event; the
// management API's invoke route uses it too.
func DecodeMessage(body []byte) (*msg.Event, error) { return DecodeMessageAs(body, "") }

// DecodeMessageAs is [DecodeMessage] for a caller bound to user (by a user
// token): "user" defaults to it and may name no one else, and the
// conversation must be one of the user's ([OwnsConversation]); both are 403
// otherwise. An empty user binds nothing.
func DecodeMessageAs(body []byte, user string) (*msg.Event, error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, channels.BadRequest("body is not a valid message: %v", err)
	}
	if dec.More() {
		return nil, channels.BadRequest("body has data after the JSON object")
	}
	// The event's raw payload is the body as the client sent it.
	return m.event(user, bytes.TrimSpace(body))
}

// Event checks the message and makes it an event, for a caller bound to
// user as in [DecodeMessageAs] (an empty user binds nothing).
func (m Message) Event(user string) (*msg.Event, error) {
	return m.event(user, nil)
}

// event is [Message.Event] with the raw payload, or nil to encode the
// message as it is after the checks.
func (m Message) event(user string, raw []byte) (*msg.Event, error) {
	if user != "" {
		if m.User == "" {
			m.User = user
		}
		if m.User != user {
			return nil, Forbidden("this token acts as user %q only", user)
		}
		if m.Conversation != "" && !OwnsConversation(user, m.Conversation) {
			return nil, Forbidden("conversation %q is not one of user %q's (the user id, or the id and %q)", m.Conversation, user, ConversationSep)
		}
	}
	switch {
	case m.User == "" || len(m.User) > maxIDLength:
		return nil, channels.BadRequest("\"user\" is required, at most %d bytes", maxIDLength)
	case len(m.Conversation) > maxIDLength || len(m.ID) > maxIDLength:
		return nil, channels.BadRequest("\"conversation\" and \"id\" are at most %d bytes", maxIDLength)
	case m.Text == "" && m.Intent == "" && m.Postback == "":
		return nil, channels.BadRequest("\"text\", \"postback\" or \"intent\" is required")
	case len(m.Text) > maxTextLength:
		return nil, channels.BadRequest("\"text\" is at most %d bytes", maxTextLength)
	case len(m.Postback) > maxPostback:
		return nil, channels.BadRequest("\"postback\" is at most %d bytes", maxPostback)
	case len(m.Slots) > maxSlots:
		return nil, channels.BadRequest("at most %d slots", maxSlots)
	}
	if m.Conversation == "" {
		m.Conversation = m.User
	}
	id, madeUp := m.ID, m.ID == ""
	if madeUp {
		id = uuid.NewString()
	}
	if raw == nil {
		raw, _ = json.Marshal(m)
	}
	return &msg.Event{ID: id, IDMadeUp: madeUp, User: m.User, Conversation: m.Conversation, Text: m.Text, Postback: m.Postback,
		Intent: m.Intent, Confidence: confidence(m.Intent), Slots: m.Slots, Locale: m.Locale, Raw: raw}, nil
}

func confidence(intent string) float64 {
	if intent != "" {
		return 1
	}
	return 0
}

// Answer is the web channel's response body.
type Answer struct {
	Conversation    string  `json:"conversation"`
	Intent          string  `json:"intent"`
	Replies         []Reply `json:"replies"`
	EndConversation bool    `json:"end_conversation"`
}

// Reply is one answer as the web channel shows it: everything the handler
// gave, for the client to render, and its channel_data for the web channel.
type Reply struct {
	Text        string          `json:"text"`
	SSML        string          `json:"ssml,omitempty"`
	Reprompt    string          `json:"reprompt,omitempty"`
	Options     []string        `json:"options,omitempty"`
	Buttons     []msg.Button    `json:"buttons,omitempty"`
	Cards       []msg.Card      `json:"cards,omitempty"`
	Media       []msg.Media     `json:"media,omitempty"`
	ChannelData json.RawMessage `json:"channel_data,omitempty"`
}

// NewAnswer shapes a turn result as the web channel's response.
func NewAnswer(r *msg.TurnResult) Answer {
	replies := make([]Reply, 0, len(r.Replies))
	for _, rep := range r.Replies {
		replies = append(replies, Reply{Text: rep.Text, SSML: rep.SSML, Reprompt: rep.Reprompt, Options: rep.Options,
			Buttons: rep.Buttons, Cards: rep.Cards, Media: rep.Media, ChannelData: rep.ChannelData[Name]})
	}
	return Answer{Conversation: r.Conversation, Intent: r.Decision.Intent, Replies: replies, EndConversation: r.EndConversation}
}

// Render implements [channels.Adapter].
func (a *Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	body, err := gojson.Marshal(NewAnswer(results[0])) // Parley's own data: see docs/dependencies.md
	if err != nil {
		return nil, err
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json; charset=utf-8", Body: body}, nil
}

// Send implements [channels.Sender]: res's answer goes to the outbox of its
// conversation, for the user's live connections (now, or when they
// reconnect while the outbox keeps it).
func (a *Adapter) Send(ctx context.Context, _ channels.Settings, res *msg.TurnResult) error {
	if a.cfg.Outbox == nil {
		return &channels.SendError{Err: errors.New("web: live connections are not enabled")}
	}
	if res.Event == nil || res.Event.Bot == "" || res.Conversation == "" {
		return &channels.SendError{Err: errors.New("web: a pushed answer needs its bot and conversation")}
	}
	body, err := gojson.Marshal(NewAnswer(res))
	if err != nil {
		return &channels.SendError{Err: err}
	}
	if _, err := a.cfg.Outbox.Append(ctx, res.Event.Bot, res.Conversation, body); err != nil {
		return &channels.SendError{Retryable: true, Err: err}
	}
	return nil
}

var _ channels.Sender = (*Adapter)(nil)
