package queue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// fakeRunner answers each event with its text and counts runs per event id,
// remembering answers like the engine does.
type fakeRunner struct {
	mu    sync.Mutex
	runs  map[string]int
	order map[string][]string // conversation -> texts in run order
	fail  func(ev *msg.Event) error
}

func newRunner() *fakeRunner {
	return &fakeRunner{runs: map[string]int{}, order: map[string][]string{}}
}

func (r *fakeRunner) Run(ctx context.Context, ev *msg.Event) (*msg.TurnResult, error) {
	if r.fail != nil {
		if err := r.fail(ev); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[ev.ID]++
	if r.runs[ev.ID] == 1 {
		r.order[ev.Conversation] = append(r.order[ev.Conversation], ev.Text)
	}
	return &msg.TurnResult{Event: ev, Conversation: ev.Conversation,
		Replies: []msg.Reply{{Text: "re: " + ev.Text}}, Duplicate: r.runs[ev.ID] > 1}, nil
}

func (r *fakeRunner) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

// fakeSender records sends; fail decides a failure per attempt.
type fakeSender struct {
	mu    sync.Mutex
	sent  []string
	times []time.Time
	calls int
	fail  func(call int, res *msg.TurnResult) error
}

func (s *fakeSender) Send(ctx context.Context, _ channels.Settings, res *msg.TurnResult) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.times = append(s.times, time.Now())
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		if err := fail(call, res); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.sent = append(s.sent, res.Event.ID)
	s.mu.Unlock()
	return nil
}

func (s *fakeSender) sentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

func testQueue(t *testing.T, rdb redis.UniversalClient, prefix string, r Runner, s channels.Sender) *Queue {
	return New(rdb, Config{
		KeyPrefix: prefix, Partitions: 4, Lease: 300 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		MaxAttempts: 3, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, DrainTimeout: time.Second,
		Runner:   r,
		Sender:   func(string) (channels.Sender, bool) { return s, true },
		Settings: func(context.Context, string, string) (channels.Settings, error) { return channels.Settings{}, nil },
	})
}

// enqueue enqueues ev on q and fails the test if it cannot.
func enqueue(t *testing.T, q *Queue, ev *msg.Event) {
	t.Helper()
	if _, err := q.Enqueue(context.Background(), ev); err != nil {
		t.Fatalf("enqueue %s: %v", ev.ID, err)
	}
}

// run starts q's workers and stops them at cleanup.
func run(t *testing.T, q *Queue) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := q.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
		close(done)
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func event(id, conv, text string) *msg.Event {
	return &msg.Event{ID: id, Bot: "b1", Channel: "slack", User: "u", Conversation: conv, Text: text}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSameDeliveryThreeTimesRunsOnce(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		ctx := context.Background()
		for i := range 3 {
			fresh, err := q.Enqueue(ctx, event("Ev1", "C1", "hello"))
			if err != nil {
				t.Fatal(err)
			}
			if fresh != (i == 0) {
				t.Fatalf("delivery %d: fresh = %v", i+1, fresh)
			}
		}
		run(t, q)
		eventually(t, "the send", func() bool { return len(s.sentIDs()) == 1 })
		time.Sleep(50 * time.Millisecond)
		if n := r.count("Ev1"); n != 1 {
			t.Fatalf("handler ran %d times", n)
		}
		if got := s.sentIDs(); len(got) != 1 {
			t.Fatalf("sent %v", got)
		}
		if fresh, _ := q.Enqueue(ctx, event("Ev1", "C1", "hello")); fresh {
			t.Fatal("a retry after processing was enqueued again")
		}
	})
}

func TestConversationOrderKept(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		const convs, per = 6, 15
		for i := range per {
			for c := range convs {
				conv := fmt.Sprintf("C%d", c)
				if _, err := q.Enqueue(context.Background(), event(fmt.Sprintf("%s-%d", conv, i), conv, fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
		}
		eventually(t, "every send", func() bool { return len(s.sentIDs()) == convs*per })
		r.mu.Lock()
		defer r.mu.Unlock()
		for c, texts := range r.order {
			for i, txt := range texts {
				if txt != fmt.Sprint(i) {
					t.Fatalf("conversation %s ran out of order: %v", c, texts)
				}
			}
		}
	})
}

func TestSendRetryHonoursRetryAfter(t *testing.T) {
	rdb := testredis.Client(t)
	r := newRunner()
	s := &fakeSender{fail: func(call int, _ *msg.TurnResult) error {
		if call == 1 {
			return &channels.SendError{Status: http.StatusTooManyRequests, Retryable: true,
				RetryAfter: 300 * time.Millisecond, Err: errors.New("rate limited")}
		}
		return nil
	}}
	q := testQueue(t, rdb, testredis.Prefix(t), r, s)
	run(t, q)
	enqueue(t, q, event("E1", "C1", "hi"))
	eventually(t, "the send", func() bool { return len(s.sentIDs()) == 1 })
	s.mu.Lock()
	gap := s.times[1].Sub(s.times[0])
	s.mu.Unlock()
	if gap < 300*time.Millisecond {
		t.Fatalf("retried after %s, before the platform's Retry-After", gap)
	}
	if n := r.count("E1"); n != 1 {
		t.Fatalf("a send retry ran the turn %d times", n)
	}
}

func TestDeadLetterAndReplay(t *testing.T) {
	rdb := testredis.Client(t)
	r := newRunner()
	var broken sync.Map
	broken.Store("on", true)
	s := &fakeSender{fail: func(int, *msg.TurnResult) error {
		if _, ok := broken.Load("on"); ok {
			return &channels.SendError{Status: 503, Retryable: true, Err: errors.New("platform down")}
		}
		return nil
	}}
	q := testQueue(t, rdb, testredis.Prefix(t), r, s)
	run(t, q)
	ctx := context.Background()
	enqueue(t, q, event("E1", "C1", "hi"))
	var dl []DeadLetter
	eventually(t, "the dead letter", func() bool {
		dl, _ = q.DeadLetters(ctx, "b1", 10)
		return len(dl) == 1
	})
	if d := dl[0]; d.Stage != "send" || d.Attempts != 3 || d.Event.ID != "E1" || d.Error == "" {
		t.Fatalf("dead letter %+v", d)
	}
	if err := q.Replay(ctx, "b1", "1-1"); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Fatalf("replay of an unknown id: %v", err)
	}
	if err := q.Replay(ctx, "b1", "not-an-id"); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Fatalf("replay of a malformed id: %v", err)
	}
	broken.Delete("on")
	if err := q.Replay(ctx, "b1", dl[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replayed send", func() bool { return len(s.sentIDs()) == 1 })
	if dl, _ = q.DeadLetters(ctx, "b1", 10); len(dl) != 0 {
		t.Fatalf("dead letters after replay: %+v", dl)
	}
	if n := r.count("E1"); n != 2 {
		t.Fatalf("runs = %d, want 2 (the replay's run is answered from memory by a real engine)", n)
	}

	// A turn that cannot run for good goes straight to the dead letters.
	r.fail = func(ev *msg.Event) error {
		if ev.ID == "E2" {
			return Permanent(errors.New("unknown bot"))
		}
		return nil
	}
	enqueue(t, q, event("E2", "C1", "hi"))
	eventually(t, "the turn's dead letter", func() bool {
		dl, _ = q.DeadLetters(ctx, "b1", 10)
		return len(dl) == 1
	})
	if dl[0].Stage != "turn" || dl[0].Attempts != 1 {
		t.Fatalf("dead letter %+v", dl[0])
	}
	if err := q.DeleteDeadLetter(ctx, "b1", dl[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := q.DeleteDeadLetter(ctx, "b1", dl[0].ID); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestTakeOverClaimsPendingEntries: a replica read entries and died before
// acknowledging them; the replica that takes the partition over processes
// them in order, and skips the one whose reply was already sent.
func TestTakeOverClaimsPendingEntries(t *testing.T) {
	rdb := testredis.Client(t)
	prefix := testredis.Prefix(t)
	r, s := newRunner(), &fakeSender{}
	q := testQueue(t, rdb, prefix, r, s)
	ctx := context.Background()
	p := q.Partition("b1", "slack:C1")
	for i := range 3 {
		enqueue(t, q, event(fmt.Sprint("E", i), "C1", fmt.Sprint(i)))
	}
	// The dead replica: holds the lease, read all three, sent the first.
	key := q.streamKey(p)
	if err := rdb.XGroupCreateMkStream(ctx, key, group, "0-0").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead", Streams: []string{key, ">"}, Count: 10, Block: -1}).Result()
	if err != nil || len(got[0].Messages) != 3 {
		t.Fatalf("read: %v %v", got, err)
	}
	rdb.Set(ctx, q.sentKey(p, event("E0", "C1", "")), "1", time.Minute)
	rdb.Set(ctx, q.leaseKey(p), "dead", 200*time.Millisecond)

	run(t, q)
	eventually(t, "the reclaimed sends", func() bool { return len(s.sentIDs()) == 2 })
	if got := s.sentIDs(); got[0] != "E1" || got[1] != "E2" {
		t.Fatalf("sent %v", got)
	}
	eventually(t, "nothing pending", func() bool {
		n, _ := rdb.XPending(ctx, key, group).Result()
		return n != nil && n.Count == 0
	})
}

// TestReplicasShareThePartitions: two replicas split the partitions, and when
// one stops the other takes them all.
func TestReplicasShareThePartitions(t *testing.T) {
	rdb := testredis.Client(t)
	prefix := testredis.Prefix(t)
	r, s := newRunner(), &fakeSender{}
	q1 := testQueue(t, rdb, prefix, r, s)
	q2 := testQueue(t, rdb, prefix, r, s)
	stop1 := run(t, q1)
	run(t, q2)
	ctx := context.Background()
	owners := func() map[string]int {
		m := map[string]int{}
		for p := range 4 {
			m[rdb.Get(ctx, q1.leaseKey(p)).Val()]++
		}
		return m
	}
	eventually(t, "an even split", func() bool { o := owners(); return o[q1.cfg.ID] == 2 && o[q2.cfg.ID] == 2 })
	stop1()
	eventually(t, "the survivor owning all", func() bool { return owners()[q2.cfg.ID] == 4 })
	for i := range 20 {
		enqueue(t, q1, event(fmt.Sprint("E", i), fmt.Sprint("C", i), "x"))
	}
	eventually(t, "every send", func() bool { return len(s.sentIDs()) == 20 })
}

// TestGracefulStopHandsOverAtOnce: a replica that stops gives its leases
// back and leaves the members, so the survivor takes over well within a lease.
func TestGracefulStopHandsOverAtOnce(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		prefix := testredis.Prefix(t)
		r, s := newRunner(), &fakeSender{}
		q1 := testQueue(t, rdb, prefix, r, s)
		q1.cfg.Lease = 5 * time.Second
		stop1 := run(t, q1)
		ctx := context.Background()
		eventually(t, "q1 owning every partition", func() bool {
			for p := range 4 {
				if rdb.Get(ctx, q1.leaseKey(p)).Val() != q1.cfg.ID {
					return false
				}
			}
			return true
		})
		stop1()
		for p := range 4 {
			if n := rdb.Exists(ctx, q1.leaseKey(p)).Val(); n != 0 {
				t.Fatalf("partition %d still leased after a graceful stop", p)
			}
		}
		if n := rdb.ZCard(ctx, q1.membersKey()).Val(); n != 0 {
			t.Fatalf("%d members left", n)
		}
	})
}
