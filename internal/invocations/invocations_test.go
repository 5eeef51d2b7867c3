package invocations

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

func inv(bot, intent string, outcome msg.CallOutcome, start time.Time) msg.Invocation {
	return msg.Invocation{Bot: bot, Intent: intent, Version: 2, Conversation: "c1", Start: start,
		Duration: 3 * time.Millisecond, Compute: 2500 * time.Microsecond, Instructions: 1000, HTTPCalls: 1,
		Outcome: outcome, Logs: []string{"hello"}}
}

// TestRecorder is the contract suite, run against the real Redis and the
// embedded store.
func TestRecorder(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		r := New(rdb, Config{KeyPrefix: testredis.Prefix(t), MaxRecent: 5})
		day1 := time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)
		day2 := day1.Add(2 * time.Minute)
		r.Record(ctx, inv("pizza", "Order", msg.CallOK, day1))
		e := inv("pizza", "Order", msg.CallError, day2)
		e.Error, e.Line = "Order.lua:3: boom", 3
		r.Record(ctx, e)
		r.Record(ctx, inv("pizza", "Greet", msg.CallTimeout, day2))
		r.Record(ctx, inv("other", "Greet", msg.CallOK, day2))
		r.Flush(ctx)
		if r.Written() != 4 || r.Dropped() != 0 {
			t.Fatalf("written %d, dropped %d", r.Written(), r.Dropped())
		}

		got, err := r.Recent(ctx, "pizza", Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Intent != "Greet" || got[1].Error != "Order.lua:3: boom" || got[1].Line != 3 ||
			got[2].Outcome != "ok" || got[2].ComputeMS != 2.5 || got[2].Logs[0] != "hello" || got[2].Instructions != 1000 {
			t.Errorf("recent %+v", got)
		}
		got, _ = r.Recent(ctx, "pizza", Query{Outcome: "error"})
		if len(got) != 1 || got[0].Outcome != "error" {
			t.Errorf("outcome filter %+v", got)
		}
		got, _ = r.Recent(ctx, "pizza", Query{Intent: "Order", Limit: 1})
		if len(got) != 1 || got[0].Intent != "Order" || got[0].Outcome != "error" {
			t.Errorf("intent filter %+v", got)
		}

		days, err := r.Usage(ctx, "pizza", day1.Add(-24*time.Hour), day2)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 3 || days[0].Invocations != 0 || days[1].Date != "2026-03-01" || days[1].Invocations != 1 ||
			days[2].Invocations != 2 || days[2].ComputeMS != 5 || days[2].Outcomes["error"] != 1 ||
			days[2].Outcomes["timeout"] != 1 || days[2].HTTPCalls != 2 || days[2].Instructions != 2000 {
			t.Errorf("usage %+v", days)
		}
		if _, err := r.Usage(ctx, "pizza", day2, day1.Add(-48*time.Hour)); err == nil {
			t.Error("reversed range accepted")
		}

		// The recent list is bounded.
		for i := range 10 {
			r.Record(ctx, inv("pizza", fmt.Sprint("I", i), msg.CallOK, day2))
		}
		r.Flush(ctx)
		got, _ = r.Recent(ctx, "pizza", Query{Limit: 100})
		if len(got) != 5 || got[0].Intent != "I9" {
			t.Errorf("bounded list: %d entries, first %+v", len(got), got[0])
		}
	})
}

func TestRecordNeverBlocks(t *testing.T) {
	r := New(testredis.Embedded(t), Config{Buffer: 2})
	for range 5 {
		r.Record(context.Background(), inv("b", "i", msg.CallOK, time.Now()))
	}
	if r.Dropped() != 3 {
		t.Errorf("dropped %d", r.Dropped())
	}
}

// TestRunDrainsOnShutdown: what is queued when Run's context ends is written.
func TestRunDrainsOnShutdown(t *testing.T) {
	rdb := testredis.Embedded(t)
	r := New(rdb, Config{FlushInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for range 100 {
		r.Record(ctx, inv("b", "i", msg.CallOK, time.Now()))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Written() != 100 {
		t.Errorf("written %d of 100", r.Written())
	}
	got, _ := r.Recent(context.Background(), "b", Query{Limit: 500})
	if len(got) != 100 {
		t.Errorf("%d entries", len(got))
	}
}

// TestFlushListsNewest: a flush that holds more of a bot's invocations than
// its recent list keeps lists the newest, newest first, and counts all of
// them in the usage.
func TestFlushListsNewest(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		r := New(rdb, Config{KeyPrefix: testredis.Prefix(t), MaxRecent: 7, BatchSize: 4, Buffer: 64})
		day := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		for i := range 30 {
			r.Record(ctx, inv("pizza", fmt.Sprint("I", i), msg.CallOK, day))
			if i%10 == 0 {
				r.Record(ctx, inv("other", fmt.Sprint("O", i), msg.CallOK, day))
			}
		}
		r.Flush(ctx)
		if r.Written() != 33 || r.Dropped() != 0 {
			t.Fatalf("written %d, dropped %d", r.Written(), r.Dropped())
		}
		got, err := r.Recent(ctx, "pizza", Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var intents []string
		for _, e := range got {
			intents = append(intents, e.Intent)
		}
		if fmt.Sprint(intents) != "[I29 I28 I27 I26 I25 I24 I23]" {
			t.Errorf("recent %v", intents)
		}
		got, _ = r.Recent(ctx, "other", Query{})
		if len(got) != 3 || got[0].Intent != "O20" || got[2].Intent != "O0" {
			t.Errorf("other bot's recent %+v", got)
		}
		days, err := r.Usage(ctx, "pizza", day, day)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 1 || days[0].Invocations != 30 || days[0].Outcomes["ok"] != 30 || days[0].HTTPCalls != 30 {
			t.Errorf("usage %+v", days)
		}
	})
}
