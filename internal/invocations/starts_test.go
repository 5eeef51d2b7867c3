package invocations

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

func TestUsageCountsVMStarts(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		r := New(rdb, Config{KeyPrefix: testredis.Prefix(t)})
		day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		cold := inv("pizza", "Order", msg.CallOK, day)
		cold.ColdStart = true
		warm := inv("pizza", "Order", msg.CallOK, day.Add(time.Minute))
		warm.WarmStart = true
		// A rejected turn never got a VM: neither cold nor warm.
		rejected := inv("pizza", "Order", msg.CallRejected, day.Add(2*time.Minute))
		r.Record(ctx, cold)
		r.Record(ctx, warm)
		r.Record(ctx, warm)
		r.Record(ctx, rejected)
		r.Flush(ctx)

		days, err := r.Usage(ctx, "pizza", day, day)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 1 || days[0].Invocations != 4 || days[0].ColdStarts != 1 || days[0].WarmStarts != 2 {
			t.Errorf("usage %+v", days)
		}
		got, err := r.Recent(ctx, "pizza", Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || got[3].ColdStart != true || got[2].ColdStart || got[0].ColdStart {
			t.Errorf("recent %+v", got)
		}
	})
}
