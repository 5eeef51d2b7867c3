package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ErrUnavailable wraps failures of the shared store (Redis down, or the
// conversation stayed busy until the request's deadline). Nothing was
// written; the client may retry.
// The cause (an address, a driver message) stays in the log.
var ErrUnavailable error = &apierr.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
	Message: "the conversation store is unavailable; retry shortly", Err: errors.New("conversation store unavailable")}

// ErrErased means the message was received before its conversation or its
// user was erased: it is dropped, and nothing of it is kept. Retrying
// cannot help.
var ErrErased = sessions.ErrErased

// SensitiveAnswerTTL is how long the answer of a turn that a handler
// marked sensitive is remembered for a retry of its message, instead of
// sessions.DefaultAnswerTTL: long enough for a platform's retries (Slack's
// last comes after about 5 minutes, Twilio and the voice platforms do not
// retry), short enough that no clear copy of the answer lingers.
const SensitiveAnswerTTL = 5 * time.Minute

// Config configures an [Engine].
type Config struct {
	// Bots resolves bot snapshots (a *bots.Catalog).
	Bots BotSource
	// Sessions holds conversation state (a *sessions.Store).
	Sessions Conversations
	// Runtime runs Lua handlers (a *sandbox.Runtime).
	Runtime Runner
	// Logger receives handler failures; nil discards them.
	Logger *slog.Logger
	// Observer, when set, is told about every processed turn (analytics,
	// metrics). It must not block.
	Observer Observer
	// Invocations, when set, receives the metering record of every handler
	// call (invocation logs, usage). It must not block.
	Invocations InvocationRecorder
	// BusyWait bounds how long a turn waits when its bot runs
	// max_concurrent_turns handlers already (default 2s, and at most half
	// the handler's timeout); then the turn fails with ErrBusy.
	BusyWait time.Duration
	// Limiter, when set, enforces the bots' rate_limit_per_bot and
	// rate_limit_per_user settings (a *ratelimit.Limiter); nil, or a nil
	// pointer, means no rate limits.
	Limiter Limiter
	// Handoffs, when set, keeps the conversations handed to a person
	// (a *handoff.Manager): their messages run no handler, and a handler's
	// reply.handoff hands its conversation over. Nil, or a nil pointer,
	// disables handoffs.
	Handoffs Handoffs
}

// Observer watches processed turns.
type Observer interface {
	// TurnDone is called once per processed turn, after its commit (or after
	// the release of a failed turn). Retries answered from memory are not reported.
	TurnDone(ctx context.Context, t *Turn)
}

// Engine runs turns. Create it with [New].
type Engine struct {
	bots     BotSource
	sessions Conversations
	runtime  Runner
	log      *slog.Logger
	observer Observer

	invocations InvocationRecorder
	limits      botLimits
	maxBusyWait time.Duration
	limiter     Limiter
	handoffs    Handoffs
}

// New returns an Engine.
func New(cfg Config) *Engine {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.BusyWait <= 0 {
		cfg.BusyWait = DefaultBusyWait
	}
	if isNil(cfg.Limiter) {
		cfg.Limiter = nil
	}
	if isNil(cfg.Handoffs) {
		cfg.Handoffs = nil
	}
	return &Engine{bots: cfg.Bots, sessions: cfg.Sessions, runtime: cfg.Runtime, log: log, observer: cfg.Observer,
		invocations: cfg.Invocations, maxBusyWait: cfg.BusyWait, limiter: cfg.Limiter, handoffs: cfg.Handoffs}
}

// Turn is a processed turn with the details developers need when testing.
type Turn struct {
	msg.TurnResult
	// Version is the handler version that ran; 0 when no handler ran.
	Version int `json:"version,omitempty"`
	// Logs are the handler's log() lines.
	Logs []string `json:"logs,omitempty"`
	// HandlerTime is how long the handler ran.
	HandlerTime time.Duration `json:"-"`
	// Duration is the whole turn, from loading the bot to the commit.
	Duration time.Duration `json:"-"`
	// RoutingTime is how long choosing the intent took.
	RoutingTime time.Duration `json:"-"`
	// NewConversation is true for a conversation's first turn.
	NewConversation bool `json:"-"`
	// LLMInputTokens and LLMOutputTokens are the model tokens the
	// handler's llm calls used.
	LLMInputTokens, LLMOutputTokens int `json:"-"`
	// HandedOff is true when the turn's handler handed the conversation to
	// a person (reply.handoff).
	HandedOff bool `json:"-"`
	// Err is the handler's failure when Outcome is error or timeout.
	Err error `json:"-"`
}

// Run processes one event. It returns an error only when the turn could not
// be processed at all (unknown bot, store unavailable); a failing handler is
// a Turn with Outcome error or timeout and the bot's error reply.
func (e *Engine) Run(ctx context.Context, ev *msg.Event) (*Turn, error) {
	start := time.Now()
	ctx, span := tracing.Start(ctx, "turn")
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String(tracing.AttrBot, ev.Bot), attribute.String(tracing.AttrChannel, ev.Channel),
			attribute.String(tracing.AttrConversation, string(ev.Key())))
	}
	t, err := e.run(ctx, ev)
	if span.IsRecording() {
		traceTurn(span, t, err)
	}
	if err == nil && !t.Duplicate {
		t.Duration = time.Since(start)
		if e.observer != nil {
			e.observer.TurnDone(ctx, t)
		}
	}
	return t, err
}

func (e *Engine) run(ctx context.Context, ev *msg.Event) (*Turn, error) {
	bot, err := e.bots.Bot(ctx, ev.Bot)
	if err != nil {
		if errors.Is(err, bots.ErrBotNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now().UTC()
	}
	if ev.Received.IsZero() {
		ev.Received = time.Now().UTC()
	}
	timeout := clip(ctx, bot.Settings.Timeout())
	messageID := ev.ID // what a retry of this message would carry
	if ev.IDMadeUp {
		messageID = ""
	}
	opts := sessions.Options{
		MessageID: messageID,
		Lease:     2*timeout + 5*time.Second,
		User:      ev.User,
		Received:  ev.Received,
	}
	var hold HoldCheck
	if e.handoffs != nil {
		// Sent with the begin script: the check costs no round trip, save
		// for a conversation a person owns, which runs no handler.
		hold = e.handoffs.Hold(bot, ev)
		opts.Extra = hold
	}
	st, err := e.sessions.Begin(ctx, bot.Name, ev.Key(), opts)
	if errors.Is(err, ErrErased) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if st.Duplicate != nil {
		t := &Turn{}
		if err := json.Unmarshal(st.Duplicate, t); err != nil {
			return nil, fmt.Errorf("decode remembered answer: %w", err)
		}
		t.Event, t.Duplicate = ev, true
		return t, nil
	}
	// Rate limits count new messages only: a platform's retry of one
	// already answered gets its answer again above, whatever the limits.
	if err := e.rateLimit(ctx, bot, ev); err != nil {
		if rerr := e.sessions.Release(ctx, st); rerr != nil {
			e.log.WarnContext(ctx, "release conversation after a rate-limited turn", "bot", bot.Name, "err", rerr)
		}
		return nil, err
	}
	if hold != nil {
		held, first, err := hold.Result(ctx)
		if err != nil {
			if rerr := e.sessions.Release(ctx, st); rerr != nil {
				e.log.WarnContext(ctx, "release conversation after a failed handoff check", "bot", bot.Name, "err", rerr)
			}
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if held {
			return e.held(ctx, bot, ev, st, first, messageID != "")
		}
	}

	routeStart := time.Now()
	resolveChoice(ev, st.State.Choices)
	d := intents.Route(ev, intents.RouteInput{
		Expect:     st.State.Expect,
		Has:        bot.Has,
		Classifier: bot.Classifier,
		Threshold:  bot.Threshold(),
	})
	if d.Source == msg.SourceClassifier || d.Source == msg.SourceFallback {
		addSlots(ev, bot)
	}
	t := &Turn{TurnResult: msg.TurnResult{Event: ev, Conversation: ev.Conversation, Decision: d},
		NewConversation: st.New(), RoutingTime: time.Since(routeStart)}
	var inv msg.Invocation // the handler's invocation, recorded once the turn is settled
	next := st.State
	next.Expect = ""
	next.Choices = nil
	next.Turns++

	if d.Source == msg.SourceBuiltin {
		t.Outcome = msg.OutcomeFallback
		t.Replies = []msg.Reply{{Text: bot.Settings.FallbackText()}}
		// A greeting or goodbye the bot does not handle itself.
		if text, end, ok := intents.BuiltinAnswer(ev.Intent); ok {
			t.Outcome = msg.OutcomeHandled
			t.Replies = []msg.Reply{{Text: text}}
			t.EndConversation = end
		}
	} else {
		// The conversation stays on the version it began the intent with
		// while the bot still serves it (see bots.Handler.Select).
		h := bot.Handlers[d.Intent].Select(d.Intent, ev.Conversation, st.State.Versions[d.Intent])
		t.Version = h.Version
		call := sandbox.Call{
			Key:             sandbox.PoolKey{Bot: bot.Name, Intent: d.Intent, Version: h.Version},
			Program:         h.Program,
			Event:           ev,
			Route:           d,
			Session:         st.State.Data,
			Timeout:         timeout,
			MaxSessionBytes: bot.Settings.SessionBytes(),
			MaxReplyBytes:   bot.Settings.ReplyBytes(),
			MaxHTTPCalls:    bot.Settings.HTTPCalls(),
			HTTPAllow:       bot.Settings.HTTPAllow,
			LLM:             llmSettings(bot.Settings),
			MinVMs:          bot.Settings.MinVMs,
			MaxVMs:          bot.Settings.MaxVMs,
		}
		slots := e.limits.get(bot.Name, bot.Settings.ConcurrentTurns())
		if !slots.acquire(ctx, e.busyWait(timeout)) {
			if rerr := e.sessions.Release(ctx, st); rerr != nil {
				e.log.Warn("release conversation after a rejected turn", "bot", bot.Name, "err", rerr)
			}
			e.record(ctx, msg.Invocation{Bot: bot.Name, Intent: d.Intent, Version: h.Version,
				Channel: ev.Channel, Conversation: ev.Conversation, Start: time.Now(), Outcome: msg.CallRejected,
				Error: "too many turns running (max_concurrent_turns)"})
			return nil, &BusyError{Bot: bot.Name, Reply: bot.Settings.BusyText(), RetryAfter: time.Second,
				Limit: LimitConcurrency}
		}
		hctx, hspan := tracing.StartNamed(ctx, "handler ", d.Intent)
		if hspan.IsRecording() {
			hspan.SetAttributes(attribute.String(tracing.AttrIntent, d.Intent), attribute.Int(tracing.AttrVersion, h.Version))
		}
		res, err := e.runtime.Run(hctx, call)
		if err != nil {
			hspan.SetStatus(codes.Error, string(sandbox.OutcomeOf(err)))
		}
		hspan.End()
		slots.release()
		inv = sandbox.NewInvocation(&call, res, err)
		t.Logs, t.HandlerTime = res.Logs, res.Duration
		t.LLMInputTokens, t.LLMOutputTokens = res.LLMInputTokens, res.LLMOutputTokens
		if err != nil {
			// A failed turn changes nothing: release the conversation as it was.
			if rerr := e.sessions.Release(ctx, st); rerr != nil {
				e.log.WarnContext(ctx, "release conversation after failed turn", "bot", bot.Name, "err", rerr)
			}
			e.record(ctx, inv)
			return e.failed(ctx, t, bot, err), nil
		}
		t.Outcome = msg.OutcomeHandled
		if d.Source == msg.SourceFallback {
			t.Outcome = msg.OutcomeFallback
		}
		t.Replies = []msg.Reply{res.Reply}
		t.EndConversation = res.Reply.EndConversation
		next.Data = res.Session
		next.Expect = res.Reply.Expect
		next.Versions = pin(st.State.Versions, bot, d.Intent, h.Version)
	}

	next.Choices = msg.Choices(t.Replies)
	if h := handoffOf(t.Replies); h != nil && e.handoffs != nil && t.Err == nil {
		// Handed over before the commit frees the conversation, so that
		// its next message already finds a person owning it.
		if err := e.handoffs.Start(ctx, bot, ev, d.Intent, *h); err != nil {
			if rerr := e.sessions.Release(ctx, st); rerr != nil {
				e.log.WarnContext(ctx, "release conversation after a failed handoff", "bot", bot.Name, "err", rerr)
			}
			e.record(ctx, inv)
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		t.HandedOff = true
	}
	var answer []byte // remembered for a retry of the message, when one can come
	if messageID != "" {
		if answer, err = json.Marshal(t); err != nil {
			if rerr := e.sessions.Release(ctx, st); rerr != nil {
				e.log.WarnContext(ctx, "release conversation after an unencodable answer", "bot", bot.Name, "err", rerr)
			}
			e.record(ctx, inv)
			return nil, fmt.Errorf("encode answer: %w", err)
		}
	}
	var answerTTL time.Duration // the store's default
	if sensitive(t) {
		answerTTL = SensitiveAnswerTTL
	}
	err = e.sessions.Commit(ctx, st, sessions.Commit{
		State:         next,
		End:           t.EndConversation,
		TTL:           bot.Settings.SessionTTL(),
		HistoryLength: bot.Settings.HistoryLength,
		History:       historyEntry(t),
		Answer:        answer,
		AnswerTTL:     answerTTL,
	})
	if errors.Is(err, ErrErased) {
		// Erased while the handler ran: keep the usage, not whose it was.
		e.record(ctx, anonymous(inv))
		return nil, err
	}
	e.record(ctx, inv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return t, nil
}

// handoffOf is the handoff a turn's replies ask for, or nil.
func handoffOf(replies []msg.Reply) *msg.Handoff {
	for i := range replies {
		if replies[i].Handoff != nil {
			return replies[i].Handoff
		}
	}
	return nil
}

// held finishes the turn of a user's message in a conversation a person
// owns: no routing, no handler, the session as it was (one more turn),
// and as the reply the bot's handoff_notice for the first message since
// the handoff, nothing for the others. The answer is remembered for a
// retry when one can come (remember).
func (e *Engine) held(ctx context.Context, bot *bots.Bot, ev *msg.Event, st *sessions.Turn, first, remember bool) (*Turn, error) {
	t := &Turn{TurnResult: msg.TurnResult{Event: ev, Conversation: ev.Conversation, Outcome: msg.OutcomeHuman,
		Replies: []msg.Reply{}}, NewConversation: st.New()}
	if first && bot.Settings.HandoffNotice != "" {
		t.Replies = []msg.Reply{{Text: bot.Settings.HandoffNotice}}
	}
	next := st.State
	next.Turns++
	var answer []byte // remembered for a retry of the message, when one can come
	if remember {
		var err error
		if answer, err = json.Marshal(t); err != nil {
			if rerr := e.sessions.Release(ctx, st); rerr != nil {
				e.log.WarnContext(ctx, "release conversation after an unencodable answer", "bot", bot.Name, "err", rerr)
			}
			return nil, fmt.Errorf("encode answer: %w", err)
		}
	}
	err := e.sessions.Commit(ctx, st, sessions.Commit{
		State:         next,
		TTL:           bot.Settings.SessionTTL(),
		HistoryLength: bot.Settings.HistoryLength,
		History:       historyEntry(t),
		Answer:        answer,
	})
	if errors.Is(err, ErrErased) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return t, nil
}

// llmSettings are the bot's settings of the llm module.
func llmSettings(s bots.Settings) sandbox.LLMSettings {
	return sandbox.LLMSettings{BaseURL: s.LLMBaseURL, APIKeySecret: s.LLMAPIKeySecret, Model: s.LLMModel,
		TokensPerDay: s.LLMTokensPerDay}
}

// anonymous is an invocation without what could identify its user: the
// conversation, the handler's log lines and its error.
func anonymous(inv msg.Invocation) msg.Invocation {
	inv.Channel, inv.Conversation, inv.Logs, inv.Error = "", "", nil, ""
	return inv
}

// sensitive reports whether a handler marked one of the turn's replies sensitive.
func sensitive(t *Turn) bool {
	for _, r := range t.Replies {
		if r.Sensitive {
			return true
		}
	}
	return false
}

// pin returns the conversation's pinned versions with intent pinned to
// version, saved with the turn's commit. Pins of intents the bot no longer
// has are dropped.
func pin(pins map[string]int, bot *bots.Bot, intent string, version int) map[string]int {
	if pins[intent] == version && len(pins) == 1 {
		return pins
	}
	out := make(map[string]int, len(pins)+1)
	for name, v := range pins {
		if bot.Has(name) {
			out[name] = v
		}
	}
	out[intent] = version
	return out
}

// record reports an invocation to the recorder, if there is one and a
// handler ran.
func (e *Engine) record(ctx context.Context, inv msg.Invocation) {
	if e.invocations != nil && inv.Bot != "" {
		e.invocations.Record(ctx, inv)
	}
}

func (e *Engine) failed(ctx context.Context, t *Turn, bot *bots.Bot, err error) *Turn {
	t.Err = err
	t.Outcome = msg.OutcomeError
	var se *sandbox.ScriptError
	if errors.As(err, &se) && se.Kind == sandbox.KindTimeout {
		t.Outcome = msg.OutcomeTimeout
	}
	t.Replies = []msg.Reply{{Text: bot.Settings.ErrorText()}}
	e.log.WarnContext(ctx, "handler failed", "bot", bot.Name, "intent", t.Decision.Intent, "version", t.Version,
		"conversation", t.Conversation, "outcome", t.Outcome, "err", err)
	return t
}

// Minimum handler time and the share of a caller's deadline kept for
// committing and rendering the answer.
const (
	minHandlerTime = 10 * time.Millisecond
	renderMargin   = 250 * time.Millisecond
)

// clip bounds the handler timeout by the caller's deadline (a voice platform
// waiting for the answer), keeping a margin to commit and render.
func clip(ctx context.Context, timeout time.Duration) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return timeout
	}
	left := time.Until(deadline) - renderMargin
	if left < minHandlerTime {
		left = minHandlerTime
	}
	return min(timeout, left)
}

// resolveChoice sets the postback of an event that names a button of the
// previous turn by number or reference (ev.Choice), from the payloads the
// session kept. A choice that names none leaves the event as it is: a
// typed "2" is then just text.
func resolveChoice(ev *msg.Event, choices []string) {
	if ev.Postback != "" || ev.Choice == "" {
		return
	}
	if p, ok := msg.ResolveChoice(choices, ev.Choice); ok {
		ev.Postback = p
	}
}

// addSlots puts the slot values the bot's model finds in the routed text
// (a button's payload, or what the user said) into ev.Slots, keeping those
// the platform already gave.
func addSlots(ev *msg.Event, bot *bots.Bot) {
	text := intents.RoutedText(ev)
	if bot.Model == nil || text == "" {
		return
	}
	for name, v := range bot.Model.SlotsAt(text, ev.Timestamp) {
		if _, given := ev.Slots[name]; given {
			continue
		}
		if ev.Slots == nil {
			ev.Slots = make(map[string]string)
		}
		ev.Slots[name] = v
	}
}

// historyEntry is the turn as the session's recent history keeps it: without
// its texts when the handler marked the turn sensitive.
func historyEntry(t *Turn) *sessions.HistoryEntry {
	h := &sessions.HistoryEntry{Time: t.Event.Timestamp, Text: t.Event.Text, Intent: t.Decision.Intent,
		Reply: firstText(t.Replies), Outcome: string(t.Outcome)}
	if sensitive(t) {
		h.Text, h.Reply = "", ""
	}
	return h
}

func firstText(replies []msg.Reply) string {
	if len(replies) == 0 {
		return ""
	}
	return replies[0].Text
}

// Conversation is a conversation's stored state and recent history.
type Conversation struct {
	Bot          string                  `json:"bot"`
	Channel      string                  `json:"channel"`
	Conversation string                  `json:"conversation"`
	Active       bool                    `json:"active"`
	State        sessions.State          `json:"state"`
	History      []sessions.HistoryEntry `json:"history"`
}

// Describe returns a conversation's state and history, for the management API.
func (e *Engine) Describe(ctx context.Context, bot string, conv msg.ConversationKey) (any, error) {
	st, ok, err := e.sessions.Get(ctx, bot, conv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	hist, err := e.sessions.History(ctx, bot, conv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	channel, id, _ := conv.Split()
	return &Conversation{Bot: bot, Channel: channel, Conversation: id, Active: ok, State: st, History: hist}, nil
}

// traceTurn records how a turn ended on its span.
func traceTurn(span trace.Span, t *Turn, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "turn not processed")
		return
	}
	span.SetAttributes(attribute.String(tracing.AttrIntent, t.Decision.Intent), attribute.String(tracing.AttrOutcome, string(t.Outcome)),
		attribute.Bool("parley.duplicate", t.Duplicate))
	if t.Outcome == msg.OutcomeError || t.Outcome == msg.OutcomeTimeout {
		span.SetStatus(codes.Error, string(t.Outcome))
	}
}
