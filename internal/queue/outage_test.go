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

// TestUnavailableStoreIsWaitedOut: a turn that fails because the store is
// down (a Redis primary restarting) more often than MaxAttempts is retried
// until the store is back, answered once, and never dead-lettered; the
// next event of the conversation follows it in order.
func TestUnavailableStoreIsWaitedOut(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		var failures atomic.Int64
		r.fail = func(*msg.Event) error {
			if failures.Add(1) <= 8 { // more than MaxAttempts (3)
				return Unavailable(errors.New("begin turn: dial tcp: connection refused"))
			}
			return nil
		}
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		ctx := context.Background()
		enqueue(t, q, event("E1", "C1", "one"))
		enqueue(t, q, event("E2", "C1", "two"))
		eventually(t, "both replies", func() bool { return len(s.sentIDs()) == 2 })
		if got := s.sentIDs(); !slices.Equal(got, []string{"E1", "E2"}) {
			t.Fatalf("sent %v, want E1 then E2", got)
		}
		if dl, _ := q.DeadLetters(ctx, "b1", 10); len(dl) != 0 {
			t.Fatalf("dead letters %+v", dl)
		}
	})
}

// TestUnavailableBoundedByMaxDelay: a store down for longer than MaxDelay
// counts as tries again, and the event goes to the dead letters.
func TestUnavailableBoundedByMaxDelay(t *testing.T) {
	rdb := testredis.Embedded(t)
	r, s := newRunner(), &fakeSender{}
	r.fail = func(*msg.Event) error { return Unavailable(errors.New("connection refused")) }
	q := testQueue(t, rdb, testredis.Prefix(t), r, s)
	q.cfg.MaxDelay = 50 * time.Millisecond
	run(t, q)
	enqueue(t, q, event("E1", "C1", "hi"))
	wantTurnDeadLetter(t, q)
}

// TestGivenBackPartitionIsNotSentTwice: a replica that gives a partition
// back to a replica that joined (the fair share shrank) while the
// partition's entry is being sent keeps the lease until the send is done,
// so the newcomer does not claim the entry and send its reply again.
func TestGivenBackPartitionIsNotSentTwice(t *testing.T) {
	rdb := testredis.Client(t)
	prefix := testredis.Prefix(t)
	r := newRunner()
	release := make(chan struct{})
	var blocked atomic.Int64
	s1 := &fakeSender{fail: func(int, *msg.TurnResult) error {
		blocked.Add(1)
		<-release // a slow platform: the send outlasts several leases
		return nil
	}}
	s2 := &fakeSender{}
	q1 := testQueue(t, rdb, prefix, r, s1)
	q1.cfg.Partitions, q1.cfg.DrainTimeout = 2, time.Minute
	q2 := testQueue(t, rdb, prefix, r, s2)
	q2.cfg.Partitions = 2
	ctx := context.Background()
	// One conversation on each partition, so that whichever q1 gives back
	// has an entry in flight.
	var evs []*msg.Event
	for i := 0; len(evs) < 2; i++ {
		conv := fmt.Sprint("C", i)
		if q1.Partition("b1", msg.ConversationKey("slack:"+conv)) == len(evs) {
			evs = append(evs, event(fmt.Sprint("E", len(evs)), conv, "hi"))
		}
	}
	run(t, q1)
	eventually(t, "q1 owning both partitions", func() bool {
		return rdb.Get(ctx, q1.leaseKey(0)).Val() == q1.cfg.ID && rdb.Get(ctx, q1.leaseKey(1)).Val() == q1.cfg.ID
	})
	for _, ev := range evs {
		enqueue(t, q1, ev)
	}
	eventually(t, "both sends under way", func() bool { return blocked.Load() == 2 })
	run(t, q2)
	// q1 gives one partition back within a tick; wait several leases.
	time.Sleep(10 * q1.cfg.Lease)
	close(release)
	eventually(t, "both replies", func() bool { return len(s1.sentIDs())+len(s2.sentIDs()) >= 2 })
	eventually(t, "q2 owning a partition", func() bool {
		return rdb.Get(ctx, q1.leaseKey(0)).Val() == q2.cfg.ID || rdb.Get(ctx, q1.leaseKey(1)).Val() == q2.cfg.ID
	})
	time.Sleep(5 * q1.cfg.Lease) // room for a second send, were there one
	sent := append(s1.sentIDs(), s2.sentIDs()...)
	slices.Sort(sent)
	if !slices.Equal(sent, []string{"E0", "E1"}) {
		t.Fatalf("sent %v (q1 %v, q2 %v), want each reply once", sent, s1.sentIDs(), s2.sentIDs())
	}
}

// TestSentReplyRecordedAfterABlip: Redis is cut off for a moment right
// after the platform accepted a reply, before it is recorded as sent. The
// replica records it once Redis answers again instead of leaving the
// entry pending without its marker, where its own next claim sent the
// reply a second time.
func TestSentReplyRecordedAfterABlip(t *testing.T) {
	rdb := testredis.Client(t)
	cut := &cutOff{}
	rdb.AddHook(cut)
	r := newRunner()
	var once atomic.Bool
	s := &fakeSender{fail: func(_ int, res *msg.TurnResult) error {
		if once.CompareAndSwap(false, true) {
			cut.dead.Store(true) // the platform has the reply; Redis goes away
			time.AfterFunc(300*time.Millisecond, func() { cut.dead.Store(false) })
		}
		return nil
	}}
	q := testQueue(t, rdb, testredis.Prefix(t), r, s)
	q.cfg.Lease = 10 * time.Second // the blip is well within the lease
	run(t, q)
	enqueue(t, q, event("E1", "C1", "hi"))
	enqueue(t, q, event("E2", "C1", "again"))
	eventually(t, "both replies", func() bool { return len(s.sentIDs()) >= 2 })
	time.Sleep(500 * time.Millisecond) // room for a second send, were there one
	if got := s.sentIDs(); !slices.Equal(got, []string{"E1", "E2"}) {
		t.Fatalf("sent %v, want E1 then E2, each once", got)
	}
}

// TestLostGroupIsCreatedAgain: a partition whose consumer group is gone
// (its creation failed when the partition started, or Redis lost it while
// the lease stayed) creates it again instead of failing every read until
// the lease moves.
func TestLostGroupIsCreatedAgain(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		r, s := newRunner(), &fakeSender{}
		q := testQueue(t, rdb, prefix, r, s)
		run(t, q)
		ownsAll(t, rdb, q)
		for p := range q.cfg.Partitions {
			// The partition creates its group once it runs, after its lease.
			eventually(t, fmt.Sprint("the group of partition ", p, " destroyed"), func() bool {
				return rdb.XGroupDestroy(ctx, q.streamKey(p), group).Val() == 1
			})
		}
		for i := range 8 {
			enqueue(t, q, event(fmt.Sprint("E", i), fmt.Sprint("C", i), "x"))
		}
		eventually(t, "every send", func() bool { return len(s.sentIDs()) == 8 })
	})
}
