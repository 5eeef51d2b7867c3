package analytics

import (
	"encoding/json"
	"strings"

	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/msg"
)

// Outcomes of a turn as analytics records them: the engine's outcomes plus
// rejected, for a webhook addressed to a bot that Parley refused before a
// turn could run (failed verification, a malformed payload, the store
// unavailable).
const (
	OutcomeHandled  = "handled"
	OutcomeFallback = "fallback"
	OutcomeError    = "error"
	OutcomeTimeout  = "timeout"
	OutcomeRejected = "rejected"
)

// None is the label of an absent intent or source: a turn answered by the
// built-in fallback, or a rejected webhook.
const None = "(none)"

// Kinds of records: a user's turn, and what happens around a conversation
// handed to a person.
const (
	// KindTurn is a user's turn (the zero value).
	KindTurn = ""
	// KindHandoff is a conversation handed to a person through the
	// management API: counted (handoffs), not a turn, not in transcripts.
	// A handler's handoff is a turn with Handoff set.
	KindHandoff = "handoff"
	// KindRelease is a handed-off conversation given back to the bot:
	// counted (releases), not a turn, not in transcripts.
	KindRelease = "release"
	// KindAgent is an agent's message (Agent, Reply): in the transcript
	// only.
	KindAgent = "agent"
)

// Turn is one turn as analytics records it.
type Turn struct {
	// Kind is what the record is; zero for a user's turn.
	Kind string
	// Handoff marks a turn whose handler handed the conversation to a person.
	Handoff bool
	// Agent is the agent who wrote Reply, in a record of KindAgent.
	Agent string
	// At is when the turn finished; zero means now (the service's clock).
	At time.Time
	// Bot, Channel, User and Conversation say where the turn happened.
	Bot, Channel, User, Conversation string
	// Intent is the intent the turn was routed to; empty for the built-in fallback.
	Intent string
	// Source is how the intent was chosen: platform, postback, expect,
	// classifier, fallback or builtin.
	Source string
	// Confidence is the classifier's or platform's confidence, 0 when unknown.
	Confidence float64
	// Outcome is handled, fallback, error, timeout or rejected.
	Outcome string
	// Latency is the whole turn; HandlerTime the Lua handler's share and
	// RoutingTime the intent routing's.
	Latency, HandlerTime, RoutingTime time.Duration
	// LLMInputTokens and LLMOutputTokens are the model tokens the turn's
	// handler used with the llm module.
	LLMInputTokens, LLMOutputTokens int
	// NewConversation marks a conversation's first turn, EndConversation its last.
	NewConversation, EndConversation bool
	// NewUser marks the first turn ever recorded for the user. The recorder
	// sets it; callers of [Service.WriteAggregates] set it themselves.
	NewUser bool
	// Text is what the user said, Reply what the bot answered.
	Text, Reply string
	// Rich is the replies' options, buttons, cards and media as a JSON
	// array (one object per reply that has any), or nil. It must be valid
	// JSON: transcripts keep it as it is, beside the reply's text.
	Rich json.RawMessage
	// Sensitive turns keep neither Text, Reply nor Rich anywhere.
	Sensitive bool
	// RequestID identifies the HTTP request that carried the turn.
	RequestID string
}

// Metrics is what the Prometheus metrics count of t.
func (t *Turn) Metrics() metrics.Turn {
	return metrics.Turn{Bot: t.Bot, Channel: t.Channel, Intent: t.Intent, Outcome: t.Outcome,
		Latency: t.Latency, HandlerTime: t.HandlerTime, RoutingTime: t.RoutingTime}
}

// key is the turn's conversation as stored ([msg.ConversationKey]), or
// "" when the turn has none.
func (t *Turn) key() string {
	if t.Conversation == "" {
		return ""
	}
	return string(msg.KeyOf(t.Channel, t.Conversation))
}

// label returns the label for a possibly empty dimension value.
func label(s string) string {
	if s == "" {
		return None
	}
	return s
}

// maxUtteranceBytes bounds a fallback utterance as kept for the top list.
const maxUtteranceBytes = 200

// normalizeUtterance folds case and spacing so that "Hello  there" and
// "hello there" count as one utterance, and bounds its length.
func normalizeUtterance(s string) string {
	s = strings.Join(strings.Fields(strings.ToLower(s)), " ")
	if len(s) <= maxUtteranceBytes {
		return s
	}
	s = s[:maxUtteranceBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// fallbackUtterance is the text a fallback turn adds to the top list, or "".
func (t *Turn) fallbackUtterance() string {
	if t.Outcome != OutcomeFallback || t.Sensitive {
		return ""
	}
	return normalizeUtterance(t.Text)
}
