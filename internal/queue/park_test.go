package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// slowLimit refuses the turns of one conversation with Later while closed,
// like a slow per-user rate limit; every other conversation is under it.
type slowLimit struct {
	conv     string
	open     atomic.Bool
	refusals atomic.Int64
}

func (l *slowLimit) check(ev *msg.Event) error {
	if ev.Conversation == l.conv && !l.open.Load() {
		l.refusals.Add(1)
		return Later(errors.New("over the per-user rate limit"), 20*time.Millisecond)
	}
	return nil
}

// sentIn lists the ids sent, in order, that start with prefix.
func sentIn(s *fakeSender, prefix string) []string {
	var out []string
	for _, id := range s.sentIDs() {
		if len(id) >= len(prefix) && id[:len(prefix)] == prefix {
			out = append(out, id)
		}
	}
	return out
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// parkedLeft reports how many entries the partition holds parked and how
// many conversations wait in its due set.
func parkedLeft(t *testing.T, q *Queue, rdb redis.UniversalClient, p int) (int64, int64) {
	t.Helper()
	ctx := context.Background()
	n, err := rdb.Get(ctx, q.parkedNKey(p)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	convs, err := rdb.ZCard(ctx, q.dueKey(p)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n, convs
}

// TestLaterDoesNotBlockThePartition: with one partition, a conversation
// over its limit is parked; another conversation's events are answered
// while it waits, and once the limit allows, the parked events are answered
// exactly once, in order.
func TestLaterDoesNotBlockThePartition(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		limit := &slowLimit{conv: "SLOW"}
		r.fail = limit.check
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		q.cfg.Partitions = 1
		run(t, q)
		ctx := context.Background()
		const n = 6
		for i := range n {
			if _, err := q.Enqueue(ctx, event(fmt.Sprint("S", i), "SLOW", fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Enqueue(ctx, event(fmt.Sprint("F", i), "FAST", fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "the other conversation's replies", func() bool { return len(sentIn(s, "F")) == n })
		if got := sentIn(s, "F"); !slices.Equal(got, ids("F", n)) {
			t.Fatalf("other conversation sent %v", got)
		}
		eventually(t, "every slow event parked", func() bool { c, _ := parkedLeft(t, q, rdb, 0); return c == n })
		if got := sentIn(s, "S"); len(got) != 0 || limit.refusals.Load() == 0 {
			t.Fatalf("sent %v while over the limit (%d refusals)", got, limit.refusals.Load())
		}
		// Meanwhile the conversation keeps its place: a new event waits behind.
		enqueue(t, q, event(fmt.Sprint("S", n), "SLOW", fmt.Sprint(n)))
		enqueue(t, q, event("F-late", "FAST", "late"))
		eventually(t, "a late reply of the other conversation", func() bool { return len(sentIn(s, "F")) == n+1 })

		limit.open.Store(true)
		eventually(t, "the parked replies", func() bool { return len(sentIn(s, "S")) == n+1 })
		time.Sleep(50 * time.Millisecond)
		if got := sentIn(s, "S"); !slices.Equal(got, ids("S", n+1)) {
			t.Fatalf("parked events sent %v, want them once, in order", got)
		}
		for _, id := range ids("S", n+1) {
			if c := r.count(id); c != 1 {
				t.Fatalf("%s ran %d times", id, c)
			}
		}
		if c, convs := parkedLeft(t, q, rdb, 0); c != 0 || convs != 0 {
			t.Fatalf("%d entries of %d conversations still parked", c, convs)
		}
		if dl, _ := q.DeadLetters(ctx, "b1", 10); len(dl) != 0 {
			t.Fatalf("dead letters %+v", dl)
		}
	})
}

// TestParkedSurviveAKilledReplica: a replica parks a conversation's events
// and is cut off Redis and stopped before resuming them; the replica that
// takes the partition over answers each exactly once, in order.
func TestParkedSurviveAKilledReplica(t *testing.T) {
	prefix := testredis.Prefix(t)
	rdb1, rdb2 := testredis.Client(t), testredis.Client(t)
	cut := &cutOff{}
	rdb1.AddHook(cut)
	r, s := newRunner(), &fakeSender{}
	limit := &slowLimit{conv: "SLOW"}
	r.fail = limit.check
	q1 := testQueue(t, rdb1, prefix, r, s)
	q1.cfg.Partitions = 1
	stop1 := run(t, q1)
	ctx := context.Background()
	const n = 5
	for i := range n {
		enqueue(t, q1, event(fmt.Sprint("S", i), "SLOW", fmt.Sprint(i)))
	}
	eventually(t, "every event parked", func() bool { c, _ := parkedLeft(t, q1, rdb2, 0); return c == n })

	// Kill the first replica: it reaches Redis no more and stops.
	cut.dead.Store(true)
	stop1()
	limit.open.Store(true)
	for i := n; i < 2*n; i++ {
		if _, err := q1.Enqueue(ctx, event(fmt.Sprint("S", i), "SLOW", fmt.Sprint(i))); !errors.Is(err, errCut) {
			t.Fatalf("the killed replica enqueued: %v", err)
		}
	}
	if got := s.sentIDs(); len(got) != 0 {
		t.Fatalf("sent %v before the takeover", got)
	}
	q2 := testQueue(t, rdb2, prefix, r, s)
	q2.cfg.Partitions = 1
	for i := n; i < 2*n; i++ {
		enqueue(t, q2, event(fmt.Sprint("S", i), "SLOW", fmt.Sprint(i)))
	}
	run(t, q2)
	eventually(t, "every reply", func() bool { return len(s.sentIDs()) == 2*n })
	time.Sleep(100 * time.Millisecond)
	if got := s.sentIDs(); !slices.Equal(got, ids("S", 2*n)) {
		t.Fatalf("sent %v, want each once, in order", got)
	}
	if c, convs := parkedLeft(t, q2, rdb2, 0); c != 0 || convs != 0 {
		t.Fatalf("%d entries of %d conversations still parked", c, convs)
	}
}

// TestParkedResumedMidSendByAnotherReplica: the replica resuming a parked
// event is killed while its reply is in flight (not accepted by the
// platform); the next owner sends it, and the rest, once and in order.
func TestParkedResumedMidSendByAnotherReplica(t *testing.T) {
	prefix := testredis.Prefix(t)
	rdb1, rdb2 := testredis.Client(t), testredis.Client(t)
	cut := &cutOff{}
	rdb1.AddHook(cut)
	r := newRunner()
	limit := &slowLimit{conv: "SLOW"}
	r.fail = limit.check
	inFlight := make(chan struct{})
	var held atomic.Bool
	held.Store(true)
	s := &fakeSender{}
	s.fail = func(_ int, res *msg.TurnResult) error {
		if held.Load() && res.Event.ID == "S0" {
			held.Store(false)
			close(inFlight)
			// The platform never answers this send: the replica dies first.
			time.Sleep(200 * time.Millisecond)
			return errors.New("connection reset")
		}
		return nil
	}
	q1 := testQueue(t, rdb1, prefix, r, s)
	q1.cfg.Partitions, q1.cfg.DrainTimeout = 1, time.Millisecond
	stop1 := run(t, q1)
	const n = 4
	for i := range n {
		enqueue(t, q1, event(fmt.Sprint("S", i), "SLOW", fmt.Sprint(i)))
	}
	eventually(t, "every event parked", func() bool { c, _ := parkedLeft(t, q1, rdb2, 0); return c == n })
	limit.open.Store(true)
	<-inFlight
	cut.dead.Store(true)
	stop1()

	q2 := testQueue(t, rdb2, prefix, r, s)
	q2.cfg.Partitions = 1
	run(t, q2)
	eventually(t, "every reply", func() bool { return len(s.sentIDs()) == n })
	time.Sleep(100 * time.Millisecond)
	if got := s.sentIDs(); !slices.Equal(got, ids("S", n)) {
		t.Fatalf("sent %v, want each once, in order", got)
	}
	if c, convs := parkedLeft(t, q2, rdb2, 0); c != 0 || convs != 0 {
		t.Fatalf("%d entries of %d conversations still parked", c, convs)
	}
}

// TestParkedCountTowardMaxPending: parked events count toward the
// partition's bound, so a parked conversation cannot grow without limit.
func TestParkedCountTowardMaxPending(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		limit := &slowLimit{conv: "SLOW"}
		r.fail = limit.check
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		q.cfg.Partitions, q.cfg.MaxPending = 1, 3
		run(t, q)
		ctx := context.Background()
		for i := range 3 {
			if _, err := q.Enqueue(ctx, event(fmt.Sprint("S", i), "SLOW", "x")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the event parked", func() bool { c, _ := parkedLeft(t, q, rdb, 0); return c == int64(i+1) })
		}
		if _, err := q.Enqueue(ctx, event("S3", "SLOW", "x")); !errors.Is(err, ErrFull) {
			t.Fatalf("a fourth event with three parked: %v, want ErrFull", err)
		}
		limit.open.Store(true)
		eventually(t, "the parked replies", func() bool { return len(s.sentIDs()) == 3 })
		eventually(t, "room again", func() bool {
			fresh, err := q.Enqueue(ctx, event("S3", "SLOW", "x"))
			return fresh && err == nil
		})
		eventually(t, "the last reply", func() bool { return len(s.sentIDs()) == 4 })
	})
}

// cutOff cuts a client off Redis, as if its process died: every command
// fails while dead is set. When pipelines is set, the pipelines it names
// fail too. failed counts the pipelines failed.
type cutOff struct {
	dead      atomic.Bool
	pipelines func(cmds []redis.Cmder) bool
	failed    atomic.Int64
}

var errCut = errors.New("replica killed")

func (c *cutOff) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cutOff) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.dead.Load() {
			cmd.SetErr(errCut)
			return errCut
		}
		return next(ctx, cmd)
	}
}
func (c *cutOff) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c.dead.Load() || (c.pipelines != nil && c.pipelines(cmds)) {
			c.failed.Add(1)
			for _, cmd := range cmds {
				cmd.SetErr(errCut)
			}
			return errCut
		}
		return next(ctx, cmds)
	}
}

// TestParkedListing lists the parked conversations of two bots while they
// wait, and none once they have run.
func TestParkedListing(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		limit := &slowLimit{conv: "SLOW"}
		r.fail = limit.check
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		ctx := context.Background()
		other := func(id string) *msg.Event {
			ev := event(id, "SLOW", id)
			ev.Bot = "b10" // its members start with the other bot's name
			return ev
		}
		for _, ev := range []*msg.Event{event("S0", "SLOW", "first"), event("S1", "SLOW", "x"), other("T0"),
			event("S2", "SLOW", "x"), other("T1"), event("F0", "FAST", "x")} {
			if _, err := q.Enqueue(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "five events parked", func() bool {
			b1, err1 := q.Parked(ctx, "b1", 10)
			b10, err2 := q.Parked(ctx, "b10", 10)
			return err1 == nil && err2 == nil && len(b1) == 1 && b1[0].Entries == 3 && len(b10) == 1 && b10[0].Entries == 2
		})
		b1, err := q.Parked(ctx, "b1", 10)
		if err != nil {
			t.Fatal(err)
		}
		c := b1[0]
		if c.Channel != "slack" || c.Conversation != "SLOW" || c.Partition != q.Partition("b1", "slack:SLOW") || c.Event == nil || c.Event.ID != "S0" ||
			c.Event.Text != "first" || c.Due.IsZero() || c.DelayedMS <= 0 {
			t.Errorf("b1's parked conversation %+v", c)
		}
		if got, err := q.Parked(ctx, "b1", 0); err != nil || len(got) != 0 {
			t.Errorf("limit 0: %v, %v", got, err)
		}
		if got, err := q.Parked(ctx, "b2", 10); err != nil || len(got) != 0 {
			t.Errorf("a bot with nothing parked: %v, %v", got, err)
		}
		limit.open.Store(true)
		eventually(t, "nothing parked", func() bool {
			b1, err1 := q.Parked(ctx, "b1", 10)
			b10, err2 := q.Parked(ctx, "b10", 10)
			return err1 == nil && err2 == nil && len(b1) == 0 && len(b10) == 0
		})
		eventually(t, "every reply", func() bool { return len(s.sentIDs()) == 6 })
	})
}

// TestUnreadableParkedEntryDropped: a parked entry that does not decode is
// dropped with a log line, and the conversation's next entry is answered.
func TestUnreadableParkedEntryDropped(t *testing.T) {
	rdb := testredis.Embedded(t)
	r, s := newRunner(), &fakeSender{}
	limit := &slowLimit{conv: "SLOW"}
	r.fail = limit.check
	prefix := testredis.Prefix(t)
	q1 := testQueue(t, rdb, prefix, r, s)
	q1.cfg.Partitions = 1
	stop1 := run(t, q1)
	for i := range 2 {
		enqueue(t, q1, event(fmt.Sprint("S", i), "SLOW", fmt.Sprint(i)))
	}
	eventually(t, "both events parked", func() bool { c, _ := parkedLeft(t, q1, rdb, 0); return c == 2 })
	stop1()
	ctx := context.Background()
	members, err := rdb.ZRange(ctx, q1.dueKey(0), 0, -1).Result()
	if err != nil || len(members) != 1 {
		t.Fatalf("parked conversations %v, %v", members, err)
	}
	if err := rdb.LSet(ctx, q1.parkedKey(0, members[0]), 0, "{not json").Err(); err != nil {
		t.Fatal(err)
	}

	limit.open.Store(true)
	q2 := testQueue(t, rdb, prefix, r, s)
	q2.cfg.Partitions = 1
	run(t, q2)
	eventually(t, "the readable entry answered", func() bool { return len(s.sentIDs()) == 1 })
	eventually(t, "nothing left parked", func() bool { c, convs := parkedLeft(t, q2, rdb, 0); return c == 0 && convs == 0 })
	if got := s.sentIDs(); !slices.Equal(got, []string{"S1"}) {
		t.Fatalf("sent %v, want only S1", got)
	}
}
