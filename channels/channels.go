package channels

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/msg"
)

// Settings are one bot's settings for one channel (credentials and options),
// named as the platform's console names them.
type Settings map[string]string

// Request is an inbound webhook as the gateway received it.
type Request struct {
	// Bot is the bot named in the webhook URL.
	Bot string
	// Method, URL and Header are the HTTP request's.
	Method string
	URL    *url.URL
	Header http.Header
	// Body is the raw body, for signature checks over the exact bytes.
	Body []byte
	// Settings are the bot's settings for this channel.
	Settings Settings
	// Now is the gateway's clock, injectable for timestamp checks.
	Now time.Time
	// Parsed is what the adapter's Parse decoded from Body, kept for its
	// own later use on the same request (Render, RenderError,
	// StreamRequest) so that a body is decoded once. Only the adapter
	// that set it reads it; its type is the adapter's.
	Parsed any
}

// Inbound is what an adapter made of a request: events to process, or an
// immediate response (a handshake, or a notification the bot ignores).
type Inbound struct {
	Events   []*msg.Event
	Response *Response
	// Async asks the gateway to acknowledge the webhook with Response at once
	// and to process Events later from the durable queue, answering through
	// the adapter's [Sender]. Each event's ID must then be the platform's
	// delivery id, which de-duplicates retries.
	Async bool
}

// Response is written back to the platform as is.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Adapter connects one platform.
type Adapter interface {
	// Name is the channel's name in URLs and settings ("web", "slack", ...).
	Name() string
	// Parse verifies req and normalizes it. A request that fails verification
	// returns an *Error with status 401 and never reaches a handler.
	Parse(req *Request) (*Inbound, error)
	// Render answers the platform synchronously with the turns' results.
	Render(req *Request, results []*msg.TurnResult) (*Response, error)
}

// Configurer is an adapter with settings to check when a bot connects it.
type Configurer interface {
	// ValidateSettings reports missing or malformed settings.
	ValidateSettings(s Settings) error
	// SecretSettings names the settings never echoed back by the API.
	SecretSettings() []string
}

// Error is a request an adapter refuses, with the HTTP status to answer.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// HTTPStatus is the status to answer.
func (e *Error) HTTPStatus() int { return e.Status }

// ErrorCode is the code of the answer.
func (e *Error) ErrorCode() string { return e.Code }

// Unauthorized is a request that failed verification.
func Unauthorized(format string, args ...any) error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a malformed request.
func BadRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

// Registry holds the adapters a gateway serves. Build it once with
// [NewRegistry]; it is read-only afterwards.
type Registry struct {
	adapters map[string]Adapter
}

// NewRegistry registers adapters; a duplicate name is an error.
func NewRegistry(adapters ...Adapter) (*Registry, error) {
	r := &Registry{adapters: make(map[string]Adapter, len(adapters))}
	for _, a := range adapters {
		if _, dup := r.adapters[a.Name()]; dup {
			return nil, fmt.Errorf("channel %q registered twice", a.Name())
		}
		r.adapters[a.Name()] = a
	}
	return r, nil
}

// Get returns the adapter for name.
func (r *Registry) Get(name string) (Adapter, bool) {
	a, ok := r.adapters[name]
	return a, ok
}

// Names lists the registered channels, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.adapters))
	for n := range r.adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Redact returns settings with the adapter's secret values replaced by "***".
func Redact(a Adapter, s Settings) Settings {
	out := make(Settings, len(s))
	for k, v := range s {
		out[k] = v
	}
	if c, ok := a.(Configurer); ok {
		for _, k := range c.SecretSettings() {
			if _, set := out[k]; set {
				out[k] = "***"
			}
		}
	}
	return out
}

// Validate checks settings with the adapter's rules, if it has any.
func Validate(a Adapter, s Settings) error {
	if c, ok := a.(Configurer); ok {
		return c.ValidateSettings(s)
	}
	return nil
}

// MinSecretLen is the shortest shared secret a channel accepts: a token or
// password the platform sends back on every request (web token, voice
// password or header value, Telegram's secret_token).
const MinSecretLen = 12

// ErrNotConfigured is returned for a channel the bot has not connected.
var ErrNotConfigured = errors.New("channel not configured for this bot")

// Budgeter is an adapter whose platform waits only so long for the answer
// (voice assistants, interactions). The gateway bounds the whole turn by the
// budget, and the handler's timeout is clipped to what is left of it.
type Budgeter interface {
	Budget() time.Duration
}

// Deadline implements [Budgeter] with a fixed budget per turn: embed it in
// an adapter.
type Deadline struct{ budget time.Duration }

// NewDeadline returns a Deadline of d, or of def when d is not positive.
func NewDeadline(d, def time.Duration) Deadline {
	if d <= 0 {
		d = def
	}
	return Deadline{budget: d}
}

// Budget implements [Budgeter].
func (d Deadline) Budget() time.Duration { return d.budget }

// ErrorRenderer is an adapter that answers a turn that could not run at all
// (the store is down, the conversation stayed busy) in the platform's own
// format, e.g. a spoken apology, instead of an HTTP error.
type ErrorRenderer interface {
	RenderError(req *Request, err error) *Response
}

// Sender is an adapter that answers through the platform's send API, after
// the webhook was acknowledged.
type Sender interface {
	// Send delivers one turn's replies to the conversation of res.Event.
	// Failures should be *SendError so the queue knows whether to retry.
	Send(ctx context.Context, s Settings, res *msg.TurnResult) error
}

// SendError is a failed send, saying whether a retry may succeed.
type SendError struct {
	// Status is the platform's HTTP status, when there was one.
	Status int
	// Retryable is true for 429, 5xx and network failures.
	Retryable bool
	// RetryAfter is the platform's requested wait (Retry-After), if any.
	RetryAfter time.Duration
	Err        error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("send failed (status %d, retryable %v): %v", e.Status, e.Retryable, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// SendClient is the HTTP client an adapter sends with: c, or when c is nil
// one with a 10 s timeout.
func SendClient(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Timeout: 10 * time.Second}
	}
	return c
}

// CheckSettingNames refuses settings other than the allowed ones, naming
// those the channel knows.
func CheckSettingNames(channel string, s Settings, allowed ...string) error {
	for k := range s {
		if !slices.Contains(allowed, k) {
			known := slices.Sorted(slices.Values(allowed))
			return BadRequest("unknown %s channel setting %q (known: %s)", channel, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// StatusError is the SendError of a platform's non-2xx answer: 429 and 5xx
// are worth a retry, after the answer's Retry-After. cause says what failed.
func StatusError(resp *http.Response, cause error) *SendError {
	return &SendError{
		Status:     resp.StatusCode,
		Retryable:  resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500,
		RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Err:        cause,
	}
}

// RetryAfter reads a Retry-After header: seconds (Discord sends decimals)
// or an HTTP date; zero when absent, unreadable or past.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs > 0 && secs < 1e6 {
			return time.Duration(secs * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
