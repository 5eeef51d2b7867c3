package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/queue"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

type runnerFunc func(ctx context.Context, ev *msg.Event) (*msg.TurnResult, error)

func (f runnerFunc) Run(ctx context.Context, ev *msg.Event) (*msg.TurnResult, error) {
	return f(ctx, ev)
}

type countingSender struct{ sent atomic.Int64 }

func (s *countingSender) Send(context.Context, channels.Settings, *msg.TurnResult) error {
	s.sent.Add(1)
	return nil
}

// TestQueuedTurnWaitsOutAStoreOutage: a queued turn that fails because
// Redis is unreachable (the engine's ErrUnavailable, as while a Redis
// primary restarts) more often than the queue's tries is answered once the
// store is back instead of going to the dead letters.
func TestQueuedTurnWaitsOutAStoreOutage(t *testing.T) {
	var runs atomic.Int64
	runner := runnerFunc(func(_ context.Context, ev *msg.Event) (*msg.TurnResult, error) {
		if runs.Add(1) <= 6 {
			return nil, queueError(fmt.Errorf("%w: %w", engine.ErrUnavailable, errors.New("begin turn: connection refused")))
		}
		return &msg.TurnResult{Event: ev, Replies: []msg.Reply{{Text: "hi"}}}, nil
	})
	s := &countingSender{}
	q := queue.New(testredis.Embedded(t), queue.Config{KeyPrefix: testredis.Prefix(t), Partitions: 1,
		MaxAttempts: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		Runner:   runner,
		Sender:   func(string) (channels.Sender, bool) { return s, true },
		Settings: func(context.Context, string, string) (channels.Settings, error) { return channels.Settings{}, nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	if _, err := q.Enqueue(ctx, &msg.Event{ID: "u1", Bot: "b", Channel: "telegram", Conversation: "c"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.sent.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if dl, _ := q.DeadLetters(ctx, "b", 10); len(dl) > 0 {
			t.Fatalf("the event went to the dead letters after %d runs: %+v", runs.Load(), dl[0])
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reply after %d runs", runs.Load())
		}
	}
}
