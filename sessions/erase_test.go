package sessions

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

func TestEraseRemovesStateHistoryAndLock(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		turn, err := s.Begin(ctx, "bot", "web:c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		st := turn.State
		st.Data["name"] = "Ann"
		st.Turns++
		if err := s.Commit(ctx, turn, Commit{State: st, History: &HistoryEntry{Text: "I am Ann"}}); err != nil {
			t.Fatal(err)
		}
		other, err := s.Begin(ctx, "bot", "web:c2", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, other, Commit{State: other.State}); err != nil {
			t.Fatal(err)
		}

		// A turn in flight loses its lock: it cannot write the state back.
		inflight, err := s.Begin(ctx, "bot", "web:c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		removed, err := s.Erase(ctx, "bot", "web:c1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if removed != (Removed{Sessions: 1, Histories: 1}) {
			t.Errorf("removed %+v, want one session and one history", removed)
		}
		if err := s.Commit(ctx, inflight, Commit{State: inflight.State}); !errors.Is(err, ErrErased) {
			t.Fatalf("commit after erase = %v, want ErrErased", err)
		}
		if _, ok, _ := s.Get(ctx, "bot", "web:c1"); ok {
			t.Error("state survived Erase")
		}
		if hist, _ := s.History(ctx, "bot", "web:c1"); len(hist) != 0 {
			t.Errorf("history survived Erase: %+v", hist)
		}
		if _, ok, _ := s.Get(ctx, "bot", "web:c2"); !ok {
			t.Error("Erase removed another conversation")
		}
		// A message received before the erasure is refused; one received
		// after it starts the conversation afresh.
		if _, err := s.Begin(ctx, "bot", "web:c1", Options{Received: time.Now().Add(-time.Second)}); !errors.Is(err, ErrErased) {
			t.Fatalf("a message received before the erasure: %v, want ErrErased", err)
		}
		again, err := s.Begin(ctx, "bot", "web:c1", Options{Received: time.Now().Add(10 * time.Millisecond)})
		if err != nil || !again.New() {
			t.Fatalf("after erase: %+v, %v", again, err)
		}
		if err := s.Release(ctx, again); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEraseRemovesRememberedAnswers: the answers kept for retried messages
// go with the conversation; another conversation's stay.
func TestEraseRemovesRememberedAnswers(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		answer := func(conv msg.ConversationKey, msg string) {
			t.Helper()
			turn, err := s.Begin(ctx, "bot", conv, Options{MessageID: msg})
			if err != nil {
				t.Fatal(err)
			}
			if turn.Duplicate != nil {
				t.Fatalf("%s/%s: already answered", conv, msg)
			}
			st := turn.State
			st.Turns++
			if err := s.Commit(ctx, turn, Commit{State: st, Answer: []byte(`{"reply":"for ` + msg + `"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		remembered := func(conv msg.ConversationKey, msg string) bool {
			t.Helper()
			turn, err := s.Begin(ctx, "bot", conv, Options{MessageID: msg})
			if err != nil {
				t.Fatal(err)
			}
			if turn.Duplicate != nil {
				return true
			}
			if err := s.Release(ctx, turn); err != nil {
				t.Fatal(err)
			}
			return false
		}
		answer("web:c1", "m1")
		answer("web:c1", "m2")
		answer("web:c2", "m3")
		if !remembered("web:c1", "m1") || !remembered("web:c1", "m2") {
			t.Fatal("answers not remembered before Erase")
		}
		removed, err := s.Erase(ctx, "bot", "web:c1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if removed.Answers != 2 {
			t.Errorf("removed %+v, want 2 answers", removed)
		}
		time.Sleep(5 * time.Millisecond) // the probes below are received after the erasure
		if remembered("web:c1", "m1") || remembered("web:c1", "m2") {
			t.Error("an answer remembered for c1 survived Erase")
		}
		if !remembered("web:c2", "m3") {
			t.Error("Erase removed another conversation's answer")
		}
		// What is left of c1 is its erasure marker, which names no one.
		k := s.keys("bot", "web:c1", "")
		for _, key := range testredis.Keys(t, rdb, s.prefix+"*") {
			if key != k.erased && key[:len(k.erased)-len("erased")] == k.erased[:len(k.erased)-len("erased")] {
				t.Errorf("key of c1 left after Erase: %s", key)
			}
		}
	})
}

// TestUserIndex: every turn of a user indexes its conversation, whatever
// the channel; ForgetUser returns and deletes the index, and a message of
// the user received before it indexes nothing and is refused.
func TestUserIndex(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		for _, conv := range []msg.ConversationKey{"web:support-ticket-9", "telegram:tg-123", "web:support-ticket-9"} {
			turn, err := s.Begin(ctx, "bot", conv, Options{User: "carol"})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Release(ctx, turn); err != nil {
				t.Fatal(err)
			}
		}
		turn, err := s.Begin(ctx, "bot", "messenger:ms-123", Options{User: "dave"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, turn); err != nil {
			t.Fatal(err)
		}

		before := time.Now().Add(-time.Second)
		got, err := s.ForgetUser(ctx, "bot", "carol", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []msg.ConversationKey{"telegram:tg-123", "web:support-ticket-9"}; !slices.Equal(got, want) {
			t.Fatalf("carol's conversations %q, want %q", got, want)
		}
		if _, err := s.Begin(ctx, "bot", "web:late", Options{User: "carol", Received: before}); !errors.Is(err, ErrErased) {
			t.Fatalf("a message of carol received before her erasure: %v, want ErrErased", err)
		}
		if again, _ := s.ForgetUser(ctx, "bot", "carol", time.Now()); len(again) != 0 {
			t.Fatalf("index after ForgetUser: %q", again)
		}
		if dave, _ := s.ForgetUser(ctx, "bot", "dave", time.Now()); !slices.Equal(dave, []msg.ConversationKey{"messenger:ms-123"}) {
			t.Fatalf("dave's conversations %q", dave)
		}
		// No key holds the user's id or the conversations' ids.
		for _, key := range testredis.Keys(t, rdb, s.prefix+"*") {
			for _, id := range []string{"carol", "dave", "support-ticket-9", "tg-123", "ms-123"} {
				if strings.Contains(key, id) {
					t.Errorf("key %s names %s", key, id)
				}
			}
		}
	})
}

// TestUserIndexEverySpeaker: each user who speaks in a conversation is
// indexed, not only the one who began it (a group chat), and later turns
// keep the index alive.
func TestUserIndexEverySpeaker(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := New(rdb, Config{KeyPrefix: testredis.Prefix(t), UserIndexTTL: time.Hour})
		conv := msg.ConversationKey("slack:C-team")
		for _, user := range []string{"frank", "grace", "frank", "grace"} {
			turn, err := s.Begin(ctx, "bot", conv, Options{User: user})
			if err != nil {
				t.Fatal(err)
			}
			st := turn.State
			st.Turns++
			if err := s.Commit(ctx, turn, Commit{State: st}); err != nil {
				t.Fatal(err)
			}
		}
		index, _ := s.userKeys("bot", "grace")
		if err := rdb.PExpire(ctx, index, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		turn, err := s.Begin(ctx, "bot", conv, Options{User: "grace"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Release(ctx, turn); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, index).Val(); ttl < 30*time.Minute {
			t.Errorf("grace's index lives %v after her turn, want it renewed to about an hour", ttl)
		}
		for _, user := range []string{"frank", "grace"} {
			got, err := s.ForgetUser(ctx, "bot", user, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []msg.ConversationKey{conv}) {
				t.Errorf("%s's conversations %q, want %q", user, got, conv)
			}
		}
		// A message of grace received before her erasure is refused, in a
		// conversation her index named.
		if _, err := s.Begin(ctx, "bot", conv, Options{User: "grace", Received: time.Now().Add(-time.Second)}); !errors.Is(err, ErrErased) {
			t.Fatalf("a message of grace received before her erasure: %v, want ErrErased", err)
		}
	})
}
