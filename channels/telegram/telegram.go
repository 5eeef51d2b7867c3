package telegram

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "telegram"

// Settings, as the Bot API names them.
const (
	SettingSecretToken = "secret_token"
	SettingBotToken    = "bot_token"
	SettingAPIBaseURL  = "api_base_url"
)

// DefaultAPIBaseURL is the Bot API.
const DefaultAPIBaseURL = "https://api.telegram.org"

// SecretHeader carries the secret_token given to setWebhook.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// Config configures an [Adapter].
type Config struct {
	// Client sends replies (default: a client with a 10s timeout).
	Client *http.Client
}

// Adapter implements [channels.Adapter] and [channels.Sender] for Telegram.
type Adapter struct {
	client *http.Client
}

// New returns the Telegram adapter.
func New(cfg Config) *Adapter {
	cfg.Client = channels.SendClient(cfg.Client)
	return &Adapter{client: cfg.Client}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{SettingSecretToken, SettingBotToken} }

// ValidateSettings implements [channels.Configurer]: the secret token follows
// setWebhook's rules (up to 256 characters of A-Z, a-z, 0-9, _ and -) and
// has at least [channels.MinSecretLen] characters, like every shared secret.
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingSecretToken, SettingBotToken, SettingAPIBaseURL); err != nil {
		return err
	}
	if !ValidSecretToken(s[SettingSecretToken]) || len(s[SettingSecretToken]) < channels.MinSecretLen {
		return channels.BadRequest("\"secret_token\" must be %d-256 characters of A-Z, a-z, 0-9, _ and -", channels.MinSecretLen)
	}
	if s[SettingBotToken] == "" || strings.ContainsAny(s[SettingBotToken], "/?#% ") {
		return channels.BadRequest("the telegram channel needs a \"bot_token\" (as BotFather gave it)")
	}
	if raw := s[SettingAPIBaseURL]; raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return channels.BadRequest("\"api_base_url\" must be an http(s) URL")
		}
	}
	return nil
}

// ValidSecretToken reports whether t is a secret_token setWebhook accepts.
func ValidSecretToken(t string) bool {
	if len(t) < 1 || len(t) > 256 {
		return false
	}
	for _, c := range []byte(t) {
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Verify checks the secret token header against the configured one, in
// constant time. A configured secret shorter than [channels.MinSecretLen]
// (saved before that minimum) verifies nothing.
func Verify(secret string, h http.Header) error {
	got := h.Get(SecretHeader)
	if len(secret) < channels.MinSecretLen || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return channels.Unauthorized("missing or wrong %s", SecretHeader)
	}
	return nil
}

var ack = &channels.Response{Status: http.StatusOK}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "Telegram posts its updates"}
	}
	if err := Verify(req.Settings[SettingSecretToken], req.Header); err != nil {
		return nil, err
	}
	in, err := ParseUpdate(req.Body)
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

// Render implements [channels.Adapter]: the webhook is only acknowledged;
// replies go through [Adapter.Send].
func (*Adapter) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return ack, nil
}

// Update is the part of a Bot API Update Parley reads.
type Update struct {
	UpdateID      int64          `json:"update_id"`
	Message       *Message       `json:"message"`
	EditedMessage *Message       `json:"edited_message"`
	CallbackQuery *CallbackQuery `json:"callback_query"`
}

// Message is a Bot API Message.
type Message struct {
	MessageID       int64        `json:"message_id"`
	MessageThreadID int64        `json:"message_thread_id"`
	From            *User        `json:"from"`
	Chat            Chat         `json:"chat"`
	Date            int64        `json:"date"`
	Text            string       `json:"text"`
	ReplyMarkup     *ReplyMarkup `json:"reply_markup"`
}

// User is a Bot API User.
type User struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	LanguageCode string `json:"language_code"`
}

// Chat is a Bot API Chat.
type Chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// CallbackQuery is a click on an inline keyboard button.
type CallbackQuery struct {
	ID      string   `json:"id"`
	From    User     `json:"from"`
	Message *Message `json:"message"`
	Data    string   `json:"data"`
}

// ParseUpdate normalizes an update (verified by the caller): text messages
// and inline keyboard clicks become events; everything else (edits, channel
// posts, media without text, messages from bots) is acknowledged and ignored.
func ParseUpdate(body []byte) (*channels.Inbound, error) {
	var u Update
	if err := json.Unmarshal(body, &u); err != nil {
		return nil, channels.BadRequest("body is not a Telegram update: %v", err)
	}
	ignored := &channels.Inbound{Response: ack}
	id := strconv.FormatInt(u.UpdateID, 10)
	switch {
	case u.Message != nil:
		m := u.Message
		if m.From == nil || m.From.IsBot || m.Text == "" {
			return ignored, nil
		}
		ev := &msg.Event{ID: id, User: strconv.FormatInt(m.From.ID, 10),
			Conversation: conversation(m.Chat.ID, m.MessageThreadID), Text: m.Text,
			Locale: m.From.LanguageCode, Raw: json.RawMessage(body)}
		if m.Date > 0 {
			ev.Timestamp = time.Unix(m.Date, 0).UTC()
		}
		if cmd, ok := command(m.Text); ok {
			ev.Slots = map[string]string{"command": cmd}
		}
		return &channels.Inbound{Events: []*msg.Event{ev}, Response: ack, Async: true}, nil
	case u.CallbackQuery != nil:
		q := u.CallbackQuery
		if q.From.IsBot || q.Message == nil || q.Data == "" || q.ID == "" {
			return ignored, nil
		}
		ev := &msg.Event{ID: id, User: strconv.FormatInt(q.From.ID, 10),
			Conversation: conversation(q.Message.Chat.ID, q.Message.MessageThreadID),
			Locale:       q.From.LanguageCode, Raw: json.RawMessage(body)}
		// An option is its text; a button's payload (or a reference to a
		// long one) is a press, with the button's title as text.
		channels.Pressed(ev, q.Data, buttonLabel(q.Message, q.Data))
		return &channels.Inbound{Events: []*msg.Event{ev}, Response: ack, Async: true}, nil
	}
	return ignored, nil
}

// command returns "start" for "/start", "/start@my_bot" or "/start payload".
func command(text string) (string, bool) {
	if !strings.HasPrefix(text, "/") {
		return "", false
	}
	cmd, _, _ := strings.Cut(text[1:], " ")
	cmd, _, _ = strings.Cut(cmd, "@")
	return cmd, cmd != ""
}

// conversation is a chat ("1111111") or a forum topic in it ("-100123:7").
func conversation(chat, thread int64) string {
	c := strconv.FormatInt(chat, 10)
	if thread != 0 {
		c += ":" + strconv.FormatInt(thread, 10)
	}
	return c
}

// SendMessage is the sendMessage request body Parley sends.
type SendMessage struct {
	ChatID          int64        `json:"chat_id"`
	MessageThreadID int64        `json:"message_thread_id,omitempty"`
	Text            string       `json:"text"`
	ReplyMarkup     *ReplyMarkup `json:"reply_markup,omitempty"`
	// Extra is the handler's channel_data.telegram, a JSON object whose
	// keys are merged into the body (see MarshalJSON).
	Extra json.RawMessage `json:"-"`
}

// ReplyMarkup is an inline keyboard.
type ReplyMarkup struct {
	InlineKeyboard [][]Button `json:"inline_keyboard"`
}

// Button is an inline keyboard button: a click sends CallbackData back as
// a callback query, or opens URL.
type Button struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

// maxCallbackData is the Bot API's limit on callback_data, in bytes.
const maxCallbackData = 64

// NewSendMessage renders the text of one reply: the text, and options and
// buttons as an inline keyboard with one button per row (see [keyboards]).
func NewSendMessage(conv string, r msg.Reply) (SendMessage, error) {
	chat, thread, err := chatOf(conv)
	if err != nil {
		return SendMessage{}, err
	}
	sm := SendMessage{ChatID: chat, MessageThreadID: thread, Text: r.Text}
	if kbs := keyboards(r.Options, r.Buttons); len(kbs) > 0 {
		sm.ReplyMarkup = kbs[0]
	}
	return sm, nil
}

// Send implements [channels.Sender]: it answers the callback query of a
// click (so the button stops spinning), then sends each reply with
// sendMessage, its cards and media with sendPhoto, sendAudio, sendVideo
// and sendDocument (see replyCalls).
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	base += "/bot" + s[SettingBotToken]
	if res.Event != nil && len(res.Event.Raw) > 0 {
		var u Update
		if json.Unmarshal(res.Event.Raw, &u) == nil && u.CallbackQuery != nil && u.CallbackQuery.ID != "" {
			body, _ := json.Marshal(map[string]string{"callback_query_id": u.CallbackQuery.ID})
			// Best effort: the query expires after a while, and the reply matters more.
			if err := a.call(ctx, base, "answerCallbackQuery", body); err != nil {
				var se *channels.SendError
				if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
					return err
				}
			}
		}
	}
	for _, r := range res.Replies {
		calls, err := replyCalls(res.Conversation, r)
		if err != nil {
			return &channels.SendError{Err: err}
		}
		for _, c := range calls {
			body, err := json.Marshal(c.Body)
			if err != nil {
				return &channels.SendError{Err: err}
			}
			if err := a.call(ctx, base, c.Method, body); err != nil {
				return err
			}
		}
	}
	return nil
}

// apiAnswer is a Bot API answer.
type apiAnswer struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// call posts a Bot API method. Errors never contain the URL, which holds the
// bot token.
func (a *Adapter) call(ctx context.Context, base, method string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+method, bytes.NewReader(body))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("%s: malformed api_base_url or bot_token", method)}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL and its token
		}
		return &channels.SendError{Retryable: true, Err: fmt.Errorf("%s: %w", method, err)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ans apiAnswer
	_ = json.Unmarshal(raw, &ans)
	if resp.StatusCode == http.StatusOK && ans.OK {
		return nil
	}
	se := &channels.SendError{Status: resp.StatusCode,
		Err: fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, ans.Description)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || ans.ErrorCode == http.StatusTooManyRequests:
		se.Retryable = true
		se.RetryAfter = time.Duration(ans.Parameters.RetryAfter) * time.Second
	case resp.StatusCode >= 500:
		se.Retryable = true
	}
	return se
}
