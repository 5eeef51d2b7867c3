package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestOperationsMetrics: /metrics carries what an operator's dashboard and
// alerts need: requests by route and status (with methods bounded), the
// store's reachability, the durable queue's partitions and the heap guard.
// (Dead letters and schedule runs are counted through hooks tested in
// their packages; a counter with labels shows once it has counted.)
func TestOperationsMetrics(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "ops", nil, map[string]string{"Greet": `function handle(e) return "hi" end`})
	ta.say(t, "ops", map[string]any{"user": "alice", "intent": "Greet"}).must(t, http.StatusOK)
	do(t, "BREW", ta.URL+"/healthz", "", nil)
	do(t, "GET", ta.URL+"/no/such/route/"+strings.Repeat("x", 20), "", nil)

	metrics := do(t, "GET", ta.URL+"/metrics", "", nil).must(t, http.StatusOK).Raw
	for _, want := range []string{
		`parley_http_requests_total{method="POST",route="/hooks/:bot/:channel",status="200"} 1`,
		`parley_http_requests_total{method="other",route="unmatched",status="405"} 1`,
		`parley_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`parley_http_request_duration_seconds_count{route="/hooks/:bot/:channel"} 1`,
		"parley_redis_up 1",
		"parley_queue_stats_up 1",
		`parley_queue_partition_depth{partition="0"} 0`,
		`parley_queue_partition_lag_seconds{partition="0"} 0`,
		`parley_queue_parked_conversations{partition="0"} 0`,
		"parley_sandbox_heap_interrupts_total 0",
		"# TYPE parley_scheduler_lateness_seconds histogram",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(metrics, "BREW") || strings.Contains(metrics, "xxxx") {
		t.Error("a client's method or path became a label value")
	}
}
