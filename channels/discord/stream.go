package discord

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

// Deferred and streamed replies.
//
// With the channel setting defer_replies, an interaction that starts a turn
// is answered at once with a deferred response (type 5: Discord shows "…is
// thinking"), and the turn runs from the queue without Discord's 3-second
// limit: its answer replaces the deferred response by editing the
// interaction's original message (PATCH
// /webhooks/{application.id}/{interaction.token}/messages/@original, which
// the interaction token allows for 15 minutes). A reply a handler streams
// (llm.chat{stream = true}) is shown in that message as it grows, at most
// one edit a second, and the final answer is the last edit.

// SettingDeferReplies turns deferred replies on.
const SettingDeferReplies = "defer_replies"

// responseDeferMessage is DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE.
const responseDeferMessage = 5

var _ channels.Streamer = (*Adapter)(nil)

// deferReplies reports whether the bot's channel defers its answers.
func deferReplies(s channels.Settings) bool {
	on, _ := strconv.ParseBool(s[SettingDeferReplies])
	return on
}

// deferred is the inbound of an interaction whose answer comes later:
// acknowledged with a deferred response, its event run from the queue.
func deferred(ev *msg.Event) *channels.Inbound {
	return &channels.Inbound{Events: []*msg.Event{ev}, Async: true,
		Response: jsonResponse(map[string]int{"type": responseDeferMessage})}
}

// original is the interaction an event came from, whose original message
// a deferred answer edits (its application is the interaction's, or the
// channel's application_id); ok is false for an event without one (a
// scheduled push).
func original(ev *msg.Event, s channels.Settings) (app, token string, ok bool) {
	if ev == nil || len(ev.Raw) == 0 {
		return "", "", false
	}
	var in struct {
		ApplicationID string `json:"application_id"`
		Token         string `json:"token"`
	}
	if json.Unmarshal(ev.Raw, &in) != nil || in.Token == "" || strings.ContainsAny(in.Token, "/?#% ") {
		return "", "", false
	}
	if in.ApplicationID == "" {
		in.ApplicationID = s[SettingApplicationID]
	}
	if !snowflake(in.ApplicationID) {
		return "", "", false
	}
	return in.ApplicationID, in.Token, true
}

// originalURL is the endpoint of an interaction's original message.
func originalURL(s channels.Settings, app, token string) string {
	base := strings.TrimRight(s[SettingAPIBaseURL], "/")
	if base == "" {
		base = DefaultAPIBaseURL
	}
	return base + "/webhooks/" + app + "/" + token + "/messages/@original"
}

// editOriginal makes the interaction's original message show data.
func (a *Adapter) editOriginal(ctx context.Context, endpoint string, data *ResponseData) error {
	body, err := json.Marshal(map[string]any{"content": data.Content, "components": components(data)})
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("encode message: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, endpoint, bytes.NewReader(body))
	if err != nil {
		return &channels.SendError{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := a.client.Do(req)
	if err != nil {
		// The error names the URL, which holds the interaction token: keep only the cause.
		return &channels.SendError{Retryable: true, Err: fmt.Errorf("edit original message: %w", unwrapURL(err))}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var ae apiError
	_ = json.Unmarshal(raw, &ae)
	se := channels.StatusError(resp, fmt.Errorf("discord API: edit original message: HTTP %d: %d %s", resp.StatusCode, ae.Code, ae.Message))
	if se.RetryAfter == 0 && ae.RetryAfter > 0 && ae.RetryAfter < 1e6 {
		se.RetryAfter = time.Duration(ae.RetryAfter * float64(time.Second))
	}
	return se
}

// components is data's components, an empty list when it has none, so that
// an edit removes buttons an earlier edit showed.
func components(data *ResponseData) []Component {
	if data.Components == nil {
		return []Component{}
	}
	return data.Components
}

// unwrapURL drops the URL net/http puts in its errors.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// sendDeferred answers a deferred interaction: its original message becomes
// the turn's answer.
func (a *Adapter) sendDeferred(ctx context.Context, s channels.Settings, app, token string, res *msg.TurnResult) error {
	data := NewResponse(res).Data
	return a.editOriginal(ctx, originalURL(s, app, token), data)
}

// Stream implements [channels.Streamer] for deferred interactions: the
// original message shows the reply as it grows (at most one edit a
// second), and Finish makes it the final answer.
func (a *Adapter) Stream(ctx context.Context, s channels.Settings, ev *msg.Event) channels.ReplyStream {
	app, token, ok := original(ev, s)
	if !ok || !deferReplies(s) {
		return nil // an interaction answered in its response shows nothing before it
	}
	ed := &originalEditor{a: a, endpoint: originalURL(s, app, token)}
	return &stream{a: a, ed: ed, es: channels.NewEditStream(ctx, ed, channels.EditPreviewInterval, maxContent)}
}

type stream struct {
	a  *Adapter
	ed *originalEditor
	es *channels.EditStream
}

func (s *stream) Write(text string) { s.es.Write(text) }

// Finish implements [channels.ReplyStream]: the original message becomes
// the final answer, streamed or not.
func (s *stream) Finish(ctx context.Context, res *msg.TurnResult) (bool, error) {
	s.es.Stop()
	if res == nil {
		return false, nil
	}
	return true, s.a.editOriginal(ctx, s.ed.endpoint, NewResponse(res).Data)
}

// originalEditor implements [channels.Editor] on an interaction's original
// message, which the deferred response created.
type originalEditor struct {
	a        *Adapter
	endpoint string
}

func (e *originalEditor) Post(ctx context.Context, text string) (string, error) {
	return "@original", e.Edit(ctx, "@original", text)
}

func (e *originalEditor) Edit(ctx context.Context, _ string, text string) error {
	return e.a.editOriginal(ctx, e.endpoint, &ResponseData{Content: text})
}
