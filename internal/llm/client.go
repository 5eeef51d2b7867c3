package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/egress"
	"github.com/parleyhq/parley/sandbox"
)

// Secrets reads a bot's secrets (the API key named by llm_api_key_secret).
type Secrets interface {
	Secret(ctx context.Context, bot, name string) (string, error)
}

// Opener sends a request within a bot's egress scope and hands back the
// response with its body unread; *egress.Client implements it.
type Opener interface {
	Open(ctx context.Context, scope egress.Scope, req *http.Request) (*http.Response, error)
}

// Budget counts each bot's tokens per UTC day; *RedisBudget implements it
// across replicas.
type Budget interface {
	// Used returns the tokens the bot used today.
	Used(ctx context.Context, bot string) (int64, error)
	// Add counts n more tokens of the bot today.
	Add(ctx context.Context, bot string, n int64) error
}

// Meter counts model calls and tokens per bot and model (Prometheus).
type Meter interface {
	ObserveLLM(bot, model, outcome string, input, output int)
}

// Outcomes of a call as the Meter sees them.
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error"     // the API refused or failed
	OutcomeTimeout  = "timeout"   // the turn's deadline (or its end) ended the call
	OutcomeRefused  = "refused"   // Parley did not call: no key, no model, over budget
	OutcomeTooLarge = "too_large" // the answer passed its cap
)

// Defaults of [Config].
const (
	DefaultMaxRetries     = 2
	DefaultMaxStreamBytes = 8 << 20
	// maxLineBytes bounds one line of an event stream.
	maxLineBytes = 1 << 20
	// maxErrorBody bounds the error answer read from the API.
	maxErrorBody = 16 << 10
	// minAttemptTime is the least time left for a retry to be worth sending.
	minAttemptTime = 250 * time.Millisecond
	// budgetTimeout bounds counting a call's tokens, which happens after the
	// call (and possibly its turn) ended.
	budgetTimeout = 2 * time.Second
)

// Config configures a [Client]. Zero values mean the defaults.
type Config struct {
	// HTTP sends the requests (required): the egress client, so that the
	// bot's allow-list and the private-address rules apply.
	HTTP Opener
	// Secrets reads the API keys; nil makes every bot that names a key
	// secret fail with "no API key: secret X is not set".
	Secrets Secrets
	// Budget enforces llm_tokens_per_day; nil enforces none.
	Budget Budget
	// Meter counts calls and tokens; nil counts nothing.
	Meter Meter
	// MaxRetries is how many times a call refused with 408, 409, 429 or a
	// 5xx status, or failed before an answer, is sent again, within the
	// turn's deadline (default 2; negative: never).
	MaxRetries int
	// MaxStreamBytes caps the bytes read from the API for one call
	// (default 8 MiB); an event stream repeats its envelope with every
	// piece of text, so this is well above the answer's own cap.
	MaxStreamBytes int
	// Logger receives failures scripts do not see (a secret store error, a
	// budget that could not be counted); nil discards them.
	Logger *slog.Logger
}

// Client calls OpenAI-compatible chat completion APIs for the llm module.
// It implements [sandbox.LLM] and is safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger
	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ sandbox.LLM = (*Client)(nil)

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.MaxStreamBytes <= 0 {
		cfg.MaxStreamBytes = DefaultMaxStreamBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: log, sleep: sleepCtx}
}

// Errors whose text scripts get as the message of a refused call.
var (
	// ErrBudget refuses a call of a bot over its llm_tokens_per_day.
	ErrBudget = errors.New("budget exhausted")
)

// Chat implements [sandbox.LLM]: one chat completion, streamed when
// req.Stream is set, retried within ctx's deadline when the API asks for
// it. A call that got an answer returns it with its usage even when it
// fails afterwards (an answer over its cap), so the tokens are metered.
func (c *Client) Chat(ctx context.Context, req *sandbox.LLMRequest) (*sandbox.LLMResponse, error) {
	model := req.Model
	if model == "" {
		model = req.Settings.Model
	}
	ctx, span := startSpan(ctx, req, model)
	resp, outcome, err := c.chat(ctx, req, model)
	if outcome == OutcomeError && ctx.Err() != nil {
		// The turn ended the call: its deadline, or the sandbox stopping a
		// handler at its deadline, which cancels the call's context.
		outcome = OutcomeTimeout
	}
	endSpan(span, resp, outcome, err)
	if resp != nil && resp.Model != "" {
		model = resp.Model
	}
	if c.cfg.Meter != nil {
		var in, out int
		if resp != nil {
			in, out = resp.InputTokens, resp.OutputTokens
		}
		c.cfg.Meter.ObserveLLM(req.Bot, model, outcome, in, out)
	}
	if resp != nil && req.Settings.TokensPerDay > 0 && c.cfg.Budget != nil {
		if n := int64(resp.InputTokens + resp.OutputTokens); n > 0 {
			// Counted apart from the call, which may be at its deadline.
			go c.count(context.WithoutCancel(ctx), req.Bot, n)
		}
	}
	return resp, err
}

func (c *Client) count(ctx context.Context, bot string, n int64) {
	ctx, cancel := context.WithTimeout(ctx, budgetTimeout)
	defer cancel()
	if err := c.cfg.Budget.Add(ctx, bot, n); err != nil {
		c.log.Warn("llm: could not count tokens against the daily budget", "bot", bot, "tokens", n, "err", err)
	}
}

func (c *Client) chat(ctx context.Context, req *sandbox.LLMRequest, model string) (_ *sandbox.LLMResponse, _ string, err error) {
	if model == "" {
		return nil, OutcomeRefused, errors.New("llm: no model: pass model or set llm_model")
	}
	if err := c.checkBudget(ctx, req); err != nil {
		return nil, OutcomeRefused, err
	}
	key, err := c.apiKey(ctx, req)
	if err != nil {
		return nil, OutcomeRefused, err
	}
	if key != "" {
		// An API or a proxy may quote the key in its refusal; scripts get
		// the message, so never with the key in it.
		defer func() { err = hideKey(err, key) }()
	}
	base, err := url.Parse(strings.TrimRight(req.Settings.BaseURL, "/"))
	if err != nil || base.Host == "" {
		return nil, OutcomeRefused, errors.New("llm: llm_base_url is not a URL")
	}
	endpoint := base.JoinPath("chat", "completions")
	body, err := json.Marshal(newRequestBody(req, model, base.Hostname()))
	if err != nil {
		return nil, OutcomeError, fmt.Errorf("llm: encode request: %w", err)
	}
	scope := egress.Scope{Bot: req.Bot, Allow: req.Allow, Hosts: []string{hostEntry(base)}}
	for attempt := 0; ; attempt++ {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
		if err != nil {
			return nil, OutcomeError, errors.New("llm: llm_base_url is not a URL")
		}
		hreq.Header.Set("Content-Type", "application/json")
		if req.Stream {
			hreq.Header.Set("Accept", "text/event-stream")
		} else {
			hreq.Header.Set("Accept", "application/json")
		}
		if key != "" {
			hreq.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.cfg.HTTP.Open(ctx, scope, hreq)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				return nil, OutcomeTimeout, err
			}
			var refused *egress.ConnRefusedError
			if !errors.As(err, &refused) && c.retry(ctx, attempt, 0) {
				continue
			}
			return nil, OutcomeError, fmt.Errorf("llm: %w", err)
		}
		if resp.StatusCode == http.StatusOK {
			out, outcome, err := c.answer(resp, req)
			resp.Body.Close()
			return out, outcome, err
		}
		apiErr := readAPIError(resp)
		resp.Body.Close()
		if apiErr.retryable() && c.retry(ctx, attempt, apiErr.after) {
			continue
		}
		return nil, OutcomeError, apiErr
	}
}

// keyHidden is an error whose message had the API key in it, shown as ***.
type keyHidden struct {
	msg string
	err error
}

func (e *keyHidden) Error() string { return e.msg }
func (e *keyHidden) Unwrap() error { return e.err }

// hideKey returns err with every occurrence of key in its message
// replaced by ***.
func hideKey(err error, key string) error {
	if err == nil || !strings.Contains(err.Error(), key) {
		return err
	}
	return &keyHidden{msg: strings.ReplaceAll(err.Error(), key, "***"), err: err}
}

// retry waits before attempt+1 and reports whether to send it: when the
// API's wait (or the backoff) leaves time for the attempt before ctx's
// deadline.
func (c *Client) retry(ctx context.Context, attempt int, after time.Duration) bool {
	if attempt >= c.cfg.MaxRetries {
		return false
	}
	wait := after
	if wait <= 0 {
		wait = backoff(attempt)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+minAttemptTime {
		return false
	}
	return c.sleep(ctx, wait) == nil
}

// backoff is the wait before retry n+1 when the API names none: half a
// second doubled per retry, at most 8 s, less up to a quarter of jitter.
func backoff(n int) time.Duration {
	d := min(500*time.Millisecond<<min(n, 4), 8*time.Second)
	return d - rand.N(d/4+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkBudget refuses a call of a bot whose tokens today reached its
// budget. A budget store that cannot answer lets the call through.
func (c *Client) checkBudget(ctx context.Context, req *sandbox.LLMRequest) error {
	limit := req.Settings.TokensPerDay
	if limit <= 0 || c.cfg.Budget == nil {
		return nil
	}
	used, err := c.cfg.Budget.Used(ctx, req.Bot)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("llm: could not read the daily token budget; the call goes ahead", "bot", req.Bot, "err", err)
		return nil
	}
	if used >= int64(limit) {
		return ErrBudget
	}
	return nil
}

// apiKey reads the bot's API key, if it names one.
func (c *Client) apiKey(ctx context.Context, req *sandbox.LLMRequest) (string, error) {
	name := req.Settings.APIKeySecret
	if name == "" {
		return "", nil
	}
	notSet := fmt.Errorf("no API key: secret %s is not set", name)
	if c.cfg.Secrets == nil {
		return "", notSet
	}
	key, err := c.cfg.Secrets.Secret(ctx, req.Bot, name)
	switch {
	case errors.Is(err, sandbox.ErrSecretNotSet), err == nil && key == "":
		return "", notSet
	case err != nil:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		c.log.Warn("llm: the API key's secret could not be read", "bot", req.Bot, "secret", name, "err", err)
		return "", fmt.Errorf("llm: the API key's secret %s cannot be read", name)
	}
	return key, nil
}

// hostEntry is the allow-list entry of the base URL's host and port.
func hostEntry(u *url.URL) string {
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" {
		return host + ":" + p
	}
	if u.Scheme == "http" {
		return host + ":80"
	}
	return host + ":443"
}

// apiError is a refusal or failure the API answered with.
type apiError struct {
	status  int
	message string
	code    string
	after   time.Duration
	// should is the API's x-should-retry: "true", "false" or "".
	should string
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "llm: HTTP %d", e.status)
	if e.code != "" {
		b.WriteString(" " + e.code)
	}
	if e.message != "" {
		b.WriteString(": " + e.message)
	}
	return b.String()
}

// retryable reports whether sending the call again may succeed, as the
// official clients decide: 408, 409, 429 and 5xx, unless the API says
// otherwise or the quota is used up.
func (e *apiError) retryable() bool {
	switch {
	case e.should == "true":
		return true
	case e.should == "false", e.code == "insufficient_quota":
		return false
	}
	return e.status == http.StatusRequestTimeout || e.status == http.StatusConflict ||
		e.status == http.StatusTooManyRequests || e.status >= 500
}

// readAPIError reads an error answer: {"error": {"message", "type", "param", "code"}}.
func readAPIError(resp *http.Response) *apiError {
	e := &apiError{status: resp.StatusCode, after: retryAfter(resp.Header, time.Now()),
		should: strings.ToLower(resp.Header.Get("X-Should-Retry"))}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Error) > 0 {
		var obj struct {
			Message string          `json:"message"`
			Code    json.RawMessage `json:"code"`
			Type    string          `json:"type"`
		}
		if json.Unmarshal(body.Error, &obj) == nil {
			e.message = obj.Message
			var code string
			if json.Unmarshal(obj.Code, &code) == nil {
				e.code = code
			} else if len(obj.Code) > 0 && string(obj.Code) != "null" {
				e.code = string(obj.Code)
			}
			if e.code == "" {
				e.code = obj.Type
			}
		} else {
			_ = json.Unmarshal(body.Error, &e.message) // {"error": "text"}
		}
	}
	e.message = clip(e.message, 512)
	return e
}

// retryAfter reads the API's requested wait: retry-after-ms, then
// Retry-After in seconds or as an HTTP date; zero when none.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms > 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < 1e6 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
