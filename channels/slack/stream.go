package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Streamed replies on Slack.
//
// Slack's streaming messages (chat.startStream, chat.appendStream,
// chat.stopStream) show a reply as it is written. Where a workspace or
// token does not offer them (startStream refused), the reply is previewed
// in an ordinary message instead, posted with chat.postMessage and edited
// with chat.update, at most once a second.

// maxStreamText is the most markdown_text one streaming call takes.
const maxStreamText = 12000

var _ channels.Streamer = (*Adapter)(nil)

// Stream implements [channels.Streamer].
func (a *Adapter) Stream(ctx context.Context, s channels.Settings, ev *msg.Event) channels.ReplyStream {
	channel, thread, _ := strings.Cut(ev.Conversation, ":")
	if channel == "" {
		return nil
	}
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	ed := &streamEditor{a: a, base: base, token: s[SettingBotToken], channel: channel, thread: thread,
		user: ev.User, team: teamOf(ev.Raw), native: true}
	return &replyStream{ed: ed, es: channels.NewEditStream(ctx, ed, channels.EditPreviewInterval, 0)}
}

// teamOf reads the workspace id from an event's payload: an Events API
// envelope or a slash command have team_id, an interaction team.id.
func teamOf(raw json.RawMessage) string {
	var p struct {
		TeamID string `json:"team_id"`
		Team   struct {
			ID string `json:"id"`
		} `json:"team"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	if p.TeamID != "" {
		return p.TeamID
	}
	return p.Team.ID
}

type replyStream struct {
	ed *streamEditor
	es *channels.EditStream
}

func (s *replyStream) Write(text string) { s.es.Write(text) }

// Finish implements [channels.ReplyStream]. A streaming message becomes the
// final reply by appending what it lacks; one whose text the final reply
// does not extend, or a final answer that is not one plain text, is
// stopped and removed, and the answer is sent as usual.
func (s *replyStream) Finish(ctx context.Context, res *msg.TurnResult) (bool, error) {
	text, plain := channels.SinglePlain(res)
	id, _ := s.es.Stop() // first: a post under way decides the mode
	if id == "" {
		return false, nil
	}
	if !s.ed.isNative() {
		if plain {
			return s.es.Final(ctx, text)
		}
		if res != nil {
			_ = s.ed.call(ctx, "chat.delete", map[string]any{"channel": s.ed.channel, "ts": id}, nil)
		}
		return false, nil
	}
	if sent := s.ed.sentText(); plain && strings.HasPrefix(text, sent) {
		if err := s.ed.stop(ctx, id, text[len(sent):]); err != nil {
			return true, err
		}
		return true, nil
	}
	if err := s.ed.stop(ctx, id, ""); err != nil {
		return false, err
	}
	if res != nil {
		_ = s.ed.call(ctx, "chat.delete", map[string]any{"channel": s.ed.channel, "ts": id}, nil)
	}
	return false, nil
}

// streamEditor implements [channels.Editor] with Slack's streaming
// methods, or with chat.postMessage and chat.update once startStream was
// refused.
type streamEditor struct {
	a                     *Adapter
	base, token           string
	channel, thread, user string
	team                  string

	mu      sync.Mutex
	native  bool   // streaming methods in use
	sent    string // the text the streaming message holds
	stopped bool   // chat.stopStream went through
}

func (e *streamEditor) isNative() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.native
}

// sentText is the text the streaming message holds.
func (e *streamEditor) sentText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}

func (e *streamEditor) Post(ctx context.Context, text string) (string, error) {
	start := map[string]any{"channel": e.channel, "markdown_text": clipRunes(text, maxStreamText)}
	if e.thread != "" {
		start["thread_ts"] = e.thread
	}
	if e.user != "" && e.team != "" {
		start["recipient_user_id"], start["recipient_team_id"] = e.user, e.team
	}
	var ans struct {
		TS string `json:"ts"`
	}
	err := e.call(ctx, "chat.startStream", start, &ans)
	if err == nil && ans.TS != "" {
		e.mu.Lock()
		e.sent = clipRunes(text, maxStreamText)
		e.mu.Unlock()
		return ans.TS, nil
	}
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retryable {
		return "", err
	}
	// Streaming is not offered here: an ordinary message instead.
	e.mu.Lock()
	e.native = false
	e.mu.Unlock()
	post := map[string]any{"channel": e.channel, "text": text}
	if e.thread != "" {
		post["thread_ts"] = e.thread
	}
	if err := e.call(ctx, "chat.postMessage", post, &ans); err != nil {
		return "", err
	}
	if ans.TS == "" {
		return "", errors.New("chat.postMessage: no ts in the answer")
	}
	return ans.TS, nil
}

func (e *streamEditor) Edit(ctx context.Context, id, text string) error {
	e.mu.Lock()
	native, sent := e.native, e.sent
	e.mu.Unlock()
	if !native {
		return e.call(ctx, "chat.update", map[string]any{"channel": e.channel, "ts": id, "text": text}, nil)
	}
	if !strings.HasPrefix(text, sent) || len(text) == len(sent) {
		return nil // a stream only grows; the final reply settles the rest
	}
	more := clipRunes(text[len(sent):], maxStreamText)
	if err := e.call(ctx, "chat.appendStream", map[string]any{"channel": e.channel, "ts": id, "markdown_text": more}, nil); err != nil {
		return err
	}
	e.mu.Lock()
	e.sent += more
	e.mu.Unlock()
	return nil
}

// stop ends the streaming message, appending more first when it is not
// empty. Once it went through, calling it again does nothing.
func (e *streamEditor) stop(ctx context.Context, id, more string) error {
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped {
		return nil
	}
	body := map[string]any{"channel": e.channel, "ts": id}
	for len(more) > maxStreamText {
		part := clipRunes(more, maxStreamText)
		if err := e.call(ctx, "chat.appendStream", map[string]any{"channel": e.channel, "ts": id, "markdown_text": part}, nil); err != nil {
			return err
		}
		more = more[len(part):]
	}
	if more != "" {
		body["markdown_text"] = more
	}
	err := e.call(ctx, "chat.stopStream", body, nil)
	var se *channels.SendError
	if errors.As(err, &se) && strings.Contains(se.Err.Error(), "message_not_in_streaming_state") {
		err = nil // stopped already (a try whose answer was lost)
	}
	if err == nil {
		e.mu.Lock()
		e.stopped = true
		e.mu.Unlock()
	}
	return err
}

// clipRunes cuts s to at most n bytes without splitting a UTF-8 sequence.
func clipRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clip(s, n)
}

// call posts a Web API method and decodes its answer into out (when not
// nil). Failures are *channels.SendError: rate limits and server errors
// are retryable.
func (e *streamEditor) call(ctx context.Context, method string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("%s: %w", method, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/"+method, bytes.NewReader(raw))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("%s: build request: %w", method, err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.a.client.Do(req)
	if err != nil {
		return &channels.SendError{Retryable: true, Err: fmt.Errorf("%s: %w", method, err)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &channels.SendError{Status: resp.StatusCode, Retryable: true,
			RetryAfter: channels.RetryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: fmt.Errorf("%s: rate limited", method)}
	case resp.StatusCode >= 500:
		return &channels.SendError{Status: resp.StatusCode, Retryable: true, Err: fmt.Errorf("%s: HTTP %d", method, resp.StatusCode)}
	}
	var ans apiAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &ans) != nil {
		return &channels.SendError{Status: resp.StatusCode, Err: fmt.Errorf("%s: HTTP %d", method, resp.StatusCode)}
	}
	if !ans.OK {
		retry := ans.Error == "ratelimited" || ans.Error == "internal_error" || ans.Error == "fatal_error" ||
			ans.Error == "service_unavailable" || ans.Error == "request_timeout"
		return &channels.SendError{Status: resp.StatusCode, Retryable: retry, Err: fmt.Errorf("%s: %s", method, ans.Error)}
	}
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return nil
}
