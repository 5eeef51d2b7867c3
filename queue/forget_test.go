package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
)

// TestForget removes the dead letters of an erased user and of the user's
// conversations, and only those.
func TestForget(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		q := testQueue(t, rdb, testredis.Prefix(t), newRunner(), &fakeSender{})
		for _, e := range []struct{ id, user, conv string }{
			{"E1", "alice", "C1"}, {"E2", "bob", "group-1"}, {"E3", "carol", "C3"}, {"E4", "alice", "C4"},
		} {
			ev := event(e.id, e.conv, "hi")
			ev.User = e.user
			if err := q.deadLetter(ctx, ev, "send", 3, errors.New("platform down")); err != nil {
				t.Fatal(err)
			}
		}
		n, err := q.Forget(ctx, "b1", "alice", []string{"C1", "group-1"})
		if err != nil || n != 3 {
			t.Fatalf("Forget = %d, %v; want 3", n, err)
		}
		left, err := q.DeadLetters(ctx, "b1", 10)
		if err != nil || len(left) != 1 || left[0].Event.ID != "E3" {
			t.Fatalf("dead letters left: %+v, %v", left, err)
		}
		if n, err := q.Forget(ctx, "b1", "nobody", nil); err != nil || n != 0 {
			t.Errorf("Forget of nobody = %d, %v", n, err)
		}
	})
}
