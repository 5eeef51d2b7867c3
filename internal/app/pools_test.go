package app

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestVMStartsInMetricsAndUsage: a bot's cold and warm starts show in
// /metrics and in its usage; min_vms and max_vms reach the sandbox.
func TestVMStartsInMetricsAndUsage(t *testing.T) {
	ta := startRedisApp(t)
	greet := `function handle(e) return "hi " .. e.user end`
	ta.setupBot(t, "elastic", nil, map[string]string{"Greet": greet})
	for i := range 3 {
		r := ta.say(t, "elastic", map[string]any{"user": "alice", "intent": "Greet"}).must(t, http.StatusOK)
		if got := firstReply(t, r); got != "hi alice" {
			t.Fatalf("turn %d: %q", i, got)
		}
	}

	metrics := do(t, "GET", ta.URL+"/metrics", "", nil).must(t, http.StatusOK).Raw
	for _, line := range []string{
		`parley_sandbox_starts_total{bot="elastic",start="cold"} 1`,
		`parley_sandbox_starts_total{bot="elastic",start="warm"} 2`,
		"parley_sandbox_pools 1", "parley_sandbox_vms 1", "parley_sandbox_idle_vms 1",
		"parley_sandbox_cold_starts_total 1", "parley_sandbox_warm_starts_total 2",
		"parley_sandbox_reaped_vms_total 0", "parley_sandbox_reaped_pools_total 0",
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// Usage is written in the background: wait until all three turns are in.
	var total, day map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", ta.URL+"/v1/bots/elastic/usage", adminKey, nil).must(t, http.StatusOK)
		total, _ = r.Body["total"].(map[string]any)
		if total["invocations"] == float64(3) {
			days, _ := r.Body["days"].([]any)
			day, _ = days[len(days)-1].(map[string]any)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never counted 3 invocations: %s", r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if total["cold_starts"] != float64(1) || total["warm_starts"] != float64(2) {
		t.Errorf("usage total %v", total)
	}
	if day["cold_starts"] != float64(1) || day["warm_starts"] != float64(2) {
		t.Errorf("usage of today %v", day)
	}
	logs := do(t, "GET", ta.URL+"/v1/bots/elastic/logs", adminKey, nil).must(t, http.StatusOK).Body["invocations"].([]any)
	if len(logs) != 3 || logs[2].(map[string]any)["cold_start"] != true || logs[0].(map[string]any)["cold_start"] != nil {
		t.Errorf("invocation log %v", logs)
	}
}

func TestPoolSettings(t *testing.T) {
	ta := startRedisApp(t)
	r := do(t, "PUT", ta.URL+"/v1/bots/toowarm", adminKey, map[string]any{"min_vms": 5, "max_vms": 2}).must(t, http.StatusBadRequest)
	if !strings.Contains(r.Raw, "min_vms (5) must not be larger than max_vms (2)") {
		t.Errorf("answer %s", r.Raw)
	}
	do(t, "PUT", ta.URL+"/v1/bots/toobig", adminKey, map[string]any{"max_vms": 1000}).must(t, http.StatusBadRequest)

	// A bot with min_vms keeps that many VMs per handler after its first turn.
	ta.setupBot(t, "warm", map[string]any{"min_vms": 2, "max_vms": 3}, map[string]string{"Greet": `function handle() return "hi" end`})
	ta.say(t, "warm", map[string]any{"user": "alice", "intent": "Greet"}).must(t, http.StatusOK)
	deadline := time.Now().Add(10 * time.Second)
	for ta.runtime.Stats().IdleVMs != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not fill to min_vms: %+v", ta.runtime.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	info := do(t, "GET", ta.URL+"/v1/bots/warm", adminKey, nil).must(t, http.StatusOK).Body
	if s, _ := info["settings"].(map[string]any); s["min_vms"] != float64(2) || s["max_vms"] != float64(3) {
		t.Errorf("settings %v", info["settings"])
	}
	if st := ta.runtime.Stats(); st.VMs != 2 {
		t.Errorf("stats %+v", st)
	}
}
