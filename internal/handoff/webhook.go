package handoff

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/egress"
)

// Headers of a webhook request.
const (
	HeaderTimestamp = "X-Parley-Timestamp"
	HeaderSignature = "X-Parley-Signature"
)

// Sign is the X-Parley-Signature of a webhook body sent at timestamp (Unix
// seconds, as sent in X-Parley-Timestamp): "sha256=" and the hex
// HMAC-SHA256, keyed with the secret, of "<timestamp>.<body>".
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Opener sends an outbound request under a bot's egress rules;
// *egress.Client implements it.
type Opener interface {
	Open(ctx context.Context, scope egress.Scope, req *http.Request) (*http.Response, error)
}

// Secrets reads a bot's secret; *bots.Catalog implements it.
type Secrets interface {
	Secret(ctx context.Context, bot, name string) (string, error)
}

// WebhookConfig configures a [Webhook].
type WebhookConfig struct {
	// HTTP sends the requests (required): the rules of handlers' http
	// calls apply, so private addresses are reached only when the bot's
	// http_allow names them literally.
	HTTP Opener
	// Secrets reads the signing secret (required).
	Secrets Secrets
	// Tries is how often a post is tried in all (default 4).
	Tries int
	// Backoff is the first wait before a try again, doubled each time
	// (default 1s).
	Backoff time.Duration
	// Timeout bounds one try (default 10s).
	Timeout time.Duration
	// MaxInFlight bounds the posts under way; more are dropped and logged
	// (default 256).
	MaxInFlight int
	// Now is the clock of the timestamps (default time.Now).
	Now func() time.Time
	// Logger receives failed posts; nil discards them.
	Logger *slog.Logger
}

// Webhook posts handoffs and releases to the bots' handoff_webhook_url,
// signed, off the request path. Create it with [NewWebhook].
type Webhook struct {
	cfg  WebhookConfig
	log  *slog.Logger
	slot chan struct{}
	wg   sync.WaitGroup
	// ctx bounds the posts under way; Stop ends it.
	ctx  context.Context
	stop context.CancelFunc
}

// NewWebhook returns a Webhook.
func NewWebhook(cfg WebhookConfig) *Webhook {
	if cfg.Tries <= 0 {
		cfg.Tries = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Webhook{cfg: cfg, log: log, slot: make(chan struct{}, cfg.MaxInFlight), ctx: ctx, stop: stop}
}

// Post sends e to the bot's webhook, if it has one, in the background.
func (w *Webhook) Post(bot *bots.Bot, e Event) {
	if bot.Settings.HandoffWebhookURL == "" {
		return
	}
	select {
	case w.slot <- struct{}{}:
	default:
		w.log.Warn("handoff webhook: too many posts under way; dropped one", "bot", bot.Name, "event", e.Event)
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.slot }()
		if err := w.deliver(w.ctx, bot, e); err != nil {
			w.log.Warn("handoff webhook failed", "bot", bot.Name, "event", e.Event, "err", err)
		}
	}()
}

// Stop waits up to grace for the posts under way, then ends them (a post
// waiting to be tried again is dropped, and logged).
func (w *Webhook) Stop(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		w.stop()
		<-done
	}
}

// deliver posts e, trying again after failures that may pass (a network
// error, 429, 5xx).
func (w *Webhook) deliver(ctx context.Context, bot *bots.Bot, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	secret, err := w.cfg.Secrets.Secret(ctx, bot.Name, bot.Settings.HandoffWebhookSecret)
	if err != nil {
		return fmt.Errorf("signing secret %s: %w", bot.Settings.HandoffWebhookSecret, err)
	}
	if secret == "" {
		return fmt.Errorf("signing secret %s is not set", bot.Settings.HandoffWebhookSecret)
	}
	u, err := url.Parse(bot.Settings.HandoffWebhookURL)
	if err != nil {
		return err
	}
	scope := egress.Scope{Bot: bot.Name, Allow: bot.Settings.HTTPAllow, Hosts: []string{u.Host}}
	backoff := w.cfg.Backoff
	for try := 1; ; try++ {
		retry, err := w.try(ctx, scope, u.String(), secret, body)
		if err == nil {
			return nil
		}
		if !retry || try == w.cfg.Tries {
			return fmt.Errorf("after %d tries: %w", try, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped after %d tries: %w", try, err)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// try posts once; retry says whether another try may succeed.
func (w *Webhook) try(ctx context.Context, scope egress.Scope, target, secret string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(w.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	resp, err := w.cfg.HTTP.Open(ctx, scope, req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
		fmt.Errorf("the webhook answered %d", resp.StatusCode)
}
