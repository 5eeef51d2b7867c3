package telegram

import (
	"bytes"
	"context"
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

// maxMessageText is the Bot API's limit on a message's text, in characters.
const maxMessageText = 4096

var _ channels.Streamer = (*Adapter)(nil)

// Stream implements [channels.Streamer]: the reply is previewed in one
// message, sent with sendMessage when the first text arrives and edited
// with editMessageText as it grows, at most once a second. Finish edits
// it to the final reply when that is one plain text; any other final
// answer (options, several replies, rich parts) deletes the preview and is
// sent as usual.
func (a *Adapter) Stream(ctx context.Context, s channels.Settings, ev *msg.Event) channels.ReplyStream {
	chat, thread, err := chatOf(ev.Conversation)
	if err != nil {
		return nil
	}
	ed := &editor{a: a, base: apiBase(s), chat: chat, thread: thread}
	return &stream{ed: ed, es: channels.NewEditStream(ctx, ed, channels.EditPreviewInterval, maxMessageText), ev: ev}
}

// apiBase is the Bot API's URL with the bot's token.
func apiBase(s channels.Settings) string {
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	return base + "/bot" + s[SettingBotToken]
}

type stream struct {
	ed *editor
	es *channels.EditStream
	ev *msg.Event
}

func (s *stream) Write(text string) { s.es.Write(text) }

func (s *stream) Finish(ctx context.Context, res *msg.TurnResult) (bool, error) {
	if res == nil {
		s.es.Stop()
		return false, nil
	}
	if text, ok := channels.SinglePlain(res); ok {
		posted, err := s.es.Final(ctx, text)
		if posted && err == nil {
			s.answerClick(ctx)
		}
		return posted, err
	}
	if id, _ := s.es.Stop(); id != "" {
		// Best effort: the full answer follows either way.
		_ = s.ed.call(ctx, "deleteMessage", map[string]any{"chat_id": s.ed.chat, "message_id": json.Number(id)}, nil)
	}
	return false, nil
}

// answerClick stops the spinner of the button whose click started the
// turn, as Send does; best effort.
func (s *stream) answerClick(ctx context.Context) {
	var u Update
	if len(s.ev.Raw) == 0 || json.Unmarshal(s.ev.Raw, &u) != nil || u.CallbackQuery == nil || u.CallbackQuery.ID == "" {
		return
	}
	_ = s.ed.call(ctx, "answerCallbackQuery", map[string]string{"callback_query_id": u.CallbackQuery.ID}, nil)
}

// editor implements [channels.Editor] with sendMessage and editMessageText.
type editor struct {
	a            *Adapter
	base         string
	chat, thread int64
}

func (e *editor) Post(ctx context.Context, text string) (string, error) {
	body := map[string]any{"chat_id": e.chat, "text": text}
	if e.thread != 0 {
		body["message_thread_id"] = e.thread
	}
	var m struct {
		MessageID int64 `json:"message_id"`
	}
	if err := e.call(ctx, "sendMessage", body, &m); err != nil {
		return "", err
	}
	if m.MessageID == 0 {
		return "", errors.New("sendMessage: no message_id in the answer")
	}
	return strconv.FormatInt(m.MessageID, 10), nil
}

func (e *editor) Edit(ctx context.Context, id, text string) error {
	err := e.call(ctx, "editMessageText", map[string]any{"chat_id": e.chat, "message_id": json.Number(id), "text": text}, nil)
	var se *channels.SendError
	if errors.As(err, &se) && strings.Contains(se.Err.Error(), "message is not modified") {
		return nil // it shows this text already
	}
	return err
}

// call posts a Bot API method and decodes its result into out (when not
// nil). Failures are *channels.SendError like Send's; they never contain
// the URL, which holds the bot token.
func (e *editor) call(ctx context.Context, method string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("%s: %w", method, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/"+method, bytes.NewReader(raw))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("%s: malformed api_base_url or bot_token", method)}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL and its token
		}
		return &channels.SendError{Retryable: true, Err: fmt.Errorf("%s: %w", method, err)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var ans struct {
		apiAnswer
		Result json.RawMessage `json:"result"`
	}
	_ = json.Unmarshal(data, &ans)
	if resp.StatusCode == http.StatusOK && ans.OK {
		if out != nil && json.Unmarshal(ans.Result, out) != nil {
			return &channels.SendError{Status: resp.StatusCode, Err: fmt.Errorf("%s: unreadable result", method)}
		}
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
