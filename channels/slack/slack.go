package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "slack"

// Settings, as Slack's app console names them.
const (
	SettingSigningSecret = "signing_secret"
	SettingBotToken      = "bot_token"
	SettingAPIBaseURL    = "api_base_url"
)

// DefaultAPIBaseURL is Slack's Web API.
const DefaultAPIBaseURL = "https://slack.com/api"

// MaxSkew is how far a request's timestamp may be from the clock.
const MaxSkew = 5 * time.Minute

// Config configures an [Adapter].
type Config struct {
	// Client sends replies (default: a client with a 10s timeout).
	Client *http.Client
}

// Adapter implements [channels.Adapter] and [channels.Sender] for Slack.
type Adapter struct {
	client *http.Client
}

// New returns the Slack adapter.
func New(cfg Config) *Adapter {
	cfg.Client = channels.SendClient(cfg.Client)
	return &Adapter{client: cfg.Client}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{SettingSigningSecret, SettingBotToken} }

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingSigningSecret, SettingBotToken, SettingAPIBaseURL); err != nil {
		return err
	}
	if s[SettingSigningSecret] == "" || s[SettingBotToken] == "" {
		return channels.BadRequest("the slack channel needs \"signing_secret\" and \"bot_token\"")
	}
	return validBaseURL(s[SettingAPIBaseURL])
}

func validBaseURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return channels.BadRequest("\"api_base_url\" must be an http(s) URL")
	}
	return nil
}

// Signature is Slack's v0 request signature:
// "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)).
func Signature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's v0 signature and that its timestamp is within
// [MaxSkew] of now. The comparison is constant-time.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	ts, sig := h.Get("X-Slack-Request-Timestamp"), h.Get("X-Slack-Signature")
	if secret == "" || ts == "" || sig == "" {
		return channels.Unauthorized("missing Slack signature headers")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return channels.Unauthorized("malformed X-Slack-Request-Timestamp")
	}
	if d := now.Sub(time.Unix(secs, 0)); d > MaxSkew || d < -MaxSkew {
		return channels.Unauthorized("Slack request timestamp is outside the 5-minute window")
	}
	if !hmac.Equal([]byte(Signature(secret, ts, body)), []byte(sig)) {
		return channels.Unauthorized("wrong Slack signature")
	}
	return nil
}

// ack is the empty 200 Slack expects within 3 seconds.
var ack = &channels.Response{Status: http.StatusOK}

// Parse implements [channels.Adapter]: it verifies the signature, answers
// url_verification, and turns messages, mentions, button clicks and slash
// commands into events processed asynchronously.
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "Slack posts its requests"}
	}
	if err := Verify(req.Settings[SettingSigningSecret], req.Header, req.Body, req.Now); err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	var in *channels.Inbound
	var err error
	if ct == "application/x-www-form-urlencoded" {
		in, err = ParseForm(req.Body)
	} else {
		in, err = ParseEvents(req.Body)
	}
	if err != nil {
		return nil, err
	}
	for _, ev := range in.Events {
		ev.Bot, ev.Channel = req.Bot, Name
		if ev.Timestamp.IsZero() {
			ev.Timestamp = req.Now.UTC()
		}
	}
	return in, nil
}

// Render implements [channels.Adapter]. Slack replies go through [Adapter.Send];
// the webhook itself is only acknowledged.
func (*Adapter) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return ack, nil
}

// envelope is the Events API's outer object.
type envelope struct {
	Type           string          `json:"type"`
	Challenge      string          `json:"challenge"`
	TeamID         string          `json:"team_id"`
	EventID        string          `json:"event_id"`
	EventTime      int64           `json:"event_time"`
	Event          json.RawMessage `json:"event"`
	Authorizations []struct {
		UserID string `json:"user_id"`
		IsBot  bool   `json:"is_bot"`
	} `json:"authorizations"`
}

// message is an inner message or app_mention event.
type message struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
}

var leadingMention = regexp.MustCompile(`^\s*<@[A-Z0-9]+>[:,]?\s*`)

// ParseEvents normalizes an Events API body (verified by the caller).
func ParseEvents(body []byte) (*channels.Inbound, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, channels.BadRequest("body is not a Slack event: %v", err)
	}
	switch env.Type {
	case "url_verification":
		return &channels.Inbound{Response: &channels.Response{Status: http.StatusOK,
			ContentType: "text/plain; charset=utf-8", Body: []byte(env.Challenge)}}, nil
	case "event_callback":
	default: // app_rate_limited and anything new: acknowledge
		return &channels.Inbound{Response: ack}, nil
	}
	var m message
	if err := json.Unmarshal(env.Event, &m); err != nil {
		return nil, channels.BadRequest("malformed Slack event: %v", err)
	}
	ignored := &channels.Inbound{Response: ack}
	if m.Type != "message" && m.Type != "app_mention" {
		return ignored, nil
	}
	// Edits, joins, the bot's own and other bots' messages never trigger a turn.
	if m.Subtype != "" || m.BotID != "" || m.User == "" || m.Channel == "" || env.EventID == "" {
		return ignored, nil
	}
	botUser := ""
	if len(env.Authorizations) > 0 {
		botUser = env.Authorizations[0].UserID
	}
	if botUser != "" && m.User == botUser {
		return ignored, nil
	}
	// A mention in a channel arrives twice, as message and as app_mention:
	// answer the app_mention only.
	if m.Type == "message" && m.ChannelType != "im" && botUser != "" && strings.Contains(m.Text, "<@"+botUser+">") {
		return ignored, nil
	}
	text := m.Text
	if m.Type == "app_mention" {
		text = leadingMention.ReplaceAllString(text, "")
	}
	ev := &msg.Event{ID: env.EventID, User: m.User, Conversation: conversation(m.Channel, m.ThreadTS),
		Text: text, Raw: json.RawMessage(body)}
	if env.EventTime > 0 {
		ev.Timestamp = time.Unix(env.EventTime, 0).UTC()
	}
	return &channels.Inbound{Events: []*msg.Event{ev}, Response: ack, Async: true}, nil
}

// conversation is a Slack channel, or a thread in it: "C123" or "C123:1531431954.000073".
func conversation(channel, thread string) string {
	if thread == "" {
		return channel
	}
	return channel + ":" + thread
}

// interaction is the part of an interactivity payload Parley reads.
type interaction struct {
	Type      string `json:"type"`
	TriggerID string `json:"trigger_id"`
	User      struct {
		ID string `json:"id"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
		ThreadTS  string `json:"thread_ts"`
	} `json:"container"`
	Message struct {
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
	} `json:"message"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
		Text     struct {
			Text string `json:"text"`
		} `json:"text"`
	} `json:"actions"`
}

// ParseForm normalizes a slash command or an interactivity payload (a button
// click), both form-encoded (verified by the caller).
func ParseForm(body []byte) (*channels.Inbound, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, channels.BadRequest("body is not a Slack form: %v", err)
	}
	if p := form.Get("payload"); p != "" {
		return parseInteraction([]byte(p))
	}
	cmd, user, channel, trigger := form.Get("command"), form.Get("user_id"), form.Get("channel_id"), form.Get("trigger_id")
	if cmd == "" || user == "" || channel == "" || trigger == "" {
		return nil, channels.BadRequest("a Slack slash command needs command, user_id, channel_id and trigger_id")
	}
	text := strings.TrimSpace(form.Get("text"))
	if text == "" {
		text = cmd
	}
	raw, _ := json.Marshal(formJSON(form))
	ev := &msg.Event{ID: "cmd:" + trigger, User: user, Conversation: channel, Text: text,
		Slots: map[string]string{"command": cmd}, Raw: raw}
	return &channels.Inbound{Events: []*msg.Event{ev}, Response: ack, Async: true}, nil
}

// formJSON flattens a form to a JSON-friendly map for Event.Raw.
func formJSON(f url.Values) map[string]string {
	m := make(map[string]string, len(f))
	for k := range f {
		m[k] = f.Get(k)
	}
	return m
}

func parseInteraction(p []byte) (*channels.Inbound, error) {
	var in interaction
	if err := json.Unmarshal(p, &in); err != nil {
		return nil, channels.BadRequest("malformed Slack interaction: %v", err)
	}
	if in.Type != "block_actions" || len(in.Actions) == 0 || in.User.ID == "" {
		return &channels.Inbound{Response: ack}, nil
	}
	act := in.Actions[0]
	channel := in.Channel.ID
	if channel == "" {
		channel = in.Container.ChannelID
	}
	if channel == "" || in.TriggerID == "" {
		return &channels.Inbound{Response: ack}, nil
	}
	thread := in.Container.ThreadTS
	if thread == "" {
		thread = in.Message.ThreadTS
	}
	ev := &msg.Event{ID: "act:" + in.TriggerID, User: in.User.ID, Conversation: conversation(channel, thread),
		Raw: json.RawMessage(p)}
	if !pressed(ev, act.ActionID, act.Value, act.Text.Text) {
		return &channels.Inbound{Response: ack}, nil
	}
	return &channels.Inbound{Events: []*msg.Event{ev}, Response: ack, Async: true}, nil
}

// PostMessage is the chat.postMessage request body Parley sends.
type PostMessage struct {
	Channel  string  `json:"channel"`
	Text     string  `json:"text"`
	ThreadTS string  `json:"thread_ts,omitempty"`
	Blocks   []Block `json:"blocks,omitempty"`
	// Extra is the handler's channel_data.slack, a JSON object whose keys
	// are merged into the body (see MarshalJSON).
	Extra json.RawMessage `json:"-"`
}

// Block is a Block Kit block: a section with text (and an image as
// accessory), actions with buttons, or an image.
type Block struct {
	Type      string    `json:"type"`
	Text      *TextObj  `json:"text,omitempty"`
	Elements  []Element `json:"elements,omitempty"`
	Accessory *Element  `json:"accessory,omitempty"`
	ImageURL  string    `json:"image_url,omitempty"`
	AltText   string    `json:"alt_text,omitempty"`
	Title     *TextObj  `json:"title,omitempty"`
}

// TextObj is a Block Kit text object.
type TextObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Element is a Block Kit button (with a value, or a URL it opens) or an
// image element.
type Element struct {
	Type     string   `json:"type"`
	Text     *TextObj `json:"text,omitempty"`
	Value    string   `json:"value,omitempty"`
	URL      string   `json:"url,omitempty"`
	ActionID string   `json:"action_id,omitempty"`
	ImageURL string   `json:"image_url,omitempty"`
	AltText  string   `json:"alt_text,omitempty"`
}

// Slack's limits for button labels and values.
const (
	maxButtonText  = 75
	maxButtonValue = 2000
	maxButtons     = 25
)

// NewPostMessage renders one reply for a conversation: the text, and the
// options as buttons.
func NewPostMessage(conv string, r msg.Reply) PostMessage {
	channel, thread, _ := strings.Cut(conv, ":")
	pm := PostMessage{Channel: channel, ThreadTS: thread, Text: r.Text}
	if len(r.Options) == 0 {
		return pm
	}
	if r.Text != "" {
		pm.Blocks = append(pm.Blocks, Block{Type: "section", Text: &TextObj{Type: "mrkdwn", Text: r.Text}})
	}
	actions := Block{Type: "actions"}
	for i, opt := range r.Options {
		if i == maxButtons {
			break
		}
		actions.Elements = append(actions.Elements, Element{Type: "button",
			Text:  &TextObj{Type: "plain_text", Text: clip(opt, maxButtonText)},
			Value: clip(opt, maxButtonValue), ActionID: "parley_option_" + strconv.Itoa(i)})
	}
	pm.Blocks = append(pm.Blocks, actions)
	return pm
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// NewPostMessages renders one reply of a turn whose replies plain was made
// of: the text and options as [NewPostMessage] does, and buttons, cards,
// media and channel data in Block Kit (see richMessages), in one message
// or, past Slack's 50 blocks, several.
func NewPostMessages(conv string, r msg.Reply, plain channels.Plain) []PostMessage {
	if len(r.Buttons) == 0 && len(r.Cards) == 0 && len(r.Media) == 0 && r.ChannelData[channelDataKind] == nil {
		if r.Text == "" && len(r.Options) == 0 {
			return nil
		}
		return []PostMessage{NewPostMessage(conv, r)}
	}
	return richMessages(conv, r, plain)
}

// Send implements [channels.Sender]: a chat.postMessage per reply (more
// for a reply of over 50 blocks).
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	plain := channels.NewPlain(res.Replies)
	for _, r := range res.Replies {
		for _, pm := range NewPostMessages(res.Conversation, r, plain) {
			body, err := json.Marshal(pm)
			if err != nil {
				return &channels.SendError{Err: err}
			}
			if err := a.post(ctx, base+"/chat.postMessage", s[SettingBotToken], body); err != nil {
				return err
			}
		}
	}
	return nil
}

// apiAnswer is a Web API answer.
type apiAnswer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func (a *Adapter) post(ctx context.Context, endpoint, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.client.Do(req)
	if err != nil {
		// The error names the URL only; the token travels in a header.
		return &channels.SendError{Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusTooManyRequests {
		return &channels.SendError{Status: resp.StatusCode, Retryable: true,
			RetryAfter: channels.RetryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: errors.New("chat.postMessage: rate limited")}
	}
	if resp.StatusCode >= 500 {
		return &channels.SendError{Status: resp.StatusCode, Retryable: true, Err: fmt.Errorf("chat.postMessage: HTTP %d", resp.StatusCode)}
	}
	var ans apiAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &ans) != nil {
		return &channels.SendError{Status: resp.StatusCode, Err: fmt.Errorf("chat.postMessage: HTTP %d", resp.StatusCode)}
	}
	if !ans.OK {
		retry := ans.Error == "ratelimited" || ans.Error == "internal_error" || ans.Error == "fatal_error" ||
			ans.Error == "service_unavailable" || ans.Error == "request_timeout"
		return &channels.SendError{Status: resp.StatusCode, Retryable: retry, Err: fmt.Errorf("chat.postMessage: %s", ans.Error)}
	}
	return nil
}
