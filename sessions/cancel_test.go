package sessions

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// loseAnswer is a hook that, once armed, lets the next command run in
// Redis and then reports the caller's context as canceled: a client that
// left while its round trip was under way.
type loseAnswer struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func (l *loseAnswer) arm(cancel context.CancelFunc) {
	l.mu.Lock()
	l.cancel = cancel
	l.mu.Unlock()
}

func (l *loseAnswer) fire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel == nil {
		return false
	}
	l.cancel()
	l.cancel = nil
	return true
}

func (l *loseAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *loseAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if l.fire() {
			return context.Canceled
		}
		return err
	}
}
func (l *loseAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if l.fire() {
			return context.Canceled
		}
		return err
	}
}

// TestCallerLeavingFreesTheConversation: a caller that leaves while its
// turn begins, or before it commits, does not leave the conversation
// locked for the lease (10 s): the next turn begins at once.
func TestCallerLeavingFreesTheConversation(t *testing.T) {
	rdb := testredis.Client(t)
	hook := &loseAnswer{}
	rdb.AddHook(hook)
	s := newStore(t, rdb)
	next := func(what string) *Turn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		turn, err := s.Begin(ctx, "bot", "left", Options{})
		if err != nil {
			t.Fatalf("%s: the next turn could not begin within 3 s (the lease is %s): %v", what, DefaultLease, err)
		}
		return turn
	}

	// The begin script ran, and took the lock, but its answer was lost.
	ctx, cancel := context.WithCancel(context.Background())
	hook.arm(cancel)
	if _, err := s.Begin(ctx, "bot", "left", Options{}); err == nil {
		t.Fatal("Begin succeeded although its caller left")
	}
	turn := next("after a lost begin")

	// The caller leaves while the handler runs: the commit still saves.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	turn.State.Data["n"] = 1.0
	if err := s.Commit(ctx, turn, Commit{State: turn.State}); err != nil {
		t.Fatalf("commit after the caller left: %v", err)
	}
	turn = next("after a commit whose caller left")
	if turn.State.Data["n"] != 1.0 {
		t.Errorf("state %v, want the saved n=1", turn.State.Data)
	}
	if err := s.Release(context.Background(), turn); err != nil {
		t.Fatal(err)
	}
}
