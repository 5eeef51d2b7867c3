package bots

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/intents/nlu"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/rate"
	"github.com/parleyhq/parley/sandbox"
)

// Errors returned by the catalog, each with the answer the API gives it.
var (
	ErrBotNotFound     error = apierr.New(http.StatusNotFound, "bot_not_found", "unknown bot")
	ErrIntentNotFound  error = apierr.New(http.StatusNotFound, "intent_not_found", "unknown intent")
	ErrVersionNotFound error = apierr.New(http.StatusNotFound, "version_not_found", "unknown version")
	ErrNoCanary        error = &apierr.Error{Status: http.StatusNotFound, Code: "canary_not_found",
		Message: "the intent has no canary", Err: errors.New("no canary")}
	// ErrBotDeleting refuses to create a bot whose earlier namesake's data is
	// still being removed.
	ErrBotDeleting error = &apierr.Error{Status: http.StatusConflict, Code: "bot_deleting",
		Message: "a bot of this name was deleted and its data are still being removed; the name can be used again " +
			"once GET /v1/bots/{bot} answers 404 (usually about a minute)",
		Err: errors.New("a bot of this name is being deleted")}
)

// CanaryConflictError refuses a plain upload to an intent whose canary is
// running: promote or abort the canary first, or upload as a canary to
// replace it.
type CanaryConflictError struct {
	Intent  string
	Version int
	Percent int
}

func (e *CanaryConflictError) Error() string {
	return fmt.Sprintf("intent %s has canary version %d at %d%%; promote or abort it first, or upload as a canary to replace it",
		e.Intent, e.Version, e.Percent)
}

// HTTPStatus is 409: the intent's canary is in the way.
func (e *CanaryConflictError) HTTPStatus() int { return http.StatusConflict }

// ErrorCode is "canary_running".
func (e *CanaryConflictError) ErrorCode() string { return "canary_running" }

// ErrorDetails shows the running canary.
func (e *CanaryConflictError) ErrorDetails() map[string]any {
	return map[string]any{"canary": Canary{Version: e.Version, Percent: e.Percent}}
}

// ValidationError reports input the catalog refuses.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

// HTTPStatus is 400.
func (e *ValidationError) HTTPStatus() int { return http.StatusBadRequest }

// ErrorCode is "invalid".
func (e *ValidationError) ErrorCode() string { return "invalid" }

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
	// address; an entry without a port allows ports 80 and 443 only.
	// Empty allows none.
	HTTPAllow []string `json:"http_allow,omitempty"`
	// BusyReply is what users get when the bot has too many turns running
	// or is over a rate limit.
	BusyReply string `json:"busy_reply,omitempty"`
	// RateLimitPerBot limits the turns of the whole bot, across all
	// replicas: a count per s, m, h or d such as "100/s" or "6000/m", with
	// bursts of up to the count. Empty (the default) means no limit.
	RateLimitPerBot string `json:"rate_limit_per_bot,omitempty"`
	// RateLimitPerUser limits the turns of each conversation, written like
	// RateLimitPerBot. Empty (the default) means no limit.
	RateLimitPerUser string `json:"rate_limit_per_user,omitempty"`
	// MinVMs is how many Lua VMs each of the bot's handlers keeps warm
	// when idle (default 0: idle handlers scale to zero, at most 32).
	MinVMs int `json:"min_vms,omitempty"`
	// Secrets names the secrets the bot's handlers need (secret("NAME")):
	// saving the settings, and GET of the bot, warn about those not set
	// (and about LLMAPIKeySecret: see NeededSecrets).
	Secrets []string `json:"secrets,omitempty"`
	// MaxVMs caps the Lua VMs of each of the bot's handlers (default: the
	// server's PARLEY_POOL_SIZE, at most 256); more concurrent turns of one
	// handler wait for a VM.
	MaxVMs int `json:"max_vms,omitempty"`
	// LLMBaseURL is the OpenAI-compatible API the llm module calls
	// ("https://api.openai.com/v1"); its host may be reached without
	// being in HTTPAllow. Empty disables the llm module.
	LLMBaseURL string `json:"llm_base_url,omitempty"`
	// LLMAPIKeySecret names the bot's secret that holds the API key, sent
	// as a bearer token. Empty sends none (a local server).
	LLMAPIKeySecret string `json:"llm_api_key_secret,omitempty"`
	// LLMModel is the model of calls that name none.
	LLMModel string `json:"llm_model,omitempty"`
	// LLMTokensPerDay bounds the model tokens (input and output) the bot
	// uses per UTC day, across replicas; zero means no bound.
	LLMTokensPerDay int `json:"llm_tokens_per_day,omitempty"`
	// HandoffNotice, when set, is the answer to the first message of a
	// conversation after it was handed to a person ("An agent will be
	// with you shortly."); later messages get no answer from the bot.
	HandoffNotice string `json:"handoff_notice,omitempty"`
	// HandoffIdleTimeout gives a handed-off conversation back to the bot
	// when neither the user nor an agent wrote for that long: a duration
	// such as "30m" or "2h" (default 30m, at least 1s, at most 30 days).
	HandoffIdleTimeout string `json:"handoff_idle_timeout,omitempty"`
	// HandoffWebhookURL, when set, is told of every handoff and release
	// with a signed POST (see docs/handoff.md).
	HandoffWebhookURL string `json:"handoff_webhook_url,omitempty"`
	// HandoffWebhookSecret names the bot's secret that signs the webhook's
	// requests; required with HandoffWebhookURL.
	HandoffWebhookSecret string `json:"handoff_webhook_secret,omitempty"`
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
	maxMinVMs          = 32
	maxMaxVMs          = 256
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
	case s.MinVMs < 0 || s.MinVMs > maxMinVMs:
		return invalid("min_vms must be between 0 and %d", maxMinVMs)
	case s.MaxVMs < 0 || s.MaxVMs > maxMaxVMs:
		return invalid("max_vms must be between 1 and %d", maxMaxVMs)
	case s.MaxVMs > 0 && s.MinVMs > s.MaxVMs:
		return invalid("min_vms (%d) must not be larger than max_vms (%d)", s.MinVMs, s.MaxVMs)
	}
	if len(s.Secrets) > MaxSecrets {
		return invalid("secrets lists at most %d names", MaxSecrets)
	}
	for _, name := range s.Secrets {
		if err := ValidateSecretName(name); err != nil {
			return invalid("secrets: %s", err.Error())
		}
	}
	for _, h := range s.HTTPAllow {
		if len(h) > 260 || !allowEntry.MatchString(strings.ToLower(h)) {
			return invalid("http_allow: %q is not a host, *.domain, or IP address with an optional port", h)
		}
	}
	if err := s.validateLLM(); err != nil {
		return err
	}
	if err := s.validateHandoff(); err != nil {
		return err
	}
	if _, err := rate.Parse(s.RateLimitPerBot); err != nil {
		return invalid("rate_limit_per_bot: %s", err.Error())
	}
	if _, err := rate.Parse(s.RateLimitPerUser); err != nil {
		return invalid("rate_limit_per_user: %s", err.Error())
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

// RateLimits are the bot's rate limits; zero rates mean no limit. Settings
// that fail [Settings.Validate] count as no limit.
func (s Settings) RateLimits() rate.Limits {
	perBot, _ := rate.Parse(s.RateLimitPerBot)
	perUser, _ := rate.Parse(s.RateLimitPerUser)
	return rate.Limits{Bot: perBot, Conversation: perUser}
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

// Release is one compiled handler version.
type Release struct {
	Version int
	Program *sandbox.Program
}

// Handler is a bot's handler for one intent: the stable version, and the
// other versions conversations may still be pinned to.
type Handler struct {
	// Version and Program are the stable version, which every conversation
	// gets unless the canary or its pin decides otherwise.
	Version int
	Program *sandbox.Program
	// Canary is the version on trial; zero when there is none.
	Canary Release
	// CanaryPercent is the share of new conversations (0-100) that Canary gets.
	CanaryPercent int
	// Previous is the stable version before the last promotion, kept for
	// the conversations that began on it; zero when there is none.
	Previous Release
}

// Select returns the version that answers a conversation: the version it is
// pinned to (0: none) while that version is still served (stable, canary or
// previous); otherwise the canary when the conversation's bucket falls within
// the canary's share, else the stable version. The caller pins the result.
func (h Handler) Select(intent, conversation string, pinned int) Release {
	switch {
	case pinned == 0:
	case pinned == h.Version:
		return Release{Version: h.Version, Program: h.Program}
	case pinned == h.Canary.Version && h.Canary.Program != nil:
		return h.Canary
	case pinned == h.Previous.Version && h.Previous.Program != nil:
		return h.Previous
	}
	if h.Canary.Program != nil && Bucket(intent, conversation) < h.CanaryPercent {
		return h.Canary
	}
	return Release{Version: h.Version, Program: h.Program}
}

// releases lists the versions the handler serves: stable, canary, previous.
func (h Handler) releases() []Release {
	out := make([]Release, 0, 3)
	for _, r := range []Release{{Version: h.Version, Program: h.Program}, h.Canary, h.Previous} {
		if r.Program != nil {
			out = append(out, r)
		}
	}
	return out
}

// serves reports whether version is one the handler serves.
func (h Handler) serves(version int) bool {
	for _, r := range h.releases() {
		if r.Version == version {
			return true
		}
	}
	return false
}

// Bucket places a conversation in one of 100 buckets for an intent's canary,
// by a deterministic hash of the intent and conversation id: a canary at
// percent p gets the conversations with Bucket < p, on every replica. Raising
// p keeps the conversations already in the canary. The intent is part of the
// hash so that the same conversations do not try every canary of a bot.
func Bucket(intent, conversation string) int {
	h := fnv.New64a()
	h.Write([]byte(intent))
	h.Write([]byte{0})
	h.Write([]byte(conversation))
	// Finish with a 64-bit mixer (splitmix64): FNV alone spreads short,
	// similar ids poorly over a small modulus.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % 100)
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
	// secrets are the bot's secrets, opened; see [Catalog.Secret].
	secrets    *secretValues
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
