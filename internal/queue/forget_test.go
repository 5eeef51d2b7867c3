package queue

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// TestForget removes the dead letters of an erased user and of the user's
// conversations, and only those: the same conversation id on another
// channel is another conversation.
func TestForget(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		q := testQueue(t, rdb, testredis.Prefix(t), newRunner(), &fakeSender{})
		for _, e := range []struct{ id, user, channel, conv string }{
			{"E1", "alice", "slack", "C1"}, {"E2", "bob", "slack", "group-1"}, {"E3", "carol", "slack", "C3"},
			{"E4", "alice", "slack", "C4"}, {"E5", "dave", "telegram", "group-1"},
		} {
			ev := event(e.id, e.conv, "hi")
			ev.User, ev.Channel = e.user, e.channel
			if err := q.deadLetter(ctx, ev, "send", 3, errors.New("platform down")); err != nil {
				t.Fatal(err)
			}
		}
		n, err := q.Forget(ctx, "b1", "alice", []msg.ConversationKey{"slack:C1", "slack:group-1"})
		if err != nil || n[RemovedDeadLetters] != 3 || n[RemovedParked] != 0 {
			t.Fatalf("Forget = %v, %v; want 3 dead letters", n, err)
		}
		left, err := q.DeadLetters(ctx, "b1", 10)
		if err != nil || len(left) != 2 || left[0].Event.ID != "E3" || left[1].Event.ID != "E5" {
			t.Fatalf("dead letters left: %+v, %v", left, err)
		}
		if n, err := q.Forget(ctx, "b1", "nobody", nil); err != nil || n[RemovedDeadLetters] != 0 {
			t.Errorf("Forget of nobody = %v, %v", n, err)
		}
	})
}

// TestForgetParked removes a user's parked events while they wait, those of
// an erased conversation whole, and keeps the others', which still run in
// order once the limit allows; the partition goes on.
func TestForgetParked(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		limit := &slowLimit{conv: "SLOW"}
		r.fail = limit.check
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		ctx := context.Background()
		for _, e := range []struct{ id, user, conv string }{
			{"S0", "alice", "SLOW"}, {"S1", "bob", "SLOW"}, {"S2", "alice", "SLOW"},
		} {
			ev := event(e.id, e.conv, e.id)
			ev.User = e.user
			if _, err := q.Enqueue(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "three events parked", func() bool {
			b1, err := q.Parked(ctx, "b1", 10)
			return err == nil && len(b1) == 1 && b1[0].Entries == 3
		})
		n, err := q.Forget(ctx, "b1", "alice", nil)
		if err != nil || n[RemovedParked] != 2 {
			t.Fatalf("Forget = %v, %v; want 2 parked", n, err)
		}
		b1, err := q.Parked(ctx, "b1", 10)
		if err != nil || len(b1) != 1 || b1[0].Entries != 1 || b1[0].Event.ID != "S1" {
			t.Fatalf("parked after Forget: %+v, %v", b1, err)
		}
		limit.open.Store(true)
		eventually(t, "bob's reply", func() bool { return len(s.sentIDs()) == 1 })
		if sent := s.sentIDs(); !slices.Equal(sent, []string{"S1"}) {
			t.Fatalf("sent %v, want only bob's", sent)
		}

		// A whole conversation goes, whoever wrote in it.
		limit.open.Store(false)
		for _, id := range []string{"S3", "S4"} {
			if _, err := q.Enqueue(ctx, event(id, "SLOW", id)); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "two events parked", func() bool {
			b1, err := q.Parked(ctx, "b1", 10)
			return err == nil && len(b1) == 1 && b1[0].Entries == 2
		})
		if n, err := q.Forget(ctx, "b1", "alice", []msg.ConversationKey{"slack:SLOW"}); err != nil || n[RemovedParked] != 2 {
			t.Fatalf("Forget of the conversation = %v, %v; want 2 parked", n, err)
		}
		if _, err := q.Enqueue(ctx, event("F0", "FAST", "x")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the partition goes on", func() bool { return len(s.sentIDs()) == 2 })
		eventually(t, "nothing parked", func() bool {
			b1, err := q.Parked(ctx, "b1", 10)
			return err == nil && len(b1) == 0
		})
		if sent := s.sentIDs(); !slices.Equal(sent, []string{"S1", "F0"}) {
			t.Fatalf("sent %v", sent)
		}
		if n := rdb.Exists(ctx, q.parkedNKey(q.Partition("b1", "slack:SLOW"))).Val(); n != 0 {
			t.Errorf("the parked count outlived every parked entry")
		}
	})
}

// TestDiscardLeavesNoTrace: an event the runner discards (its user was
// erased after it was received) is dropped at once: not retried, not sent,
// not dead-lettered; the partition goes on.
func TestDiscardLeavesNoTrace(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		r, s := newRunner(), &fakeSender{}
		r.fail = func(ev *msg.Event) error {
			if ev.User == "erased" {
				return Discard(errors.New("erased"))
			}
			return nil
		}
		q := testQueue(t, rdb, testredis.Prefix(t), r, s)
		run(t, q)
		ctx := context.Background()
		gone := event("D0", "C1", "x")
		gone.User = "erased"
		for _, ev := range []*msg.Event{gone, event("D1", "C1", "y")} {
			if _, err := q.Enqueue(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "the next event's reply", func() bool { return len(s.sentIDs()) == 1 })
		if sent := s.sentIDs(); sent[0] != "D1" {
			t.Fatalf("sent %v", sent)
		}
		if dl, err := q.DeadLetters(ctx, "b1", 10); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters %v, %v", dl, err)
		}
	})
}
