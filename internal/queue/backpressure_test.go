package queue

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// TestLaterIsNotATry: a turn refused with Later more often than MaxAttempts
// is retried after each delay, answered once, and never dead-lettered.
func TestLaterIsNotATry(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		var refusals atomic.Int64
		r.fail = func(*msg.Event) error {
			if refusals.Add(1) <= 5 { // more than MaxAttempts (3)
				return Later(errors.New("over the rate limit"), time.Millisecond)
			}
			return nil
		}
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		ctx := context.Background()
		if _, err := q.Enqueue(ctx, event("E1", "C1", "hi")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the reply", func() bool { return len(s.sentIDs()) == 1 })
		if n := r.count("E1"); n != 1 || refusals.Load() != 6 {
			t.Fatalf("runs %d, refusals %d", n, refusals.Load())
		}
		if dl, _ := q.DeadLetters(ctx, "b1", 10); len(dl) != 0 {
			t.Fatalf("dead letters %+v", dl)
		}
	})
}

// TestLaterBoundedByMaxDelay: an event refused for longer than MaxDelay in
// all is tried MaxAttempts times as usual, then dead-lettered.
func TestLaterBoundedByMaxDelay(t *testing.T) {
	rdb := testredis.Embedded(t)
	r, s := newRunner(), &fakeSender{}
	r.fail = func(*msg.Event) error { return Later(errors.New("over the rate limit"), time.Hour) }
	q := testQueue(t, rdb, testredis.Prefix(t), r, s)
	run(t, q)
	enqueue(t, q, event("E1", "C1", "hi"))
	wantTurnDeadLetter(t, q)
}

// TestEnqueueFull: a partition holding MaxPending events refuses more with
// ErrFull, without marking the delivery seen, so the platform's retry gets
// in once there is room.
func TestEnqueueFull(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		q := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Partitions: 1, MaxPending: 2})
		ctx := context.Background()
		for _, id := range []string{"E1", "E2"} {
			if fresh, err := q.Enqueue(ctx, event(id, "C1", "hi")); !fresh || err != nil {
				t.Fatalf("%s: %v, %v", id, fresh, err)
			}
		}
		if _, err := q.Enqueue(ctx, event("E3", "C1", "hi")); !errors.Is(err, ErrFull) {
			t.Fatalf("third event: %v, want ErrFull", err)
		}
		if fresh, err := q.Enqueue(ctx, event("E1", "C1", "hi")); fresh || err != nil {
			t.Fatalf("a duplicate delivery to a full partition: %v, %v; want acknowledged", fresh, err)
		}
		if err := rdb.XTrimMaxLen(ctx, q.streamKey(0), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if fresh, err := q.Enqueue(ctx, event("E3", "C1", "hi")); !fresh || err != nil {
			t.Fatalf("E3 once there is room: %v, %v", fresh, err)
		}
	})
}

// TestDeadLetterHookAndStats: a dead-lettered event is reported to
// OnDeadLetter with its bot, and Stats shows what waits in each partition.
func TestDeadLetterHookAndStats(t *testing.T) {
	rdb := testredis.Embedded(t)
	r, s := newRunner(), &fakeSender{}
	r.fail = func(*msg.Event) error { return errors.New("handler broke") }
	q := testQueue(t, rdb, testredis.Prefix(t), r, s)
	var dead atomic.Int64
	q.cfg.OnDeadLetter = func(bot string) {
		if bot == "b1" {
			dead.Add(1)
		}
	}
	ctx := context.Background()
	enqueue(t, q, event("E1", "C1", "hi"))
	stats, err := q.Stats(ctx)
	if err != nil || len(stats) != 4 {
		t.Fatalf("stats %+v, %v", stats, err)
	}
	p := q.Partition("b1", event("E1", "C1", "hi").Key())
	if st := stats[p]; st.Depth != 1 || st.Lag < 0 || st.Lag > time.Hour {
		t.Fatalf("partition %d before the run: %+v", p, st)
	}
	run(t, q)
	eventually(t, "the dead letter", func() bool { return dead.Load() == 1 })
	eventually(t, "an empty partition", func() bool {
		stats, err := q.Stats(ctx)
		return err == nil && stats[p].Depth == 0 && stats[p].Lag == 0
	})
}

// wantTurnDeadLetter waits for bot b1's one dead letter, which must be a
// turn tried MaxAttempts (3) times.
func wantTurnDeadLetter(t *testing.T, q *Queue) {
	t.Helper()
	var dl []DeadLetter
	eventually(t, "the dead letter", func() bool {
		dl, _ = q.DeadLetters(context.Background(), "b1", 10)
		return len(dl) == 1
	})
	if d := dl[0]; d.Stage != "turn" || d.Attempts != 3 {
		t.Fatalf("dead letter %+v", d)
	}
}
