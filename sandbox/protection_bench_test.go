package sandbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// rawPool is benchHandler on a pooled plain gopher-lua state: all
// libraries, shared globals, no context, an event table with the one field
// the handler reads, and an empty session.
type rawPool struct {
	pool  chan *lua.LState
	user  lua.LString
	proto *lua.FunctionProto
	// With deadline, each call runs under a context.WithTimeout (the
	// per-instruction check); with freshEnv, each call runs the main chunk
	// in a new global table (per-call isolation of globals).
	deadline, freshEnv bool
}

func newRawPool(tb testing.TB) *rawPool {
	chunk, err := parse.Parse(strings.NewReader(benchHandler), "Hello.lua")
	if err != nil {
		tb.Fatal(err)
	}
	proto, err := lua.Compile(chunk, "Hello.lua")
	if err != nil {
		tb.Fatal(err)
	}
	proto.IsVarArg &^= lua.VarArgNeedsArg // as Compile does
	L := lua.NewState()
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 0, nil); err != nil {
		tb.Fatal(err)
	}
	p := &rawPool{pool: make(chan *lua.LState, 1), user: lua.LString(benchEvent().User), proto: proto}
	p.pool <- L
	return p
}

func (p *rawPool) call(tb testing.TB) {
	L := <-p.pool
	if p.deadline {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		L.SetContext(ctx)
		defer L.RemoveContext()
	}
	handle := L.GetGlobal("handle")
	if p.freshEnv {
		env := L.CreateTable(0, 2)
		env.Metatable = L.G.Global // stand-in for the env's __index metatable
		fn := L.NewFunctionFromProto(p.proto)
		fn.Env = env
		L.Push(fn)
		if err := L.PCall(0, 0, nil); err != nil {
			tb.Fatal(err)
		}
		handle = env.RawGetString("handle")
	}
	event := L.CreateTable(0, 1)
	event.RawSetString("user", p.user)
	L.Push(handle)
	L.Push(event)
	L.Push(L.CreateTable(0, 0))
	if err := L.PCall(2, 1, nil); err != nil {
		tb.Fatal(err)
	}
	if s := L.Get(-1).String(); s != "Hello, ann" {
		tb.Fatal(s)
	}
	L.Pop(1)
	p.pool <- L
}

// BenchmarkProtections compares a warm call of benchHandler through the
// Runtime, with every protection on (fresh globals per call, deadline and
// instruction count, heap guard, capped built-ins and .., lazy event,
// session and reply conversion with limits), with the same handler on a
// pooled plain gopher-lua state (rawPool). Target: protections cost under
// 30%.
//
// The overhead sub-benchmark alternates batches of both, so that a noisy
// machine slows both alike, and reports their ratio.
func BenchmarkProtections(b *testing.B) {
	ctx := context.Background()
	b.Run("raw-gopher-lua", func(b *testing.B) {
		p := newRawPool(b)
		b.ReportAllocs()
		for b.Loop() {
			p.call(b)
		}
	})
	sandboxCall := func(b *testing.B) func() {
		rt := New(Config{})
		b.Cleanup(rt.Close)
		call := benchCall(b, PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 1})
		return func() {
			res, err := rt.Run(ctx, call)
			if err != nil || res.Reply.Text != "Hello, ann" {
				b.Fatalf("got %+v, %v", res, err)
			}
		}
	}
	b.Run("sandbox", func(b *testing.B) {
		run := sandboxCall(b)
		run()
		b.ReportAllocs()
		for b.Loop() {
			run()
		}
	})
	b.Run("overhead", func(b *testing.B) {
		p := newRawPool(b)
		withDeadline := newRawPool(b)
		withDeadline.deadline = true
		withEnv := newRawPool(b)
		withEnv.freshEnv = true
		run := sandboxCall(b)
		run()
		const batch = 64
		var raw, dl, env, sb time.Duration
		// ratios are each round's sandbox batch over its raw batch: their
		// median is not moved by the rounds another process preempted.
		var ratios []float64
		for b.Loop() {
			t0 := time.Now()
			for range batch {
				p.call(b)
			}
			t1 := time.Now()
			for range batch {
				withDeadline.call(b)
			}
			t2 := time.Now()
			for range batch {
				withEnv.call(b)
			}
			t3 := time.Now()
			for range batch {
				run()
			}
			t4 := time.Now()
			raw += t1.Sub(t0)
			dl += t2.Sub(t1)
			env += t3.Sub(t2)
			sb += t4.Sub(t3)
			ratios = append(ratios, float64(t4.Sub(t3))/float64(t1.Sub(t0)))
		}
		slices.Sort(ratios)
		median := 100 * (ratios[len(ratios)/2] - 1)
		n := float64(b.N * batch)
		pct := func(d time.Duration) float64 { return 100 * (float64(d) - float64(raw)) / float64(raw) }
		b.ReportMetric(float64(raw.Nanoseconds())/n, "raw-ns/call")
		b.ReportMetric(float64(sb.Nanoseconds())/n, "sandbox-ns/call")
		b.ReportMetric(pct(sb), "overhead-%")
		b.ReportMetric(median, "median-overhead-%")
		b.Logf("raw %.0f ns; +deadline %+.0f%%; +fresh globals %+.0f%%; sandbox %.0f ns: protections cost %.0f%% (median of rounds %.0f%%; target < 30%%)",
			float64(raw.Nanoseconds())/n, pct(dl), pct(env), float64(sb.Nanoseconds())/n, pct(sb), median)
	})
}

// BenchmarkVMMemory measures the heap an idle pooled VM keeps, after one
// call: N pools of one VM each, heap delta after collection divided by N.
// Target: under 100 KiB per VM.
func BenchmarkVMMemory(b *testing.B) {
	const n = 200
	prog, err := Compile("Hello.lua", benchHandler)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	measure := func() float64 {
		before := heapInUse()
		rt := New(Config{MaxVMsPerPool: 1})
		defer rt.Close()
		for i := range n {
			if _, err := rt.Run(ctx, Call{Key: PoolKey{Bot: "b", Intent: "I", Version: i}, Program: prog, Event: benchEvent()}); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		if st := rt.Stats(); st.VMs != n {
			b.Fatalf("stats %+v", st)
		}
		runtime.KeepAlive(rt)
		return float64(after-before) / n / 1024
	}
	var perVM float64
	for b.Loop() {
		perVM = measure()
	}
	b.ReportMetric(perVM, "KiB/VM")
	b.Logf("%.1f KiB per idle pooled VM (target < 100 KiB)", perVM)
}

// hostileBench is a hostile handler for BenchmarkTimeToStop.
type hostileBench struct {
	name string
	body string
	// heap runs the case with a heap limit 64 MiB above the current heap
	// and a 5 s timeout, so that the heap guard has to stop it.
	heap bool
}

var hostileBenches = []hostileBench{
	{name: "infinite-loop", body: `while true do end`},
	{name: "pcall-loop", body: `while true do pcall(function() while true do end end) end`},
	{name: "xpcall-handler-loop", body: `while true do xpcall(function() while true do end end, function() while true do end end) end`},
	{name: "recursion", body: `local function f() return 1 + f() end return f()`},
	{name: "string-doubling", body: `local x = "x" while true do x = x .. x end`},
	{name: "table-filling", body: `local t, i = {}, 0 while true do i = i + 1 t[i] = {i} end`},
	{name: "string-table-filling", body: `local t, c, i = {}, string.rep("x", 65536), 0 while true do i = i + 1 t[i] = c .. i end`},
	{name: "heap-guard", body: `local t, c, i = {}, string.rep("x", 65536), 0 while true do i = i + 1 t[i] = c .. i end`, heap: true},
	{name: "pattern-loop", body: `local s = string.rep("a", 4000) while true do pcall(string.find, s, "(.-)(.-)b") end`},
	{name: "regexp-loop", body: `local s = string.rep("a", 60000) while true do re.test(s, "(a*)*b") end`},
	{name: "tostring-metamethod", body: `log(setmetatable({}, {__tostring = function() while true do end end}))`},
	{name: "gsub-callback", body: `string.gsub(string.rep("a", 16000), ".", function() while true do end end)`},
	{name: "sort-comparator", body: `local t = {3, 2, 1} table.sort(t, function(a, b) while true do end end)`},
	{name: "unpack", body: `return select("#", unpack({}, 1, 1e8))`},
	{name: "tail-call", body: `local function f() return f() end return f()`},
	{name: "tail-call-args", body: `local function f(n) return f(n + 1) end return f(1)`},
	{name: "tail-call-mutual", body: `local g local function f(n) return g(n + 1) end g = function(n) return f(n) end return f(1)`},
	{name: "xpcall-handler-return", body: `return xpcall(error, function() while true do end end)`},
	{name: "json-decode-loop", body: `local p = {} for i = 1, 36000 do p[i] = '[1,"abcdefgh",{"k":2}]' end
local doc = "[" .. table.concat(p, ",") .. "]" while true do json.decode(doc) end`},
	{name: "regexp-replace-keep", body: `local k, s = {}, string.rep("a", 65536) while true do k[#k + 1] = re.replace(s, "a", "bbbbbbbbbbbbbbbb") end`},
	{name: "index-metamethod", body: `return setmetatable({}, {__index = function() while true do end end}).x`},
	{name: "eq-metamethod", body: `local mt = {__eq = function() while true do end end} return setmetatable({}, mt) == setmetatable({}, mt)`},
	{name: "lt-metamethod", body: `local mt = {__lt = function() while true do end end} return setmetatable({}, mt) < setmetatable({}, mt)`},
	{name: "concat-metamethod", body: `return setmetatable({}, {__concat = function() while true do end end}) .. "x"`},
	{name: "huge-error", body: `local x = string.rep("x", 60000) error(x .. x .. x .. x)`},
	{name: "gsub-growth", body: `local big = string.rep("y", 60000) return (string.gsub(string.rep("x", 1000), "x", function() return big end))`},
}

// BenchmarkTimeToStop measures, for each hostile case, the time from the
// call's start until Run returns, against a 100 ms handler timeout.
// Target: within 1.5x the timeout. Cases a cap stops at once take
// microseconds. The heap-guard case runs with a 5 s timeout and a heap
// limit 64 MiB above the current heap, and also reports how far the heap
// went past the limit.
func BenchmarkTimeToStop(b *testing.B) {
	for _, hb := range hostileBenches {
		b.Run(hb.name, func(b *testing.B) {
			timeout := 100 * time.Millisecond
			cfg := Config{}
			var limit uint64
			var peak atomic.Uint64
			if hb.heap {
				timeout = 5 * time.Second
				limit = heapInUse() + 64<<20
				cfg.HeapLimit = int64(limit)
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					var ms runtime.MemStats
					for {
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
						runtime.ReadMemStats(&ms)
						if ms.HeapAlloc > peak.Load() {
							peak.Store(ms.HeapAlloc)
						}
					}
				}()
			}
			rt := New(cfg)
			defer rt.Close()
			prog, err := Compile("Hostile.lua", fmt.Sprintf("function handle(e, s) %s end", hb.body))
			if err != nil {
				b.Fatal(err)
			}
			var worst time.Duration
			var kind ErrorKind
			for b.Loop() {
				if hb.heap {
					// Collect the previous round's garbage, so that the
					// peak is this round's.
					heapInUse()
				}
				start := time.Now()
				_, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: benchEvent(), Timeout: timeout})
				worst = max(worst, time.Since(start))
				var se *ScriptError
				if !errors.As(err, &se) {
					b.Fatalf("got %v", err)
				}
				kind = se.Kind
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			if hb.heap {
				over := (int64(peak.Load()) - int64(limit)) >> 20
				b.ReportMetric(float64(over), "peak-MiB-over-limit")
				b.Logf("%s: stopped within %v (%s); heap peaked %d MiB over its limit", hb.name, worst.Round(time.Microsecond), kind, over)
				return
			}
			b.ReportMetric(float64(worst)/float64(timeout), "x-timeout")
			b.Logf("%s: stopped within %v (%s), timeout %v, target < %v", hb.name, worst.Round(time.Microsecond), kind, timeout, 3*timeout/2)
		})
	}
}
