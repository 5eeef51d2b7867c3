package invocations

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// TestLLMUsage: an invocation's llm calls and tokens are in its log entry
// and in the day's usage.
func TestLLMUsage(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		r := New(rdb, Config{KeyPrefix: testredis.Prefix(t)})
		day := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		a := inv("faq", "Answer", msg.CallOK, day)
		a.LLMCalls, a.LLMInput, a.LLMOutput = 1, 120, 45
		b := inv("faq", "Answer", msg.CallOK, day.Add(time.Minute))
		b.LLMCalls, b.LLMInput, b.LLMOutput = 2, 300, 80
		r.Record(ctx, a)
		r.Record(ctx, b)
		r.Record(ctx, inv("faq", "Greet", msg.CallOK, day))
		r.Flush(ctx)
		got, err := r.Recent(ctx, "faq", Query{Intent: "Answer"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].LLMCalls != 2 || got[0].LLMInputTokens != 300 || got[0].LLMOutputTokens != 80 {
			t.Fatalf("recent %+v", got)
		}
		days, err := r.Usage(ctx, "faq", day, day)
		if err != nil {
			t.Fatal(err)
		}
		if d := days[0]; d.Invocations != 3 || d.LLMCalls != 3 || d.LLMInputTokens != 420 || d.LLMOutputTokens != 125 {
			t.Fatalf("usage %+v", d)
		}
	})
}
