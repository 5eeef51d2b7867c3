package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a clock that moves only when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// gateKV is a KV whose Get blocks until the gate opens, so a handler that
// calls store.get holds its VM for as long as the test wants. It counts the
// handlers inside Get at once.
type gateKV struct {
	entered chan struct{} // one send per Get
	open    chan struct{} // closed to let every Get return
	inside  atomic.Int32
	most    atomic.Int32
}

func newGateKV() *gateKV {
	return &gateKV{entered: make(chan struct{}, 100), open: make(chan struct{})}
}

func (g *gateKV) Get(ctx context.Context, _, _ string) ([]byte, bool, error) {
	n := g.inside.Add(1)
	defer g.inside.Add(-1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.entered <- struct{}{}
	select {
	case <-g.open:
		return nil, false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (g *gateKV) Set(context.Context, string, string, []byte, time.Duration) error { return nil }
func (g *gateKV) Delete(context.Context, string, string) error                     { return nil }

const gatedHandler = `function handle(e) store.get("k") return "ok" end`

// waitFor polls cond until it holds, failing the test after a generous
// deadline. It waits for background work to reach a state; it asserts
// nothing about how long that took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(scaled(10 * time.Second))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waiting is the number of calls waiting for a VM of key.
func waiting(rt *Runtime, key PoolKey) int {
	p, ok := rt.pools.Load(key)
	if !ok {
		return 0
	}
	pl := p.(*pool)
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.waiters)
}

// receive takes n sends from ch.
func receive(t *testing.T, ch <-chan struct{}, n int) {
	t.Helper()
	for range n {
		select {
		case <-ch:
		case <-time.After(scaled(10 * time.Second)):
			t.Fatalf("gave up waiting for %d handlers to start", n)
		}
	}
}

func TestPoolGrowsUnderDemandUpToMax(t *testing.T) {
	gate := newGateKV()
	rt := newRuntime(Config{KV: gate, MaxVMsPerPool: 8, DefaultTimeout: testTimeout}, newTestClock().Now)
	defer rt.Close()
	prog := mustCompile(t, gatedHandler)
	run := func(maxVMs int) (Result, error) {
		return rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), MaxVMs: maxVMs})
	}
	var wg sync.WaitGroup
	results := make(chan Result, 11)
	for range 10 {
		wg.Go(func() {
			res, err := run(3)
			if err != nil {
				t.Error(err)
			}
			results <- res
		})
	}
	receive(t, gate.entered, 3)
	waitFor(t, "7 waiting calls", func() bool { return waiting(rt, testKey) == 7 })
	if st := rt.Stats(); st.VMs != 3 || st.ColdStarts != 3 || st.Pools != 1 {
		t.Errorf("with 3 of 10 calls running: stats %+v", st)
	}

	// A call that raises the pool's maximum lets two waiting calls build VMs.
	wg.Go(func() {
		res, err := run(5)
		if err != nil {
			t.Error(err)
		}
		results <- res
	})
	receive(t, gate.entered, 2)
	waitFor(t, "6 waiting calls", func() bool { return waiting(rt, testKey) == 6 })
	if st := rt.Stats(); st.VMs != 5 || st.ColdStarts != 5 {
		t.Errorf("after raising the maximum to 5: stats %+v", st)
	}

	close(gate.open)
	wg.Wait()
	close(results)
	cold, warm := 0, 0
	for res := range results {
		if res.ColdStart == res.WarmStart {
			t.Errorf("cold %v, warm %v", res.ColdStart, res.WarmStart)
		}
		if res.ColdStart {
			cold++
		} else {
			warm++
		}
	}
	if cold != 5 || warm != 6 {
		t.Errorf("%d cold and %d warm starts, want 5 and 6", cold, warm)
	}
	if most := gate.most.Load(); most != 5 {
		t.Errorf("%d handlers ran at once, want 5", most)
	}
	if st := rt.Stats(); st.VMs != 5 || st.IdleVMs != 5 || st.ColdStarts != 5 || st.WarmStarts != 6 {
		t.Errorf("at the end: stats %+v", st)
	}
}

func TestPoolLowerMaxClosesReturningVMs(t *testing.T) {
	gate := newGateKV()
	rt := newRuntime(Config{KV: gate, DefaultTimeout: testTimeout}, newTestClock().Now)
	defer rt.Close()
	prog := mustCompile(t, gatedHandler)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), MaxVMs: 3}); err != nil {
				t.Error(err)
			}
		})
	}
	receive(t, gate.entered, 3)
	close(gate.open)
	wg.Wait()
	// The bot's maximum drops to 1: the next call takes an idle VM, and
	// the extra idle ones go at the next returns or with the reaper.
	quick := mustCompile(t, `function handle() return "ok" end`)
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: quick, Event: testEvent(), MaxVMs: 1})
	if err != nil || !res.WarmStart {
		t.Fatalf("got %+v, %v", res, err)
	}
	if st := rt.Stats(); st.VMs != 2 || st.Discarded != 1 {
		t.Errorf("stats %+v, want the returning VM closed", st)
	}
}

func TestPoolMinStaysWarm(t *testing.T) {
	clk := newTestClock()
	rt := newRuntime(Config{IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	prog := mustCompile(t, `function handle() return "ok" end`)
	call := Call{Key: testKey, Program: prog, Event: testEvent(), MinVMs: 2, MaxVMs: 4}
	res, err := rt.Run(context.Background(), call)
	if err != nil || !res.ColdStart {
		t.Fatalf("got %+v, %v", res, err)
	}
	waitFor(t, "the pool to fill to its minimum", func() bool { return rt.Stats().IdleVMs == 2 })
	clk.Add(time.Hour)
	rt.reap(clk.Now())
	if st := rt.Stats(); st.Pools != 1 || st.VMs != 2 || st.IdleVMs != 2 || st.ReapedVMs != 0 {
		t.Errorf("after an idle hour: stats %+v", st)
	}
	// Both calls find a warm VM.
	for range 2 {
		if res, err := rt.Run(context.Background(), call); err != nil || !res.WarmStart {
			t.Fatalf("got %+v, %v", res, err)
		}
	}
	// The bot drops its minimum: the pool may now scale to zero.
	call.MinVMs = 0
	if _, err := rt.Run(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	rt.reap(clk.Now())
	if st := rt.Stats(); st.Pools != 0 || st.VMs != 0 || st.IdleVMs != 0 || st.ReapedVMs != 2 || st.ReapedPools != 1 {
		t.Errorf("after the minimum dropped: stats %+v", st)
	}
}

func TestPoolScalesToZero(t *testing.T) {
	gate := newGateKV()
	clk := newTestClock()
	rt := newRuntime(Config{KV: gate, IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	prog := mustCompile(t, gatedHandler)
	call := Call{Key: testKey, Program: prog, Event: testEvent()}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := rt.Run(context.Background(), call); err != nil {
				t.Error(err)
			}
		})
	}
	receive(t, gate.entered, 3)
	close(gate.open)
	wg.Wait() // three VMs, idle since t0

	clk.Add(30 * time.Second)
	if res, err := rt.Run(context.Background(), call); err != nil || !res.WarmStart {
		t.Fatalf("got %+v, %v", res, err)
	}
	// One VM was used at t0+30s; the other two have been idle since t0.
	clk.Add(31 * time.Second)
	rt.reap(clk.Now())
	if st := rt.Stats(); st.Pools != 1 || st.VMs != 1 || st.IdleVMs != 1 || st.ReapedVMs != 2 {
		t.Errorf("at t0+61s: stats %+v", st)
	}
	clk.Add(30 * time.Second)
	rt.reap(clk.Now())
	if st := rt.Stats(); st.Pools != 0 || st.VMs != 0 || st.IdleVMs != 0 || st.ReapedVMs != 3 || st.ReapedPools != 1 {
		t.Errorf("at t0+91s: stats %+v", st)
	}
	// The key works again, from a cold start.
	res, err := rt.Run(context.Background(), call)
	if err != nil || !res.ColdStart {
		t.Fatalf("after scaling to zero: %+v, %v", res, err)
	}
	if st := rt.Stats(); st.Pools != 1 || st.VMs != 1 {
		t.Errorf("after scaling to zero and a call: stats %+v", st)
	}
}

func TestPoolReapedAfterLookup(t *testing.T) {
	clk := newTestClock()
	rt := newRuntime(Config{IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	// A call found the pool just before the reaper forgot it.
	p, err := rt.pool(testKey)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	rt.reap(clk.Now())
	if _, _, err := p.get(context.Background(), 0, 0); !errors.Is(err, errPoolGone) {
		t.Fatalf("get on a reaped pool: %v", err)
	}
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, `function handle() return "ok" end`), Event: testEvent()})
	if err != nil || res.Reply.Text != "ok" || !res.ColdStart {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestPoolRedeploy(t *testing.T) {
	clk := newTestClock()
	rt := newRuntime(Config{IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	v1 := Call{Key: testKey, Program: mustCompile(t, `function handle() return "v1" end`), Event: testEvent(), MinVMs: 1}
	v2 := v1
	v2.Key.Version++
	v2.Program = mustCompile(t, `function handle() return "v2" end`)
	if res, err := rt.Run(context.Background(), v1); err != nil || res.Reply.Text != "v1" {
		t.Fatalf("v1: %+v, %v", res, err)
	}
	// A new version is deployed: the old pool is dropped, even with a minimum.
	rt.Drop(v1.Key)
	if res, err := rt.Run(context.Background(), v2); err != nil || res.Reply.Text != "v2" || !res.ColdStart {
		t.Fatalf("v2: %+v, %v", res, err)
	}
	// A turn that still runs the old version gets a fresh pool.
	if res, err := rt.Run(context.Background(), v1); err != nil || res.Reply.Text != "v1" || !res.ColdStart {
		t.Fatalf("v1 after the drop: %+v, %v", res, err)
	}
	waitFor(t, "both pools to fill", func() bool { return rt.Stats().IdleVMs == 2 })
	rt.Drop(v1.Key)
	if st := rt.Stats(); st.Pools != 1 || st.VMs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPoolWaiterGivesUp(t *testing.T) {
	gate := newGateKV()
	rt := newRuntime(Config{KV: gate, MaxVMsPerPool: 1, DefaultTimeout: testTimeout}, newTestClock().Now)
	defer rt.Close()
	prog := mustCompile(t, gatedHandler)
	done := make(chan error)
	go func() {
		_, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
		done <- err
	}()
	receive(t, gate.entered, 1)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := rt.Run(ctx, Call{Key: testKey, Program: prog, Event: testEvent()})
		gaveUp <- err
	}()
	waitFor(t, "a waiting call", func() bool { return waiting(rt, testKey) == 1 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if n := waiting(rt, testKey); n != 0 {
		t.Errorf("%d waiters left", n)
	}
	close(gate.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
	if err != nil || !res.WarmStart {
		t.Fatalf("got %+v, %v", res, err)
	}
}

// TestPoolStress runs calls with random deadlines against small pools while
// the reaper runs on a real clock with a tiny idle timeout, then checks that
// the pools' books balance.
func TestPoolStress(t *testing.T) {
	rt := New(Config{IdleTimeout: time.Millisecond, DefaultTimeout: testTimeout})
	prog := mustCompile(t, `function handle(e)
  local t0 = os.clock()
  while os.clock() - t0 < 0.0002 do end
  return "ok"
end`)
	var wg sync.WaitGroup
	var ok, gaveUp atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 60 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(400))*time.Microsecond)
				key := testKey
				key.Intent = fmt.Sprint("intent", g%3)
				_, err := rt.Run(ctx, Call{Key: key, Program: prog, Event: testEvent(), MinVMs: i % 2, MaxVMs: 1 + g%2})
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					gaveUp.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st := rt.Stats()
	if st.ColdStarts+st.WarmStarts < uint64(ok.Load()) {
		t.Errorf("stats %+v for %d calls", st, ok.Load())
	}
	rt.pools.Range(func(_, v any) bool {
		p := v.(*pool)
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.waiters) != 0 || p.live > 2 {
			t.Errorf("pool with %d waiters and %d VMs", len(p.waiters), p.live)
		}
		return true
	})
	rt.Close()
	// VMs still being built for a pool's minimum are closed when they are done.
	waitFor(t, "every VM to close", func() bool { return rt.Stats().VMs == 0 })
	if st := rt.Stats(); st.IdleVMs != 0 || st.Pools != 0 {
		t.Errorf("after Close: stats %+v", st)
	}
	t.Logf("%d calls, %d gave up waiting, stats %+v", ok.Load(), gaveUp.Load(), st)
}

// TestProgramRemembersPool runs one program under changing keys, runtimes,
// drops and reaps: the pool it remembers must always be the live pool of
// the call's key in the call's runtime.
func TestProgramRemembersPool(t *testing.T) {
	clk := newTestClock()
	rt := newRuntime(Config{IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	other := New(Config{DefaultTimeout: testTimeout})
	defer other.Close()
	prog := mustCompile(t, `function handle() return "ok" end`)
	keyB := testKey
	keyB.Intent = "Other"
	for i, step := range []struct {
		before func()
		rt     *Runtime
		key    PoolKey
		cold   bool
	}{
		{nil, rt, testKey, true},
		{nil, rt, testKey, false},
		{func() { rt.Drop(testKey) }, rt, testKey, true},
		{nil, rt, keyB, true},
		{nil, rt, testKey, false},
		{nil, other, testKey, true},
		{nil, rt, testKey, false},
		{func() { clk.Add(2 * time.Minute); rt.reap(clk.Now()) }, rt, testKey, true},
		{nil, rt, testKey, false},
	} {
		if step.before != nil {
			step.before()
		}
		res, err := step.rt.Run(context.Background(), Call{Key: step.key, Program: prog, Event: testEvent()})
		if err != nil || res.Reply.Text != "ok" || res.ColdStart != step.cold {
			t.Fatalf("step %d: got %+v, %v; want a cold start: %v", i, res, err, step.cold)
		}
		p := prog.pool.Load()
		if live, ok := step.rt.pools.Load(step.key); !ok || live.(*pool) != p {
			t.Fatalf("step %d: the program remembers a pool that is not the key's live pool", i)
		}
	}
}
