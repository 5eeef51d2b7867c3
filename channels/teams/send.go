package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// reference is where a turn's replies go.
type reference struct {
	serviceURL string
	// replyTo is the activity answered; empty for a push.
	replyTo string
	bot     *Account
	user    *Account
}

// referenceOf reads where to answer from the turn's event: the activity it
// came from (verified when it arrived, so its serviceUrl is the one the
// connector's token named), or, for a turn no activity started (a
// schedule, a push), the configured service URL.
func (a *Adapter) referenceOf(res *msg.TurnResult) (reference, error) {
	if res.Event == nil || res.Event.Channel != Name || len(res.Event.Raw) == 0 {
		return reference{serviceURL: a.serviceURL}, nil
	}
	var act Activity
	if err := json.Unmarshal(res.Event.Raw, &act); err != nil || act.ServiceURL == "" {
		return reference{}, errors.New("the event carries no Bot Framework activity")
	}
	if !ServiceURLAllowed(act.ServiceURL) {
		return reference{}, fmt.Errorf("serviceUrl %q is not an https URL", act.ServiceURL)
	}
	if act.Conversation.ID != res.Conversation {
		return reference{}, errors.New("the event's activity is from another conversation")
	}
	ref := reference{serviceURL: act.ServiceURL, replyTo: act.ID}
	if act.Recipient.ID != "" {
		ref.bot = &Account{ID: act.Recipient.ID, Name: act.Recipient.Name}
	}
	if act.From.ID != "" {
		ref.user = &Account{ID: act.From.ID, Name: act.From.Name}
	}
	return ref, nil
}

// Send implements [channels.Sender]: each activity of the turn's replies
// (see [Render]) is posted to the Bot Connector, as a reply to the
// activity that started the turn (POST {serviceUrl}/v3/conversations/{id}/activities/{replyToId}),
// or for a push to the conversation (…/activities), with a token of the
// bot's credentials.
func (a *Adapter) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	ref, err := a.referenceOf(res)
	if err != nil {
		return &channels.SendError{Err: err}
	}
	acts := fit(Render(res.Replies))
	if len(acts) == 0 {
		return nil
	}
	endpoint := strings.TrimRight(ref.serviceURL, "/") + "/v3/conversations/" + url.PathEscape(res.Conversation) + "/activities"
	if ref.replyTo != "" {
		endpoint += "/" + url.PathEscape(ref.replyTo)
	}
	for _, act := range acts {
		act.Conversation = &Conversation{ID: res.Conversation}
		act.ReplyToID, act.From, act.Recipient = ref.replyTo, ref.bot, ref.user
		body, err := json.Marshal(act)
		if err != nil {
			return &channels.SendError{Err: err}
		}
		if err := a.post(ctx, s, endpoint, body); err != nil {
			return err
		}
	}
	return nil
}

// post sends one activity, with a token fetched (or cached) for the bot.
func (a *Adapter) post(ctx context.Context, s channels.Settings, endpoint string, body []byte) error {
	token, err := a.tokens.Token(ctx, s)
	if err != nil {
		return err
	}
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
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		a.tokens.Forget(s) // a later try fetches a new one
	}
	se := channels.StatusError(resp, fmt.Errorf("send activity: HTTP %d", resp.StatusCode))
	// Teams asks for retries of 412 (a conflict) as of 429 and 5xx.
	se.Retryable = se.Retryable || resp.StatusCode == http.StatusPreconditionFailed
	return se
}
