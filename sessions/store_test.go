package sessions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

func newStore(t *testing.T, rdb redis.UniversalClient) *Store {
	return New(rdb, Config{KeyPrefix: testredis.Prefix(t)})
}

func TestTurnLifecycle(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)

		turn, err := s.Begin(ctx, "bot", "c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !turn.New() || len(turn.State.Data) != 0 {
			t.Fatalf("first turn state = %+v, want new and empty", turn.State)
		}
		st := turn.State
		st.Data["size"] = "large"
		st.Expect = "AskToppings"
		st.Turns++
		if err := s.Commit(ctx, turn, Commit{State: st, History: &HistoryEntry{Text: "hi", Reply: "size?"}}); err != nil {
			t.Fatal(err)
		}

		turn, err = s.Begin(ctx, "bot", "c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if turn.New() || turn.State.Data["size"] != "large" || turn.State.Expect != "AskToppings" {
			t.Fatalf("second turn state = %+v", turn.State)
		}
		// A failed turn releases without changing anything.
		if err := s.Release(ctx, turn); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, "bot", "c1")
		if err != nil || !ok || got.Turns != 1 || got.Data["size"] != "large" {
			t.Fatalf("after release: %+v %v %v", got, ok, err)
		}

		// Ending the conversation clears the state but keeps history.
		turn, err = s.Begin(ctx, "bot", "c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, turn, Commit{End: true, History: &HistoryEntry{Text: "bye"}}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get(ctx, "bot", "c1"); ok {
			t.Fatal("state survived end of conversation")
		}
		hist, err := s.History(ctx, "bot", "c1")
		if err != nil || len(hist) != 2 || hist[0].Text != "bye" || hist[1].Text != "hi" {
			t.Fatalf("history = %+v, %v", hist, err)
		}
	})
}

func TestHistoryBoundedAndTTLSliding(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		for i := 0; i < 7; i++ {
			turn, err := s.Begin(ctx, "bot", "c", Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Commit(ctx, turn, Commit{State: turn.State, TTL: time.Hour, HistoryLength: 3,
				History: &HistoryEntry{Text: fmt.Sprint(i)}})
			if err != nil {
				t.Fatal(err)
			}
		}
		hist, _ := s.History(ctx, "bot", "c")
		if len(hist) != 3 || hist[0].Text != "6" || hist[2].Text != "4" {
			t.Fatalf("history = %+v, want the 3 newest", hist)
		}
		k := s.keys("bot", "c", "")
		for _, key := range []string{k.state, k.history} {
			ttl := rdb.PTTL(ctx, key).Val()
			if ttl < 59*time.Minute || ttl > time.Hour {
				t.Errorf("%s ttl = %v, want about 1h", key, ttl)
			}
		}
		if n := rdb.Exists(ctx, k.lock).Val(); n != 0 {
			t.Errorf("lock still held after commit")
		}
	})
}

func TestDuplicateMessageAnsweredFromMemory(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		turn, err := s.Begin(ctx, "bot", "c", Options{MessageID: "m-1"})
		if err != nil {
			t.Fatal(err)
		}
		st := turn.State
		st.Turns = 1
		if err := s.Commit(ctx, turn, Commit{State: st, Answer: []byte(`{"text":"hello"}`)}); err != nil {
			t.Fatal(err)
		}
		again, err := s.Begin(ctx, "bot", "c", Options{MessageID: "m-1"})
		if err != nil {
			t.Fatal(err)
		}
		if string(again.Duplicate) != `{"text":"hello"}` {
			t.Fatalf("duplicate = %q, want the remembered answer", again.Duplicate)
		}
		// A different message id is a new turn, and the conversation is not locked.
		other, err := s.Begin(ctx, "bot", "c", Options{MessageID: "m-2"})
		if err != nil || other.Duplicate != nil || other.State.Turns != 1 {
			t.Fatalf("second message: %+v %v", other, err)
		}
		// A retry that arrives while another replica's turn holds the
		// conversation is answered at once, and leaves that turn's lock alone.
		replica := New(rdb, Config{KeyPrefix: s.prefix})
		wait, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		retry, err := replica.Begin(wait, "bot", "c", Options{MessageID: "m-1"})
		if err != nil || string(retry.Duplicate) != `{"text":"hello"}` {
			t.Fatalf("retry while the conversation is held: %+v %v, want the remembered answer at once", retry, err)
		}
		if err := s.Commit(ctx, other, Commit{State: other.State}); err != nil {
			t.Fatalf("the holder's commit after the retry: %v", err)
		}
	})
}

func TestLeaseLostRejectsCommit(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		slow, err := s.Begin(ctx, "bot", "c", Options{Lease: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// Simulate the lease running out while the slow turn works, and a
		// second replica (another Store) taking the conversation.
		rdb.Del(ctx, slow.keys.lock)
		other := New(rdb, Config{KeyPrefix: s.prefix})
		fast, err := other.Begin(ctx, "bot", "c", Options{})
		if err != nil {
			t.Fatal(err)
		}
		st := fast.State
		st.Data["winner"] = "fast"
		if err := other.Commit(ctx, fast, Commit{State: st}); err != nil {
			t.Fatal(err)
		}
		st2 := slow.State
		st2.Data["winner"] = "slow"
		if err := s.Commit(ctx, slow, Commit{State: st2}); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale commit: err = %v, want ErrLeaseLost", err)
		}
		got, _, _ := s.Get(ctx, "bot", "c")
		if got.Data["winner"] != "fast" {
			t.Fatalf("stale commit overwrote state: %+v", got.Data)
		}
	})
}

func TestBeginWaitsForContext(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := newStore(t, rdb)
		other := New(rdb, Config{KeyPrefix: s.prefix})
		held, err := s.Begin(context.Background(), "bot", "c", Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Release(context.Background(), held); err != nil {
				t.Error(err)
			}
		}()
		for name, st := range map[string]*Store{"same process": s, "other replica": other} {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err := st.Begin(ctx, "bot", "c", Options{})
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: Begin on a held conversation: err = %v, want deadline exceeded", name, err)
			}
		}
	})
}

// TestConcurrentTurnsNeverLoseAnUpdate runs 50 concurrent increments of one
// conversation's counter through two stores (two replicas sharing Redis).
func TestConcurrentTurnsNeverLoseAnUpdate(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		prefix := testredis.Prefix(t)
		replicas := []*Store{New(rdb, Config{KeyPrefix: prefix}), New(rdb, Config{KeyPrefix: prefix})}
		const n = 50
		var wg sync.WaitGroup
		var failures atomic.Int32
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(s *Store) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				turn, err := s.Begin(ctx, "bot", "counter", Options{})
				if err != nil {
					failures.Add(1)
					t.Error(err)
					return
				}
				st := turn.State
				count, _ := st.Data["count"].(float64)
				st.Data["count"] = count + 1
				st.Turns++
				if err := s.Commit(ctx, turn, Commit{State: st}); err != nil {
					failures.Add(1)
					t.Error(err)
				}
			}(replicas[i%2])
		}
		wg.Wait()
		got, _, err := replicas[0].Get(context.Background(), "bot", "counter")
		if err != nil {
			t.Fatal(err)
		}
		if got.Data["count"] != float64(n) || got.Turns != n || failures.Load() != 0 {
			t.Fatalf("count = %v, turns = %d, failures = %d; want %d, %d, 0", got.Data["count"], got.Turns, failures.Load(), n, n)
		}
	})
}

// roundTrips counts commands and pipelines sent to Redis, leaving out a
// new connection's handshake (HELLO, CLIENT SETNAME and the like), which
// depends on how many connections the pool has open.
type roundTrips struct{ n atomic.Int64 }

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func TestTurnCostsTwoRoundTrips(t *testing.T) {
	rdb := testredis.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb)
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	counter := &roundTrips{}
	rdb.AddHook(counter)
	for i := 0; i < 3; i++ {
		before := counter.n.Load()
		turn, err := s.Begin(ctx, "bot", "rt", Options{MessageID: fmt.Sprint("m", i)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, turn, Commit{State: turn.State, History: &HistoryEntry{Text: "x"}, Answer: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if got := counter.n.Load() - before; got != 2 {
			t.Fatalf("turn %d used %d round trips, want 2", i, got)
		}
	}
}

// TestUserTurnCostsTwoRoundTrips: a known user's turn checks the user in
// the begin round trip; only the user's first turn in a conversation costs
// one more, to index it.
func TestUserTurnCostsTwoRoundTrips(t *testing.T) {
	rdb := testredis.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb)
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// A first user turn, so that the pool holds the connections the
	// counted turns use (a new connection's handshake is not a turn's).
	warm, err := s.Begin(ctx, "bot", "web:rt-warm", Options{User: "warm"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, warm, Commit{State: warm.State}); err != nil {
		t.Fatal(err)
	}
	counter := &roundTrips{}
	rdb.AddHook(counter)
	for i, want := range []int64{3, 2, 2} {
		before := counter.n.Load()
		turn, err := s.Begin(ctx, "bot", "web:rt-user", Options{MessageID: fmt.Sprint("m", i), User: "erin"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, turn, Commit{State: turn.State, Answer: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if got := counter.n.Load() - before; got != want {
			t.Fatalf("turn %d used %d round trips, want %d", i, got, want)
		}
	}
}

// TestKeyNames holds the key names to their stored form: they name data
// already in Redis, so building them differently must not change them.
func TestKeyNames(t *testing.T) {
	s := New(nil, Config{KeyPrefix: "px:"})
	old := func(bot, id string) string {
		sum := sha256.Sum256([]byte(bot + "\x00" + id))
		return hex.EncodeToString(sum[:16])
	}
	for _, c := range []struct{ bot, conv, msgID, user string }{
		{"pizza", "web:alice", "m-1", "alice"},
		{"b", "telegram:" + strings.Repeat("x", 300), "", "ü-ser"},
		{"bot-2", "", strings.Repeat("id", 200), ""},
	} {
		base := "px:{" + c.bot + ":" + old(c.bot, c.conv) + "}:"
		want := conversationKeys{lock: base + "lock", state: base + "state", history: base + "hist",
			answers: base + "answers", erased: base + "erased"}
		if c.msgID != "" {
			want.message = base + "msg:" + c.msgID
		}
		if got := s.keys(c.bot, msg.ConversationKey(c.conv), c.msgID); got != want {
			t.Errorf("keys(%q, %q, %q) = %+v, want %+v", c.bot, c.conv, c.msgID, got, want)
		}
		ubase := "px:users:{" + c.bot + ":" + old(c.bot, c.user) + "}:"
		if index, erased := s.userKeys(c.bot, c.user); index != ubase+"conversations" || erased != ubase+"erased" {
			t.Errorf("userKeys(%q, %q) = %q, %q", c.bot, c.user, index, erased)
		}
	}
}

// TestUnreadableStateFreesTheConversation: a state that cannot be decoded
// fails its turn and leaves the conversation to the next one, in this
// process and in Redis, instead of blocking it until the caller gives up.
func TestUnreadableStateFreesTheConversation(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		if err := rdb.Set(ctx, s.keys("bot", "web:c1", "").state, `{"data": [`, 0).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			wait, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := s.Begin(wait, "bot", "web:c1", Options{})
			cancel()
			if err == nil || !strings.Contains(err.Error(), "decode session") {
				t.Fatalf("turn %d: err = %v, want the decode error", i+1, err)
			}
		}
		if n, err := rdb.Exists(ctx, s.keys("bot", "web:c1", "").lock).Result(); err != nil || n != 0 {
			t.Fatalf("lock left in Redis: %d, %v", n, err)
		}
	})
}
