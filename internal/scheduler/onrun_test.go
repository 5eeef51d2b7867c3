package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOnRunReportsEachRun: every fire time a replica runs is reported once,
// with its outcome and how late it started; a skipped one is not.
func TestOnRunReportsEachRun(t *testing.T) {
	f := newFixture(t)
	type run struct {
		bot, outcome string
		late         time.Duration
	}
	var mu sync.Mutex
	var runs []run
	s := f.replica(t)
	s.cfg.OnRun = func(bot, outcome string, late time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, run{bot, outcome, late})
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "b", "daily", Schedule{Cron: "0 9 * * *", Intent: "Remind"}); err != nil {
		t.Fatal(err)
	}
	// A push to a channel the bot does not have fails at run time.
	if _, err := s.Put(ctx, "b", "nowhere", Schedule{Cron: "0 9 * * *", Intent: "Tick",
		Targets: []Target{{Channel: "web", Conversation: "c1"}}}); err != nil {
		t.Fatal(err)
	}
	f.clock.add(time.Hour + 3*time.Second) // 09:00:03
	f.check(t, s)
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 2 {
		t.Fatalf("runs reported %+v, want 2", runs)
	}
	outcomes := map[string]bool{}
	for _, r := range runs {
		outcomes[r.outcome] = true
		if r.bot != "b" || r.late != 3*time.Second {
			t.Errorf("run %+v: want bot b, 3s late", r)
		}
	}
	if !outcomes["ok"] || !outcomes["error"] {
		t.Errorf("outcomes %v, want one ok (Remind) and one error (no such channel)", outcomes)
	}
}
