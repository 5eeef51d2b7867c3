package invocations

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sandbox"
)

// TestForget removes the invocations of erased conversations, including
// those still queued, and keeps the others in order with their expiry.
func TestForget(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		r := New(rdb, Config{KeyPrefix: testredis.Prefix(t)})
		start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		record := func(conv, intent string, i int) {
			e := inv("pizza", intent, sandbox.OutcomeOK, start.Add(time.Duration(i)*time.Second))
			e.Conversation = conv
			r.Record(ctx, e)
		}
		record("alice", "Order", 0)
		record("bob", "Order", 1)
		record("alice", "Greet", 2)
		r.Flush(ctx)
		record("alice", "Hours", 3) // still queued when Forget starts
		record("carol", "Hours", 4)

		n, err := r.Forget(ctx, "pizza", "alice", []string{"alice", "alice-2"})
		if err != nil || n != 3 {
			t.Fatalf("Forget = %d, %v; want 3", n, err)
		}
		got, err := r.Recent(ctx, "pizza", Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Conversation != "carol" || got[1].Conversation != "bob" {
			t.Fatalf("recent after Forget: %+v", got)
		}
		if ttl := rdb.PTTL(ctx, r.recentKey("pizza")).Val(); ttl <= 0 {
			t.Errorf("the list lost its expiry: %v", ttl)
		}
		if n, err := r.Forget(ctx, "pizza", "nobody", []string{"nobody"}); err != nil || n != 0 {
			t.Errorf("Forget of an unknown conversation = %d, %v", n, err)
		}
		days, _ := r.Usage(ctx, "pizza", start, start)
		if len(days) != 1 || days[0].Invocations != 5 {
			t.Errorf("usage totals changed: %+v", days)
		}
	})
}
