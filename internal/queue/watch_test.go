package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// ownsAll waits until q holds the lease of each of its partitions.
func ownsAll(t *testing.T, rdb redis.UniversalClient, q *Queue) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "every partition owned", func() bool {
		for p := range q.cfg.Partitions {
			if rdb.Get(ctx, q.leaseKey(p)).Val() != q.cfg.ID {
				return false
			}
		}
		return true
	})
}

// TestEventsOfAnotherReplicaArePickedUp: a replica that enqueues while
// another owns the partitions wakes nothing in the owner's process; the
// owner's idle partitions still find every event, whenever it arrives.
func TestEventsOfAnotherReplicaArePickedUp(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		prefix := testredis.Prefix(t)
		r, s := newRunner(), &fakeSender{}
		owner := testQueue(t, rdb, prefix, r, s)
		other := testQueue(t, rdb, prefix, r, s) // never runs: it only enqueues
		run(t, owner)
		ownsAll(t, rdb, owner)
		const n = 20
		for i := range n {
			// Spread over a few poll intervals, so that events arrive
			// while partitions wait, and while they are about to.
			time.Sleep(rand.N(3 * owner.cfg.PollInterval))
			enqueue(t, other, event(fmt.Sprint("E", i), fmt.Sprint("C", i), "x"))
		}
		eventually(t, "every send", func() bool { return len(s.sentIDs()) == n })
	})
}

// commandCounter counts the commands a client sends, pipelined ones
// included, by name, and its round trips (a command or a pipeline), leaving
// out a new connection's handshake.
type commandCounter struct {
	mu    sync.Mutex
	names map[string]int
	trips int
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(cmds)
		return next(ctx, cmds)
	}
}

func (c *commandCounter) add(cmds []redis.Cmder) {
	if len(cmds) == 0 || handshake(cmds[0]) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips++
	if c.names == nil {
		c.names = map[string]int{}
	}
	for _, cmd := range cmds {
		c.names[cmd.Name()]++
	}
}

// reset zeroes the counts.
func (c *commandCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names, c.trips = map[string]int{}, 0
}

// counts returns the reads of streams (XREADGROUP and XAUTOCLAIM) and the
// round trips since the last reset.
func (c *commandCounter) counts() (reads, trips int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names["xreadgroup"] + c.names["xautoclaim"], c.trips
}

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

// TestIdleReplicaCostsOneRoundTripPerPoll: a replica owning 16 idle
// partitions neither reads each of them every PollInterval nor makes a
// round trip per partition; its partitions are watched together.
func TestIdleReplicaCostsOneRoundTripPerPoll(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		const partitions, poll = 16, 20 * time.Millisecond
		s := &fakeSender{}
		q := New(rdb, Config{
			KeyPrefix: testredis.Prefix(t), Partitions: partitions, PollInterval: poll, Lease: 3 * time.Second,
			Runner:   newRunner(),
			Sender:   func(string) (channels.Sender, bool) { return s, true },
			Settings: func(context.Context, string, string) (channels.Settings, error) { return channels.Settings{}, nil },
		})
		counter := &commandCounter{}
		rdb.AddHook(counter)
		run(t, q)
		ownsAll(t, rdb, q)
		time.Sleep(10 * poll) // every partition's first reads are done
		counter.reset()
		start := time.Now()
		time.Sleep(time.Second)
		reads, trips := counter.counts()
		// Polling each partition on its own costs a read, and a round
		// trip, per partition and PollInterval.
		perPartition := partitions * int(time.Since(start)/poll)
		if reads >= perPartition/3 || trips >= perPartition/3 {
			t.Fatalf("idle for %s: %d reads and %d round trips; polling each partition would make about %d",
				time.Since(start).Round(time.Millisecond), reads, trips, perPartition)
		}
		t.Logf("%d reads, %d round trips (polling each partition: about %d)", reads, trips, perPartition)
	})
}

// TestFailingWatcherWakesPartitions: while the watcher's round trips fail,
// the idle partitions are woken to read for themselves, so events
// enqueued by another replica are still processed.
func TestFailingWatcherWakesPartitions(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		prefix := testredis.Prefix(t)
		r, s := newRunner(), &fakeSender{}
		// Every pipeline of the idle partitions' watcher fails.
		hook := &cutOff{pipelines: func(cmds []redis.Cmder) bool { return len(cmds) > 0 && cmds[0].Name() == "xrevrange" }}
		rdb.AddHook(hook)
		owner := testQueue(t, rdb, prefix, r, s)
		other := testQueue(t, rdb, prefix, r, s) // never runs: it only enqueues
		run(t, owner)
		ownsAll(t, rdb, owner)
		eventually(t, "a failed look for new events", func() bool { return hook.failed.Load() > 0 })
		for i := range 5 {
			enqueue(t, other, event(fmt.Sprint("E", i), fmt.Sprint("C", i), "x"))
		}
		eventually(t, "every send", func() bool { return len(s.sentIDs()) == 5 })
	})
}

func TestIDAfter(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"1-0", "", true},
		{"2-0", "1-5", true},
		{"1-5", "2-0", false},
		{"10-0", "9-0", true}, // numbers, not strings
		{"1-10", "1-9", true},
		{"1-9", "1-9", false},
		{"1-8", "1-9", false},
		{"garbled", "1-9", true},
	} {
		if got := idAfter(c.a, c.b); got != c.want {
			t.Errorf("idAfter(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
