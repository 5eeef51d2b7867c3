package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sandbox"
)

// TestMinVMsWarmBeforeTheFirstTurn: a bot with min_vms has its pools filled
// on every replica before any turn reaches it: on a replica that starts
// after the deploy, on the replica that took the deploy, and for a new
// version on a replica that only heard of it. Its turns are warm starts.
func TestMinVMsWarmBeforeTheFirstTurn(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "warm", map[string]any{"min_vms": 2}, map[string]string{"Count": counterHandler})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})

	waitIdle := func(ta *testApp, name string, version, want int) {
		t.Helper()
		key := sandbox.PoolKey{Bot: "warm", Intent: "Count", Version: version}
		deadline := time.Now().Add(10 * time.Second)
		for ta.runtime.IdleVMs(key) != want {
			if time.Now().After(deadline) {
				t.Fatalf("replica %s: %d idle VMs for %s, want %d", name, ta.runtime.IdleVMs(key), key, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitIdle(a, "a", 1, 2) // the replica that took the deploy
	waitIdle(b, "b", 1, 2) // a replica started afterwards

	// A new version, uploaded through a: b fills its pool from the
	// announcement alone, and drops the old one.
	do(t, "PUT", a.URL+"/v1/bots/warm/intents/Count", adminKey, counterHandler+"\n-- v2").must(t, http.StatusCreated)
	waitIdle(b, "b", 2, 2)
	waitIdle(b, "b", 1, 0)

	before := b.runtime.Stats().ColdStarts
	for range 3 {
		b.say(t, "warm", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK)
	}
	if cold := b.runtime.Stats().ColdStarts - before; cold != 0 {
		t.Errorf("%d cold starts on a prewarmed pool, want 0", cold)
	}

	// A bot without min_vms is not loaded or warmed before its first turn.
	a.setupBot(t, "lazy", nil, map[string]string{"Count": counterHandler})
	time.Sleep(300 * time.Millisecond)
	if n := b.runtime.IdleVMs(sandbox.PoolKey{Bot: "lazy", Intent: "Count", Version: 1}); n != 0 {
		t.Errorf("a bot without min_vms has %d idle VMs before any turn", n)
	}
}
