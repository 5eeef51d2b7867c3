package alexa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// Progressive responses.
//
// When a handler streams a model's answer (llm.chat{stream = true}) and the
// model is slow, the answer's first sentence is spoken before the skill's
// response through the Progressive Response API: a VoicePlayer.Speak
// directive posted to {context.System.apiEndpoint}/v1/directives with the
// request's apiAccessToken. It is sent once the first sentence is complete
// and the turn has run for Config.ProgressiveAfter, and only while enough
// of the turn's budget is left for it to finish before the response, which
// waits for it: nothing may be sent after the response, and the turn's
// deadline (Alexa's budget) bounds everything. The response then speaks
// the rest of the reply, when the reply starts with the spoken sentence
// and has no SSML of its own (its card shows the rest too); otherwise it
// speaks the reply as it is.

// DefaultProgressiveAfter is Config.ProgressiveAfter's default.
const DefaultProgressiveAfter = time.Second

// Bounds of a progressive response.
const (
	// progressiveTimeout bounds the directive's request.
	progressiveTimeout = 2 * time.Second
	// progressiveMargin is the least time left in the turn for a
	// directive to be sent.
	progressiveMargin = 1500 * time.Millisecond
	// minSentence is the shortest first sentence worth saying early.
	minSentence = 8
	// maxSentence bounds the text said early; a longer first sentence is
	// not said early.
	maxSentence = 600
)

// amazonEndpoints are the Alexa API hosts a request's apiEndpoint may name.
var amazonEndpoints = map[string]bool{
	"api.amazonalexa.com": true, "api.eu.amazonalexa.com": true, "api.fe.amazonalexa.com": true,
}

var (
	_ channels.Streamer        = (*Adapter)(nil)
	_ channels.RequestStreamer = (*Adapter)(nil)
)

// Stream implements [channels.Streamer]: a LaunchRequest or IntentRequest
// that carries an API endpoint and access token may say its reply's first
// sentence early.
func (a *Adapter) Stream(ctx context.Context, _ channels.Settings, ev *msg.Event) channels.ReplyStream {
	if len(ev.Raw) == 0 {
		return nil
	}
	p, err := decode(ev.Raw)
	if err != nil {
		return nil
	}
	return a.stream(ctx, &p.env)
}

// StreamRequest implements [channels.RequestStreamer]: Stream, from the
// request Parse decoded.
func (a *Adapter) StreamRequest(ctx context.Context, req *channels.Request, _ *msg.Event) channels.ReplyStream {
	return a.stream(ctx, &parsedOf(req).env)
}

// stream opens the stream of the request env, or returns nil when it
// cannot say anything early.
func (a *Adapter) stream(ctx context.Context, env *envelope) channels.ReplyStream {
	sys, r := &env.Context.System, &env.Request
	if (r.Type != "LaunchRequest" && r.Type != "IntentRequest") || r.RequestID == "" || sys.APIAccessToken == "" {
		return nil
	}
	endpoint := a.progressive.endpoint
	if endpoint == "" {
		u, err := url.Parse(sys.APIEndpoint)
		if err != nil || u.Scheme != "https" || !amazonEndpoints[strings.ToLower(u.Host)] {
			return nil
		}
		endpoint = "https://" + u.Host
	}
	return &progressive{a: a, ctx: ctx, start: time.Now(), endpoint: strings.TrimRight(endpoint, "/") + "/v1/directives",
		token: sys.APIAccessToken, requestID: r.RequestID}
}

// progressive is one turn's stream: it says the first sentence early.
type progressive struct {
	a         *Adapter
	ctx       context.Context
	start     time.Time
	endpoint  string
	token     string
	requestID string

	mu       sync.Mutex
	text     strings.Builder
	sentence string      // the first sentence, once complete
	timer    *time.Timer // waits for ProgressiveAfter
	finished bool
	sending  chan struct{} // closed when the directive's request ended; nil before
	spoken   bool          // the directive was accepted
}

func (p *progressive) Write(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished || p.sentence != "" || text == "" {
		return
	}
	p.text.WriteString(text)
	s, ok := firstSentence(p.text.String())
	if !ok {
		if p.text.Len() > 2*maxSentence {
			p.finished = true // too long to say early: give up
		}
		return
	}
	p.sentence = s
	if wait := p.a.progressive.after - time.Since(p.start); wait > 0 {
		p.timer = time.AfterFunc(wait, p.say)
		return
	}
	p.sendLocked()
}

// say sends the sentence once the wait is over, unless the turn finished.
func (p *progressive) say() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished {
		p.sendLocked()
	}
}

// sendLocked starts the directive's request when the turn's deadline
// leaves room for it. mu is held.
func (p *progressive) sendLocked() {
	if p.sending != nil {
		return
	}
	if dl, ok := p.ctx.Deadline(); ok && time.Until(dl) < progressiveMargin {
		return
	}
	p.sending = make(chan struct{})
	go func(sentence string, done chan struct{}) {
		defer close(done)
		err := p.post(sentence)
		p.mu.Lock()
		p.spoken = err == nil
		p.mu.Unlock()
		if err != nil {
			p.a.log.Info("alexa: progressive response not sent", "err", err)
		}
	}(p.sentence, p.sending)
}

// post sends the VoicePlayer.Speak directive.
func (p *progressive) post(sentence string) error {
	ctx, cancel := context.WithTimeout(p.ctx, progressiveTimeout)
	defer cancel()
	body, err := json.Marshal(map[string]any{
		"header":    map[string]string{"requestId": p.requestID},
		"directive": map[string]string{"type": "VoicePlayer.Speak", "speech": voice.TextToSSML(sentence)},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.a.progressive.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("directives: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Finish implements [channels.ReplyStream]: it waits for a directive under
// way (the response must come after it) and, when the first sentence was
// said, leaves it out of the reply's speech.
func (p *progressive) Finish(ctx context.Context, res *msg.TurnResult) (bool, error) {
	p.mu.Lock()
	p.finished = true
	if p.timer != nil {
		p.timer.Stop()
	}
	sending := p.sending
	p.mu.Unlock()
	if sending != nil {
		select {
		case <-sending:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	spoken, sentence := p.spoken, p.sentence
	p.mu.Unlock()
	if !spoken || res == nil || len(res.Replies) == 0 {
		return false, nil
	}
	r := &res.Replies[0]
	if r.SSML != "" || !strings.HasPrefix(strings.TrimSpace(r.Text), sentence) {
		return false, nil
	}
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.Text), sentence))
	r.SSML = "<speak></speak>" // the whole reply was said; the card still shows it
	if rest != "" {
		r.SSML = voice.TextToSSML(rest)
	}
	return false, nil
}

// firstSentence returns text's first sentence once it is complete: up to a
// '.', '!' or '?' that is followed by white space.
func firstSentence(text string) (string, bool) {
	for i := 0; i+1 < len(text) && i < maxSentence; i++ {
		switch text[i] {
		case '.', '!', '?':
			next := text[i+1]
			if next == ' ' || next == '\n' || next == '\t' {
				s := strings.TrimSpace(text[:i+1])
				if len(s) >= minSentence {
					return s, true
				}
			}
		}
	}
	return "", false
}

// progressiveConfig is how an Adapter sends progressive responses.
type progressiveConfig struct {
	after    time.Duration
	endpoint string // overrides the requests' apiEndpoint (tests)
	client   *http.Client
}
