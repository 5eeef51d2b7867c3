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
package web

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

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

// Adapter implements [channels.Adapter] for the web channel.
type Adapter struct{}

// New returns the web channel adapter.
func New() *Adapter { return &Adapter{} }

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{"token"} }

// ValidateSettings implements [channels.Configurer]: a token of at least 12 characters.
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, "token"); err != nil {
		return err
	}
	if len(s["token"]) < minTokenLen {
		return channels.BadRequest("the web channel needs a \"token\" of at least %d characters", minTokenLen)
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
	if !authorized(req.Header.Get("Authorization"), req.Settings["token"]) {
		return nil, channels.Unauthorized("missing or wrong bearer token for the web channel")
	}
	ev, err := DecodeMessage(req.Body)
	if err != nil {
		return nil, err
	}
	ev.Bot, ev.Channel, ev.Timestamp = req.Bot, Name, req.Now
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

func authorized(header, token string) bool {
	if token == "" {
		return false
	}
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// DecodeMessage parses and checks a web message body into an event; the
// management API's invoke route uses it too.
func DecodeMessage(body []byte) (*msg.Event, error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, channels.BadRequest("body is not a valid message: %v", err)
	}
	if dec.More() {
		return nil, channels.BadRequest("body has data after the JSON object")
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
	id := m.ID
	if id == "" {
		id = uuid.NewString()
	}
	raw, _ := json.Marshal(m)
	return &msg.Event{ID: id, User: m.User, Conversation: m.Conversation, Text: m.Text, Postback: m.Postback,
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
	body, err := json.Marshal(NewAnswer(results[0]))
	if err != nil {
		return nil, err
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json; charset=utf-8", Body: body}, nil
}
