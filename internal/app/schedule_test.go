package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// TestSchedulesRunOnceAcrossReplicas lets a every-second schedule fire for a
// few seconds on two replicas sharing Redis: every fire time runs exactly
// once, each run is a turn of the schedule's own conversation, and each is
// in the invocation log.
func TestSchedulesRunOnceAcrossReplicas(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "b", nil, map[string]string{"Count": counterHandler})

	do(t, "PUT", a.URL+"/v1/bots/b/schedules/tick", adminKey, map[string]any{"cron": "@every 1s", "intent": "Count"}).must(t, http.StatusOK)
	do(t, "PUT", a.URL+"/v1/bots/b/schedules/bad", adminKey, map[string]any{"cron": "every second", "intent": "Count"}).must(t, http.StatusBadRequest)
	do(t, "PUT", a.URL+"/v1/bots/ghost/schedules/tick", adminKey, map[string]any{"cron": "@daily", "intent": "Count"}).must(t, http.StatusNotFound)

	deadline := time.Now().Add(15 * time.Second)
	var runs []any
	for time.Now().Before(deadline) {
		r := do(t, "GET", b.URL+"/v1/bots/b/schedules", adminKey, nil).must(t, http.StatusOK)
		runs, _ = r.Body["runs"].([]any)
		if len(runs) >= 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	do(t, "DELETE", a.URL+"/v1/bots/b/schedules/tick", adminKey, nil).must(t, http.StatusNoContent)
	time.Sleep(1500 * time.Millisecond) // runs already claimed finish

	r := do(t, "GET", b.URL+"/v1/bots/b/schedules", adminKey, nil).must(t, http.StatusOK)
	runs, _ = r.Body["runs"].([]any)
	if len(runs) < 3 {
		t.Fatalf("only %d schedule runs in 15s: %s", len(runs), r.Raw)
	}
	fires := map[string]bool{}
	for _, run := range runs {
		fire := run.(map[string]any)["fire"].(string)
		if fires[fire] {
			t.Fatalf("fire time %s ran twice: %s", fire, r.Raw)
		}
		fires[fire] = true
	}
	conv := do(t, "GET", a.URL+"/v1/bots/b/conversations/schedule:tick", adminKey, nil).must(t, http.StatusOK)
	count := conv.Body["state"].(map[string]any)["data"].(map[string]any)["count"]
	if count != float64(len(runs)) {
		t.Fatalf("handler ran %v times for %d recorded runs", count, len(runs))
	}
	// Each run is in the invocation log, under the schedule's conversation.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := do(t, "GET", b.URL+"/v1/bots/b/logs?intent=Count&limit=100", adminKey, nil).must(t, http.StatusOK)
		logged := 0
		invs, _ := r.Body["invocations"].([]any)
		for _, inv := range invs {
			if e := inv.(map[string]any); e["conversation"] == "schedule:tick" && e["outcome"] == "ok" {
				logged++
			}
		}
		if logged == len(runs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scheduled runs in the invocation log, want %d: %s", logged, len(runs), r.Raw)
		}
	}
}
