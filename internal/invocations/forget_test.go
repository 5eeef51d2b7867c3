package invocations

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// TestForget removes the invocations of erased conversations, including
// those still queued, and keeps the others in order with their expiry.
func TestForget(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		r := New(rdb, Config{KeyPrefix: testredis.Prefix(t)})
		start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		record := func(channel, conv, intent string, i int) {
			e := inv("pizza", intent, msg.CallOK, start.Add(time.Duration(i)*time.Second))
			e.Channel, e.Conversation = channel, conv
			r.Record(ctx, e)
		}
		record("web", "alice", "Order", 0)
		record("web", "bob", "Order", 1)
		record("web", "alice", "Greet", 2)
		record("telegram", "alice", "Greet", 2) // another channel's conversation of the same id
		r.Flush(ctx)
		record("web", "alice", "Hours", 3) // still queued when Forget starts
		record("web", "carol", "Hours", 4)

		n, err := r.Forget(ctx, "pizza", "alice", []msg.ConversationKey{"web:alice", "web:alice-2"})
		if err != nil || n[RemovedLogs] != 3 {
			t.Fatalf("Forget = %v, %v; want 3", n, err)
		}
		got, err := r.Recent(ctx, "pizza", Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Conversation != "carol" || got[1].Channel != "telegram" || got[2].Conversation != "bob" {
			t.Fatalf("recent after Forget: %+v", got)
		}
		if ttl := rdb.PTTL(ctx, r.recentKey("pizza")).Val(); ttl <= 0 {
			t.Errorf("the list lost its expiry: %v", ttl)
		}
		if n, err := r.Forget(ctx, "pizza", "nobody", []msg.ConversationKey{"web:nobody"}); err != nil || n[RemovedLogs] != 0 {
			t.Errorf("Forget of an unknown conversation = %v, %v", n, err)
		}
		days, _ := r.Usage(ctx, "pizza", start, start)
		if len(days) != 1 || days[0].Invocations != 6 {
			t.Errorf("usage totals changed: %+v", days)
		}
	})
}
