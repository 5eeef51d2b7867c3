package bots

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/parleyhq/parley/intents"
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
	// NLUThreshold is the minimum classifier confidence for routing (default 0.5).
	NLUThreshold float64 `json:"nlu_threshold,omitempty"`
}

// Defaults applied by the accessors on [Settings].
const (
	DefaultTimeout    = time.Second
	DefaultErrorReply = "Sorry, something went wrong. Please try again."
)

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
	case len(s.ErrorReply) > 4096 || len(s.FallbackReply) > 4096 || len(s.DisplayName) > 256:
		return invalid("display_name, error_reply and fallback_reply are limited to 4096 bytes")
	}
	return nil
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

// Threshold is the routing threshold for classifier matches.
func (s Settings) Threshold() float64 {
	if s.NLUThreshold == 0 {
		return intents.DefaultExampleThreshold
	}
	return s.NLUThreshold
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

// NLU is a bot's training data for routing text to intents.
type NLU struct {
	// Intents maps an intent name to example utterances.
	Intents map[string][]string `json:"intents"`
}

// NLU limits.
const (
	maxExamples      = 20000
	maxExampleLength = 512
)

// Validate checks names and sizes.
func (n NLU) Validate() error {
	total := 0
	for name, examples := range n.Intents {
		if err := ValidateIntentName(name); err != nil {
			return err
		}
		for _, ex := range examples {
			if len(ex) > maxExampleLength {
				return invalid("intent %s: example longer than %d bytes", name, maxExampleLength)
			}
		}
		total += len(examples)
	}
	if total > maxExamples {
		return invalid("at most %d examples in all, got %d", maxExamples, total)
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
	Name       string
	Settings   Settings
	Channels   map[string]map[string]string
	Handlers   map[string]Handler
	Classifier intents.Classifier
	generation int64
}

// Has reports whether the bot has a handler for intent.
func (b *Bot) Has(intent string) bool {
	_, ok := b.Handlers[intent]
	return ok
}
