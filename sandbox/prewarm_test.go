package sandbox

import (
	"context"
	"testing"
	"time"
)

// TestPrewarm: a prewarmed pool has its minimum ready before the first call,
// which is then warm; the reaper keeps the minimum.
func TestPrewarm(t *testing.T) {
	clk := newTestClock()
	rt := newRuntime(Config{IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	rt.Prewarm(testKey, 0, 0) // no minimum: nothing happens
	if st := rt.Stats(); st.Pools != 0 || st.VMs != 0 {
		t.Fatalf("after a prewarm without a minimum: %+v", st)
	}
	rt.Prewarm(testKey, 2, 4)
	waitFor(t, "the prewarmed pool to fill", func() bool { return rt.Stats().IdleVMs == 2 })
	clk.Add(time.Hour)
	rt.reap(clk.Now())
	if st := rt.Stats(); st.Pools != 1 || st.VMs != 2 || st.ReapedVMs != 0 {
		t.Fatalf("the reaper took prewarmed VMs: %+v", st)
	}
	prog := mustCompile(t, `function handle() return "ok" end`)
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), MinVMs: 2, MaxVMs: 4})
	if err != nil || !res.WarmStart || res.ColdStart {
		t.Fatalf("first call after prewarm: %+v, %v; want a warm start", res, err)
	}
	if st := rt.Stats(); st.ColdStarts != 0 {
		t.Errorf("cold starts = %d, want 0", st.ColdStarts)
	}
	rt.Close()
	rt.Prewarm(PoolKey{Bot: "other"}, 1, 1) // after Close: nothing, no panic
}
