package sandbox

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// realisticHandler is a small but typical handler: it reads three event
// fields, updates the session and returns a reply table with options.
const realisticHandler = `function handle(e, s)
  s.turns = (s.turns or 0) + 1
  local size = e.slots.size or "medium"
  if string.find(e.text, "margherita", 1, true) then
    s.pizza = "margherita"
  end
  return {
    text = "One " .. size .. " " .. (s.pizza or "pizza") .. " for " .. e.user .. "?",
    options = {"Yes", "No"},
  }
end`

const realisticReply = "One large margherita for ann?"

// rawRealistic is realisticHandler on a pooled plain gopher-lua state, like
// rawPool: all libraries, shared globals, no context, an event table with
// just the fields the handler reads and a session table with one number;
// only the reply's text is read back.
type rawRealistic struct {
	pool chan *lua.LState
	ev   struct{ user, text, size lua.LString }
}

func newRawRealistic(tb testing.TB) *rawRealistic {
	chunk, err := parse.Parse(strings.NewReader(realisticHandler), "Order.lua")
	if err != nil {
		tb.Fatal(err)
	}
	proto, err := lua.Compile(chunk, "Order.lua")
	if err != nil {
		tb.Fatal(err)
	}
	proto.IsVarArg &^= lua.VarArgNeedsArg
	L := lua.NewState()
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 0, nil); err != nil {
		tb.Fatal(err)
	}
	ev := benchEvent()
	p := &rawRealistic{pool: make(chan *lua.LState, 1)}
	p.ev.user, p.ev.text, p.ev.size = lua.LString(ev.User), lua.LString(ev.Text), lua.LString(ev.Slots["size"])
	p.pool <- L
	return p
}

func (p *rawRealistic) call(tb testing.TB) {
	L := <-p.pool
	event := L.CreateTable(0, 3)
	event.RawSetString("user", p.ev.user)
	event.RawSetString("text", p.ev.text)
	slots := L.CreateTable(0, 1)
	slots.RawSetString("size", p.ev.size)
	event.RawSetString("slots", slots)
	session := L.CreateTable(0, 1)
	session.RawSetString("turns", lua.LNumber(3))
	L.Push(L.GetGlobal("handle"))
	L.Push(event)
	L.Push(session)
	if err := L.PCall(2, 1, nil); err != nil {
		tb.Fatal(err)
	}
	reply, ok := L.Get(-1).(*lua.LTable)
	if !ok || reply.RawGetString("text").String() != realisticReply {
		tb.Fatalf("reply %v", L.Get(-1))
	}
	L.Pop(1)
	p.pool <- L
}

// BenchmarkProtectionsRealistic is extra information beside
// BenchmarkProtections, whose one-line handler shows the fixed cost of a
// call at its largest: the same comparison with realisticHandler, in
// alternating batches of 64 calls, reporting the protections' cost as the
// ratio of the totals and as the median of the rounds' ratios.
func BenchmarkProtectionsRealistic(b *testing.B) {
	ctx := context.Background()
	raw := newRawRealistic(b)
	rt := New(Config{})
	b.Cleanup(rt.Close)
	call := benchCall(b, PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 2})
	prog, err := Compile("Order.lua", realisticHandler)
	if err != nil {
		b.Fatal(err)
	}
	call.Program = prog
	run := func() {
		call.Session = map[string]any{"turns": int64(3)}
		res, err := rt.Run(ctx, call)
		if err != nil || res.Reply.Text != realisticReply || res.Session["turns"] != int64(4) {
			b.Fatalf("got %+v, %v", res, err)
		}
	}
	run()
	const batch = 64
	var rawTotal, sbTotal time.Duration
	var ratios []float64
	for b.Loop() {
		t0 := time.Now()
		for range batch {
			raw.call(b)
		}
		t1 := time.Now()
		for range batch {
			run()
		}
		t2 := time.Now()
		rawTotal += t1.Sub(t0)
		sbTotal += t2.Sub(t1)
		ratios = append(ratios, float64(t2.Sub(t1))/float64(t1.Sub(t0)))
	}
	slices.Sort(ratios)
	n := float64(b.N * batch)
	pct := 100 * (float64(sbTotal) - float64(rawTotal)) / float64(rawTotal)
	median := 100 * (ratios[len(ratios)/2] - 1)
	b.ReportMetric(float64(rawTotal.Nanoseconds())/n, "raw-ns/call")
	b.ReportMetric(float64(sbTotal.Nanoseconds())/n, "sandbox-ns/call")
	b.ReportMetric(pct, "overhead-%")
	b.ReportMetric(median, "median-overhead-%")
	b.Logf("realistic handler: raw %.0f ns; sandbox %.0f ns: protections cost %.0f%% (median of rounds %.0f%%)",
		float64(rawTotal.Nanoseconds())/n, float64(sbTotal.Nanoseconds())/n, pct, median)
}
