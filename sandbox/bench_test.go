package sandbox

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
	lua "github.com/yuin/gopher-lua"
)

const benchHandler = `function handle(e, s) return "Hello, " .. e.user end`

func benchEvent() *msg.Event {
	return &msg.Event{
		ID:           "m-1",
		Bot:          "pizzeria",
		Channel:      "web",
		User:         "ann",
		Conversation: "c-42",
		Text:         "I'd like a large margherita",
		Slots:        map[string]string{"size": "large"},
		Locale:       "en-US",
		Timestamp:    time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC),
	}
}

func benchCall(b *testing.B, key PoolKey) Call {
	b.Helper()
	prog, err := Compile("Hello.lua", benchHandler)
	if err != nil {
		b.Fatal(err)
	}
	return Call{
		Key:     key,
		Program: prog,
		Event:   benchEvent(),
		Route:   msg.Decision{Intent: "OrderPizza", Source: msg.SourceClassifier, Confidence: 0.93},
		Session: map[string]any{},
	}
}

// reportMedian reports the median and 90th percentile of per-call times.
func reportMedian(b *testing.B, samples []time.Duration, target time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	median := samples[len(samples)/2]
	p90 := samples[len(samples)*9/10]
	b.ReportMetric(float64(median.Nanoseconds()), "ns/call")
	b.ReportMetric(float64(p90.Nanoseconds()), "p90-ns/call")
	b.Logf("median %v (target < %v), p90 %v, %d calls", median, target, p90, len(samples))
}

// BenchmarkWarmCall is one turn of a trivial handler on a warm VM: building
// the event and session tables, running the chunk and handle, converting
// the reply and the session back.
func BenchmarkWarmCall(b *testing.B) {
	b.Run("target=median<3µs", func(b *testing.B) {
		rt := New(Config{})
		defer rt.Close()
		call := benchCall(b, PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 1})
		ctx := context.Background()
		if _, err := rt.Run(ctx, call); err != nil {
			b.Fatal(err)
		}
		samples := make([]time.Duration, 0, 1<<20)
		b.ReportAllocs()
		for b.Loop() {
			t0 := time.Now()
			res, err := rt.Run(ctx, call)
			samples = append(samples, time.Since(t0))
			if err != nil || res.Reply.Text != "Hello, ann" {
				b.Fatalf("got %+v, %v", res, err)
			}
		}
		reportMedian(b, samples, 3*time.Microsecond)
	})
}

// BenchmarkWarmCallCancelableCtx is BenchmarkWarmCall with a caller context
// that can be cancelled, as a request context can: the deadline then also
// watches the caller with context.AfterFunc.
func BenchmarkWarmCallCancelableCtx(b *testing.B) {
	rt := New(Config{})
	defer rt.Close()
	call := benchCall(b, PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.Run(ctx, call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmCallParallel runs warm calls on one pool from GOMAXPROCS goroutines.
func BenchmarkWarmCallParallel(b *testing.B) {
	rt := New(Config{})
	defer rt.Close()
	call := benchCall(b, PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 1})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rt.Run(ctx, call); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFirstCallAfterUpload is an upload followed by its first turn:
// Compile (parse, compile, validation VM) and a Run that builds a new VM.
func BenchmarkFirstCallAfterUpload(b *testing.B) {
	b.Run("target=median<1ms", func(b *testing.B) {
		rt := New(Config{})
		defer rt.Close()
		ev := benchEvent()
		ctx := context.Background()
		samples := make([]time.Duration, 0, 1<<14)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			key := PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: i}
			t0 := time.Now()
			prog, err := Compile("Hello.lua", benchHandler)
			if err != nil {
				b.Fatal(err)
			}
			res, err := rt.Run(ctx, Call{Key: key, Program: prog, Event: ev})
			samples = append(samples, time.Since(t0))
			if err != nil || !res.ColdStart {
				b.Fatalf("got %+v, %v", res, err)
			}
			rt.Drop(key)
		}
		reportMedian(b, samples, time.Millisecond)
	})
}

// BenchmarkDeadline compares arming the per-VM deadline with what
// context.WithTimeout costs per call; both poll Done once, as the VM does
// before each instruction.
func BenchmarkDeadline(b *testing.B) {
	ctx := context.Background()
	b.Run("vm-deadline", func(b *testing.B) {
		d := newDeadline()
		defer d.stop()
		b.ReportAllocs()
		for b.Loop() {
			d.arm(ctx, time.Now(), time.Second)
			select {
			case <-d.Done():
				b.Fatal("fired early")
			default:
			}
			_, _ = d.disarm()
		}
	})
	b.Run("context.WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, cancel := context.WithTimeout(ctx, time.Second)
			select {
			case <-c.Done():
				b.Fatal("fired early")
			default:
			}
			cancel()
		}
	})
}

// BenchmarkEventTable compares the lazy event argument, as a handler that
// reads two fields uses it, with a fully materialized one, which is what
// building the table eagerly costs on every call.
func BenchmarkEventTable(b *testing.B) {
	ev := benchEvent()
	route := msg.Decision{Intent: "OrderPizza", Source: msg.SourceClassifier, Confidence: 0.93}
	b.Run("lazy-2-reads", func(b *testing.B) {
		v := newVM(vmConfig{})
		defer v.close()
		b.ReportAllocs()
		for b.Loop() {
			v.newEventTable(ev, &route, nil)
			v.eventValue(evUser)
			v.eventValue(evText)
		}
	})
	b.Run("materialized", func(b *testing.B) {
		v := newVM(vmConfig{})
		defer v.close()
		b.ReportAllocs()
		for b.Loop() {
			v.materialize(v.newEventTable(ev, &route, nil))
		}
	})
}

// BenchmarkSessionBack converts a small session table back to Go values
// with its JSON size, as every call that leaves its session non-empty does.
func BenchmarkSessionBack(b *testing.B) {
	v := newVM(vmConfig{})
	defer v.close()
	t := v.L.CreateTable(0, 4)
	t.RawSetString("turns", lua.LNumber(4))
	t.RawSetString("pizza", lua.LString("margherita"))
	cart := v.L.CreateTable(2, 0)
	cart.Append(lua.LString("diavola"))
	cart.Append(lua.LString("marinara"))
	t.RawSetString("cart", cart)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.sessionFromLua("Order.lua", t, nil, 1<<16); err != nil {
			b.Fatal(err)
		}
	}
}
