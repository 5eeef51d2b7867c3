package sessions

import (
	"context"
	"errors"
	"testing"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

func TestDeleteRemovesStateHistoryAndLock(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		turn, err := s.Begin(ctx, "bot", "c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		st := turn.State
		st.Data["name"] = "Ann"
		st.Turns++
		if err := s.Commit(ctx, turn, Commit{State: st, History: &HistoryEntry{Text: "I am Ann"}}); err != nil {
			t.Fatal(err)
		}
		other, err := s.Begin(ctx, "bot", "c2", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, other, Commit{State: other.State}); err != nil {
			t.Fatal(err)
		}

		// A turn in flight loses its lock: it cannot write the state back.
		inflight, err := s.Begin(ctx, "bot", "c1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "bot", "c1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, inflight, Commit{State: inflight.State}); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("commit after delete = %v, want ErrLeaseLost", err)
		}
		if _, ok, _ := s.Get(ctx, "bot", "c1"); ok {
			t.Error("state survived Delete")
		}
		if hist, _ := s.History(ctx, "bot", "c1"); len(hist) != 0 {
			t.Errorf("history survived Delete: %+v", hist)
		}
		if _, ok, _ := s.Get(ctx, "bot", "c2"); !ok {
			t.Error("Delete removed another conversation")
		}
		// The conversation starts afresh.
		again, err := s.Begin(ctx, "bot", "c1", Options{})
		if err != nil || !again.New() {
			t.Fatalf("after delete: %+v, %v", again, err)
		}
		s.Release(ctx, again)
	})
}

// TestDeleteRemovesRememberedAnswers: the answers kept for retried messages
// go with the conversation; another conversation's stay.
func TestDeleteRemovesRememberedAnswers(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(t, rdb)
		answer := func(conv, msg string) {
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
		remembered := func(conv, msg string) bool {
			t.Helper()
			turn, err := s.Begin(ctx, "bot", conv, Options{MessageID: msg})
			if err != nil {
				t.Fatal(err)
			}
			if turn.Duplicate != nil {
				return true
			}
			s.Release(ctx, turn)
			return false
		}
		answer("c1", "m1")
		answer("c1", "m2")
		answer("c2", "m3")
		if !remembered("c1", "m1") || !remembered("c1", "m2") {
			t.Fatal("answers not remembered before Delete")
		}
		if err := s.Delete(ctx, "bot", "c1"); err != nil {
			t.Fatal(err)
		}
		if remembered("c1", "m1") || remembered("c1", "m2") {
			t.Error("an answer remembered for c1 survived Delete")
		}
		if !remembered("c2", "m3") {
			t.Error("Delete removed another conversation's answer")
		}
		// Nothing of c1 is left in the store but the lock of the probe turns.
		keys, err := rdb.Keys(ctx, s.prefix+"{bot:c1}*").Result()
		if err == nil && len(keys) > 0 {
			t.Errorf("keys of c1 left after Delete: %v", keys)
		}
	})
}
