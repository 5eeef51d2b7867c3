package webchat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

func ids(entries []Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = string(e.Data)
	}
	return out
}

// next waits (widely) for the next entries.
func next(t *testing.T, f *Follower) []Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	entries, err := f.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestOutbox(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		box := New(rdb, Config{KeyPrefix: testredis.Prefix(t), MaxLen: 5, CatchUp: 100 * time.Millisecond})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- box.Run(runCtx) }()
		defer func() {
			stop()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()

		first, err := box.Append(ctx, "b", "alice", []byte("a1"))
		if err != nil {
			t.Fatal(err)
		}
		// From now on: a1 is not delivered.
		f, err := box.Follow(ctx, "b", "alice", "")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := box.Append(ctx, "b", "alice", []byte("a2")); err != nil {
			t.Fatal(err)
		}
		if _, err := box.Append(ctx, "b", "bob", []byte("b1")); err != nil {
			t.Fatal(err)
		}
		if got := ids(next(t, f)); fmt.Sprint(got) != "[a2]" {
			t.Fatalf("after follow: %v, want [a2]", got)
		}
		// A reconnect after a1 gets a2 and what came later, once.
		if _, err := box.Append(ctx, "b", "alice", []byte("a3")); err != nil {
			t.Fatal(err)
		}
		again, err := box.Follow(ctx, "b", "alice", first)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		var seen []string
		for len(seen) < 2 {
			seen = append(seen, ids(next(t, again))...)
		}
		if fmt.Sprint(seen) != "[a2 a3]" {
			t.Fatalf("reconnect after a1: %v, want [a2 a3]", seen)
		}
		if got := ids(next(t, f)); fmt.Sprint(got) != "[a3]" {
			t.Fatalf("live follower: %v, want [a3]", got)
		}
		// The outbox is capped and expires.
		for i := range 10 {
			if _, err := box.Append(ctx, "b", "alice", fmt.Appendf(nil, "x%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		key := box.key("b", "alice")
		if n := rdb.XLen(ctx, key).Val(); n > 5 {
			t.Errorf("outbox holds %d entries, want at most 5", n)
		}
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > DefaultTTL {
			t.Errorf("outbox TTL = %v", ttl)
		}
		// An erasure removes the user's web outboxes only.
		got, err := box.Forget(ctx, "b", "alice", []msg.ConversationKey{msg.KeyOf("web", "alice"), msg.KeyOf("slack", "bob")})
		if err != nil || got["web_outboxes"] != 1 || rdb.Exists(ctx, key).Val() != 0 || rdb.Exists(ctx, box.key("b", "bob")).Val() != 1 {
			t.Fatalf("Forget = %v, %v", got, err)
		}
	})
}

// TestOutboxCatchesUpWithoutNotices: with no subscription running (every
// notice lost), followers still get each entry, by their catch-up reads.
func TestOutboxCatchesUpWithoutNotices(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		box := New(rdb, Config{KeyPrefix: testredis.Prefix(t), CatchUp: 50 * time.Millisecond})
		f, err := box.Follow(ctx, "b", "alice", "0")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for i := range 3 {
			if _, err := box.Append(ctx, "b", "alice", fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		for len(seen) < 3 {
			seen = append(seen, ids(next(t, f))...)
		}
		if fmt.Sprint(seen) != "[m0 m1 m2]" {
			t.Fatalf("got %v", seen)
		}
	})
}

func TestValidID(t *testing.T) {
	for s, ok := range map[string]bool{"1-0": true, "1764104645120-3": true, "0": false, "": false, "a-1": false, "1-": false} {
		if ValidID(s) != ok {
			t.Errorf("ValidID(%q) != %v", s, ok)
		}
	}
}
