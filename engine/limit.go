package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/sandbox"
)

// ErrBusy is matched (errors.Is) by the *BusyError that Run returns when a
// bot already runs as many handler calls as its max_concurrent_turns allows
// and none finished within the short wait. Nothing was written; the client
// may retry after a moment.
var ErrBusy = errors.New("bot is busy")

// BusyError is a turn rejected because its bot is at its concurrency limit.
type BusyError struct {
	// Bot is the bot that is busy.
	Bot string
	// Reply is the bot's busy_reply, for channels that answer with text.
	Reply string
	// RetryAfter suggests when to try again.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return "bot " + e.Bot + " is busy: too many turns running"
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// InvocationRecorder receives the metering record of every handler call,
// rejected ones included. It must not block.
type InvocationRecorder interface {
	Record(ctx context.Context, inv sandbox.Invocation)
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
