package engine

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/msg"
)

// ErrBusy is matched (errors.Is) by the *BusyError that Run returns when a
// bot already runs as many handler calls as its max_concurrent_turns allows
// and none finished within the short wait, or when the turn is over the
// bot's rate_limit_per_bot or rate_limit_per_user. Nothing was written; the
// client may retry after RetryAfter.
var ErrBusy = errors.New("bot is busy")

// The limits a [BusyError] names.
const (
	LimitConcurrency = "max_concurrent_turns"
	LimitPerBot      = "rate_limit_per_bot"
	LimitPerUser     = "rate_limit_per_user"
)

// BusyError is a turn rejected because its bot is at its concurrency limit
// or over one of its rate limits.
type BusyError struct {
	// Bot is the bot that is busy.
	Bot string
	// Reply is the bot's busy_reply, for channels that answer with text.
	Reply string
	// RetryAfter suggests when to try again; for a rate limit it is when
	// the turn would be allowed.
	RetryAfter time.Duration
	// Limit is the setting that refused the turn: LimitConcurrency,
	// LimitPerBot or LimitPerUser.
	Limit string
}

func (e *BusyError) Error() string {
	switch e.Limit {
	case LimitPerBot:
		return "bot " + e.Bot + " is over its rate limit (rate_limit_per_bot)"
	case LimitPerUser:
		return "bot " + e.Bot + ": the conversation is over its rate limit (rate_limit_per_user)"
	}
	return "bot " + e.Bot + " is busy: too many turns running"
}

// RateLimited reports whether the turn was refused by a rate limit rather
// than by the concurrency limit.
func (e *BusyError) RateLimited() bool { return e.Limit == LimitPerBot || e.Limit == LimitPerUser }

// HTTPStatus is 429.
func (e *BusyError) HTTPStatus() int { return http.StatusTooManyRequests }

// ErrorCode is "rate_limited" for a rate limit, else "busy".
func (e *BusyError) ErrorCode() string {
	if e.RateLimited() {
		return "rate_limited"
	}
	return "busy"
}

// PublicMessage is the bot's busy reply, for clients that show it.
func (e *BusyError) PublicMessage() string { return e.Reply }

// RetryDelay is RetryAfter.
func (e *BusyError) RetryDelay() time.Duration { return e.RetryAfter }

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// InvocationRecorder receives the metering record of every handler call,
// rejected ones included. It must not block.
type InvocationRecorder interface {
	Record(ctx context.Context, inv msg.Invocation)
}

// DefaultBusyWait is how long a turn waits at most for its bot's
// concurrency limit to free up, when Config.BusyWait is zero. The wait is
// also at most half the handler's timeout.
const DefaultBusyWait = 2 * time.Second

// botLimits holds the concurrency limit of each bot.
type botLimits struct {
	mu sync.Mutex
	m  map[string]*slots
}

// slots is one bot's limit: a token per running handler call, and at most
// as many waiters as tokens, so the queue is bounded too.
type slots struct {
	capacity int
	tokens   chan struct{}
	waiting  atomic.Int64
}

// get returns bot's slots for capacity; a changed setting starts a new set
// (calls holding the old one release into it).
func (l *botLimits) get(bot string, capacity int) *slots {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*slots)
	}
	s := l.m[bot]
	if s == nil || s.capacity != capacity {
		s = &slots{capacity: capacity, tokens: make(chan struct{}, capacity)}
		l.m[bot] = s
	}
	return s
}

// acquire takes a token, waiting up to wait while fewer than capacity
// others wait. It reports whether it got one.
func (s *slots) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case s.tokens <- struct{}{}:
		return true
	default:
	}
	if s.waiting.Add(1) > int64(s.capacity) {
		s.waiting.Add(-1)
		return false
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.tokens <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (s *slots) release() { <-s.tokens }

// busyWait is how long a turn with the given handler timeout waits for a slot.
func (e *Engine) busyWait(timeout time.Duration) time.Duration {
	return max(min(e.maxBusyWait, timeout/2), 10*time.Millisecond)
}

// rateLimit checks the turn against the bot's rate limits. Run calls it
// once the conversation is taken and the message is known to be new (a
// platform's retry of an answered message gets its answer from memory and
// is not counted), and releases the conversation when the turn is refused.
func (e *Engine) rateLimit(ctx context.Context, bot *bots.Bot, ev *msg.Event) error {
	if e.limiter == nil {
		return nil
	}
	d := e.limiter.Allow(ctx, bot.Name, string(ev.Key()), bot.Settings.RateLimits())
	if d.Allowed {
		return nil
	}
	limit := LimitPerBot
	if d.Scope == ratelimit.ScopeConversation {
		limit = LimitPerUser
	}
	return &BusyError{Bot: bot.Name, Reply: bot.Settings.BusyText(), RetryAfter: d.RetryAfter, Limit: limit}
}
