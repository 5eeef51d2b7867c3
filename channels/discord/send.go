package discord

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// DefaultAPIBaseURL is Discord's REST API.
const DefaultAPIBaseURL = "https://discord.com/api/v10"

// userAgent is the User-Agent Discord asks API clients to send.
const userAgent = "DiscordBot (https://github.com/parleyhq/parley, 1)"

// validatePush checks the settings of pushed messages.
func validatePush(s channels.Settings) error {
	if tok := s[SettingBotToken]; tok != "" && (len(tok) > 512 || strings.ContainsAny(tok, " \t\r\n")) {
		return channels.BadRequest("%q is the application's bot token, as the developer portal shows it", SettingBotToken)
	}
	if raw := s[SettingAPIBaseURL]; raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return channels.BadRequest("%q must be an http(s) URL", SettingAPIBaseURL)
		}
	}
	return nil
}

// Send implements [channels.Sender]. The answer to a deferred interaction
// (defer_replies) edits the interaction's original message. Other messages
// (scheduled triggers) are not an answer to an interaction: a turn's replies become one message,
// rendered as an interaction response is, posted to the conversation's
// channel with the application's bot token (Create Message), once (see
// nonce). A direct
// conversation ("dm:" and the user's id) is opened first (Create DM). A turn
// with nothing to say sends nothing.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	if app, tok, ok := original(res.Event, s); ok {
		return a.sendDeferred(ctx, s, app, tok, res)
	}
	token := s[SettingBotToken]
	if token == "" {
		return &channels.SendError{Err: fmt.Errorf("the discord channel needs %q to send messages outside an interaction", SettingBotToken)}
	}
	msg := NewResponse(res).Data
	if msg.Flags&flagEphemeral != 0 {
		return nil // nothing to say: there is no interaction to acknowledge
	}
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	channelID := res.Conversation
	if user, ok := strings.CutPrefix(channelID, "dm:"); ok {
		if !snowflake(user) {
			return &channels.SendError{Err: fmt.Errorf("conversation %q: not a Discord user id", channelID)}
		}
		var dm struct {
			ID string `json:"id"`
		}
		if err := a.call(ctx, base+"/users/@me/channels", token, map[string]string{"recipient_id": user}, &dm); err != nil {
			return err
		}
		channelID = dm.ID
	}
	if !snowflake(channelID) {
		return &channels.SendError{Err: fmt.Errorf("conversation %q: not a Discord channel id", channelID)}
	}
	body := createMessage{ResponseData: msg, Nonce: nonce(res, channelID)}
	body.EnforceNonce = body.Nonce != ""
	raw, err := json.Marshal(body)
	if err != nil {
		return &channels.SendError{Err: err}
	}
	raw = channels.MergeJSON(raw, msg.extra, "nonce", "enforce_nonce")
	return a.call(ctx, base+"/channels/"+channelID+"/messages", token, json.RawMessage(raw), nil)
}

// createMessage is the body of Create Message.
type createMessage struct {
	*ResponseData
	Nonce        string `json:"nonce,omitempty"`
	EnforceNonce bool   `json:"enforce_nonce,omitempty"`
}

// nonce names the message of a turn's event in a channel. With
// enforce_nonce, Discord creates a message once per nonce in a few minutes
// and answers a repeat with the message it made, so a retry after a try
// that went through but timed out sends nothing twice. Discord takes at
// most 25 characters.
func nonce(res *msg.TurnResult, channelID string) string {
	ev := res.Event
	if ev == nil || ev.ID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(ev.Bot + "\x00" + ev.Channel + "\x00" + ev.ID + "\x00" + channelID))
	return hex.EncodeToString(sum[:])[:25]
}

// snowflake reports whether id is a Discord id: a decimal 64-bit number.
func snowflake(id string) bool {
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil
}

// apiError is the REST API's error answer; rate limits add retry_after, in
// seconds.
type apiError struct {
	Message    string  `json:"message"`
	Code       int     `json:"code"`
	RetryAfter float64 `json:"retry_after"`
}

// call posts body as JSON with the bot token and decodes the answer into out
// when it is not nil.
func (a *Adapter) call(ctx context.Context, endpoint, token string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("encode request: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Authorization", "Bot "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.client.Do(req)
	if err != nil {
		return &channels.SendError{Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				return &channels.SendError{Status: resp.StatusCode, Err: fmt.Errorf("discord API: unreadable answer: %w", err)}
			}
		}
		return nil
	}
	var ae apiError
	_ = json.Unmarshal(raw, &ae)
	cause := fmt.Errorf("discord API: HTTP %d", resp.StatusCode)
	if ae.Message != "" {
		cause = fmt.Errorf("discord API: HTTP %d: %d %s", resp.StatusCode, ae.Code, ae.Message)
	}
	se := channels.StatusError(resp, cause)
	if se.RetryAfter == 0 && ae.RetryAfter > 0 && ae.RetryAfter < 1e6 {
		se.RetryAfter = time.Duration(ae.RetryAfter * float64(time.Second)) // the rate limit's answer says it in its body
	}
	return se
}
