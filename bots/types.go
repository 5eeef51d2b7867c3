package bots

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/intents/nlu"
	"github.com/parleyhq/parley/sandbox"
)

// Errors returned by the catalog; the gateway maps them to HTTP statuses.
var (
	ErrBotNotFound     = errors.New("unknown bot")
	ErrIntentNotFound  = errors.New("unknown intent")
	ErrVersionNotFound = errors.New("unknown version")
)

// ValidationError reports input the catalog refuses.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

var (
	botName    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	intentName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
)

// ValidateBotName checks a bot name: lowercase letters, digits, '-' and '_', up to 63.
func ValidateBotName(name string) error {
	if !botName.MatchString(name) {
		return invalid("bot name %q must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

// ValidateIntentName checks an intent name: a letter, then letters, digits, '_', '.', '-', up to 64.
func ValidateIntentName(name string) error {
	if !intentName.MatchString(name) {
		return invalid("intent name %q must be 1-64 letters, digits, '_', '.' or '-', starting with a letter", name)
	}
	return nil
}

// Settings are a bot's tunables. Zero values mean the default.
type Settings struct {
	// DisplayName is a human-readable name for consoles.
	DisplayName string `json:"display_name,omitempty"`
	// TimeoutMS is the wall-clock limit of one handler call (default 1000, at most 30000).
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// SessionTTLSeconds is how long an idle conversation is remembered (default 1800).
	SessionTTLSeconds int `json:"session_ttl_seconds,omitempty"`
	// HistoryLength is how many recent turns a conversation keeps (default 20, at most 1000).
	HistoryLength int `json:"history_length,omitempty"`
	// ErrorReply is what users get when a handler fails.
	ErrorReply string `json:"error_reply,omitempty"`
	// FallbackReply is what users get when nothing matched and there is no fallback handler.
	FallbackReply string `json:"fallback_reply,omitempty"`
	// NLUThreshold is the minimum classifier confidence for routing; zero
	// means the NLU data's threshold, or else the one the classifier
	// calibrated when it was trained.
	NLUThreshold float64 `json:"nlu_threshold,omitempty"`
	// MaxConcurrentTurns bounds the bot's handler calls running at once
	// (default 32, at most 10000); more wait briefly, then get BusyReply.
	MaxConcurrentTurns int `json:"max_concurrent_turns,omitempty"`
	// MaxSessionBytes caps a conversation's session as JSON (default 65536, at most 1 MiB).
	MaxSessionBytes int `json:"max_session_bytes,omitempty"`
	// MaxReplyBytes caps one reply (default 65536, at most 1 MiB).
	MaxReplyBytes int `json:"max_reply_bytes,omitempty"`
	// MaxHTTPCalls caps the outbound http requests of one turn (default 10, at most 100).
	MaxHTTPCalls int `json:"max_http_calls,omitempty"`
	// HTTPAllow lists the hosts handlers may reach with the http module:
	// "api.example.com", "api.example.com:8443", "*.example.com" or an IP
	// address. Empty allows none.
	HTTPAllow []string `json:"http_allow,omitempty"`
	// BusyReply is what users get when the bot has too many turns running.
	BusyReply string `json:"busy_reply,omitempty"`
}

// Defaults applied by the accessors on [Settings].
const (
	DefaultTimeout            = time.Second
	DefaultErrorReply         = "Sorry, something went wrong. Please try again."
	DefaultMaxConcurrentTurns = 32
	DefaultMaxSessionBytes    = 64 << 10
	DefaultMaxReplyBytes      = 64 << 10
	DefaultMaxHTTPCalls       = 10
	DefaultBusyReply          = "I'm a bit busy right now, please try again in a moment."
)

// Upper bounds of the per-bot limits.
const (
	maxConcurrentTurns = 10000
	maxLimitBytes      = 1 << 20
	maxHTTPCalls       = 100
	maxHTTPAllow       = 64
)

// allowEntry is an http_allow entry: a host name, a *. wildcard, an IPv4
// address or a bracketed IPv6 address, with an optional port.
var allowEntry = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$`)

// Validate checks the ranges of every field.
func (s Settings) Validate() error {
	switch {
	case s.TimeoutMS < 0 || s.TimeoutMS > 30000:
		return invalid("timeout_ms must be between 1 and 30000")
	case s.SessionTTLSeconds < 0 || s.SessionTTLSeconds > 30*24*3600:
		return invalid("session_ttl_seconds must be between 1 and 2592000 (30 days)")
	case s.HistoryLength < 0 || s.HistoryLength > 1000:
		return invalid("history_length must be between 1 and 1000")
	case s.NLUThreshold < 0 || s.NLUThreshold > 1:
		return invalid("nlu_threshold must be between 0 and 1")
	case len(s.ErrorReply) > 4096 || len(s.FallbackReply) > 4096 || len(s.DisplayName) > 256 || len(s.BusyReply) > 4096:
		return invalid("display_name, error_reply, fallback_reply and busy_reply are limited to 4096 bytes")
	case s.MaxConcurrentTurns < 0 || s.MaxConcurrentTurns > maxConcurrentTurns:
		return invalid("max_concurrent_turns must be between 1 and %d", maxConcurrentTurns)
	case s.MaxSessionBytes < 0 || s.MaxSessionBytes > maxLimitBytes:
		return invalid("max_session_bytes must be between 1 and %d", maxLimitBytes)
	case s.MaxReplyBytes < 0 || s.MaxReplyBytes > maxLimitBytes:
		return invalid("max_reply_bytes must be between 1 and %d", maxLimitBytes)
	case s.MaxHTTPCalls < 0 || s.MaxHTTPCalls > maxHTTPCalls:
		return invalid("max_http_calls must be between 1 and %d", maxHTTPCalls)
	case len(s.HTTPAllow) > maxHTTPAllow:
		return invalid("http_allow lists at most %d hosts", maxHTTPAllow)
	}
	for _, h := range s.HTTPAllow {
		if len(h) > 260 || !allowEntry.MatchString(strings.ToLower(h)) {
			return invalid("http_allow: %q is not a host, *.domain, or IP address with an optional port", h)
		}
	}
	return nil
}

// ConcurrentTurns is the bound on the bot's handler calls running at once.
func (s Settings) ConcurrentTurns() int {
	if s.MaxConcurrentTurns == 0 {
		return DefaultMaxConcurrentTurns
	}
	return s.MaxConcurrentTurns
}

// SessionBytes is the cap on a session's JSON size.
func (s Settings) SessionBytes() int {
	if s.MaxSessionBytes == 0 {
		return DefaultMaxSessionBytes
	}
	return s.MaxSessionBytes
}

// ReplyBytes is the cap on one reply's size.
func (s Settings) ReplyBytes() int {
	if s.MaxReplyBytes == 0 {
		return DefaultMaxReplyBytes
	}
	return s.MaxReplyBytes
}

// HTTPCalls is the cap on outbound http requests per turn.
func (s Settings) HTTPCalls() int {
	if s.MaxHTTPCalls == 0 {
		return DefaultMaxHTTPCalls
	}
	return s.MaxHTTPCalls
}

// BusyText is the answer sent when the bot has too many turns running.
func (s Settings) BusyText() string {
	if s.BusyReply == "" {
		return DefaultBusyReply
	}
	return s.BusyReply
}

// Timeout is the handler time limit.
func (s Settings) Timeout() time.Duration {
	if s.TimeoutMS == 0 {
		return DefaultTimeout
	}
	return time.Duration(s.TimeoutMS) * time.Millisecond
}

// SessionTTL is the sliding expiry of conversation state.
func (s Settings) SessionTTL() time.Duration {
	if s.SessionTTLSeconds == 0 {
		return 30 * time.Minute
	}
	return time.Duration(s.SessionTTLSeconds) * time.Second
}

// ErrorText is the answer sent when a handler fails.
func (s Settings) ErrorText() string {
	if s.ErrorReply == "" {
		return DefaultErrorReply
	}
	return s.ErrorReply
}

// FallbackText is the answer sent when nothing matched.
func (s Settings) FallbackText() string {
	if s.FallbackReply == "" {
		return intents.DefaultFallbackText
	}
	return s.FallbackReply
}

// NLU is a bot's training data for routing text to intents: example
// utterances per intent (with slot markup), slot types and an optional
// threshold. See [nlu.Data].
type NLU = nlu.Data

// validateNLU checks intent names and the data's own limits.
func validateNLU(n NLU) error {
	for name := range n.Intents {
		if err := ValidateIntentName(name); err != nil {
			return err
		}
	}
	if err := n.Validate(); err != nil {
		return invalid("%s", err.Error())
	}
	return nil
}

// Version describes one stored handler version.
type Version struct {
	Version int    `json:"version"`
	SHA256  string `json:"sha256"`
	Created string `json:"created"`
}

// Handler is a bot's current handler for one intent.
type Handler struct {
	Version int
	Program *sandbox.Program
}

// Bot is an immutable snapshot of one bot as the request path uses it.
type Bot struct {
	Name     string
	Settings Settings
	Channels map[string]map[string]string
	Handlers map[string]Handler
	// Model is the bot's trained classifier and slot extractor; nil when
	// the bot has no NLU data.
	Model *nlu.Model
	// Classifier is Model as routing uses it; nil when Model is nil.
	Classifier intents.Classifier
	generation int64
}

// Has reports whether the bot has a handler for intent.
func (b *Bot) Has(intent string) bool {
	_, ok := b.Handlers[intent]
	return ok
}

// DefaultThreshold is the routing threshold of a bot whose model has none.
const DefaultThreshold = 0.5

// Threshold is the minimum classifier confidence for routing a message to an
// intent: the bot's nlu_threshold setting, else the NLU data's threshold,
// else the one calibrated in training.
func (b *Bot) Threshold() float64 {
	switch {
	case b.Settings.NLUThreshold > 0:
		return b.Settings.NLUThreshold
	case b.Model != nil:
		return b.Model.Threshold()
	}
	return DefaultThreshold
}
