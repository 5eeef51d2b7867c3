package bots

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
)

// scaleHandler is a handler of typical size (about 1 KiB): a few branches,
// the session, slots and a reply with buttons. Each bot and intent gets its
// own copy, so no two programs are shared.
const scaleHandler = `-- %[1]s/%[2]s
local MENU = { margherita = 8.5, funghi = 9.5, diavola = 10, quattro = 11 }
local SIZES = { small = 0.8, medium = 1, large = 1.3 }

local function price(kind, size)
  local base = MENU[kind]
  if base == nil then return nil end
  return base * (SIZES[size] or 1)
end

function handle(e, s)
  s.turns = (s.turns or 0) + 1
  local kind = e.slots.pizza or s.pizza
  local size = e.slots.size or s.size or "medium"
  if kind == nil then
    return { text = "Which pizza would you like from %[1]s?", expect = "%[2]s",
      buttons = { "margherita", "funghi", "diavola", "quattro" } }
  end
  local p = price(kind, size)
  if p == nil then
    log("unknown pizza " .. tostring(kind))
    return { text = "Sorry, we have no " .. kind .. ".", expect = "%[2]s" }
  end
  s.pizza, s.size = kind, size
  s.total = (s.total or 0) + p
  return { text = string.format("A %%s %%s: %%.2f. Anything else?", size, kind, p),
    buttons = { "yes", "no" } }
end
`

// BenchmarkIdleBots deploys bots with five intents each through the
// catalog into the embedded store, calls every handler once, waits until
// the reaper has scaled every pool to zero, and reports the live heap:
// what a process holding that many idle bots needs. The target is 10,000
// bots in under 1 GiB. -short deploys 1,000 bots.
func BenchmarkIdleBots(b *testing.B) {
	bots, intentsPerBot := 10000, 5
	if testing.Short() {
		bots = 1000
	}
	b.Run(fmt.Sprintf("bots=%d/intents=%d/target=heap<1GiB", bots, intentsPerBot), func(b *testing.B) {
		for b.Loop() {
			benchIdleBots(b, bots, intentsPerBot)
		}
	})
}

func benchIdleBots(b *testing.B, bots, intentsPerBot int) {
	ctx := context.Background()
	base := liveHeap()
	st, err := store.Open(ctx, store.Config{DataDir: b.TempDir(), SnapshotInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rt := sandbox.New(sandbox.Config{IdleTimeout: 100 * time.Millisecond})
	defer rt.Close()
	c := New(st.Client(), Config{OnRetire: func(bot, intent string, version int) {
		rt.Drop(sandbox.PoolKey{Bot: bot, Intent: intent, Version: version})
	}})
	names := make([]string, bots)
	for i := range names {
		names[i] = fmt.Sprintf("bot-%05d", i)
	}

	start := time.Now()
	for _, name := range names {
		if _, err := c.PutBot(ctx, name, Settings{}); err != nil {
			b.Fatal(err)
		}
		for j := range intentsPerBot {
			intent := fmt.Sprintf("Intent%d", j)
			if _, _, err := c.PutHandler(ctx, name, intent, fmt.Sprintf(scaleHandler, name, intent)); err != nil {
				b.Fatal(err)
			}
		}
	}
	deployed := time.Since(start)

	start = time.Now()
	ev := &msg.Event{Channel: "web", User: "ann", Conversation: "ann", Text: "a large diavola",
		Slots: map[string]string{"pizza": "diavola", "size": "large"}}
	for _, name := range names {
		bot, err := c.Bot(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		if len(bot.Handlers) != intentsPerBot {
			b.Fatalf("%s has %d handlers", name, len(bot.Handlers))
		}
		e := *ev
		e.Bot = name
		for intent, h := range bot.Handlers {
			res, err := rt.Run(ctx, sandbox.Call{Key: sandbox.PoolKey{Bot: name, Intent: intent, Version: h.Version},
				Program: h.Program, Event: &e, Route: msg.Decision{Intent: intent}})
			if err != nil || !res.ColdStart {
				b.Fatalf("%s/%s: %+v, %v", name, intent, res, err)
			}
		}
	}
	called := time.Since(start)
	warm := rt.Stats()

	start = time.Now()
	for rt.Stats().Pools > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	reaped := time.Since(start)
	idle := rt.Stats()
	if idle.VMs != 0 {
		b.Fatalf("pools gone but VMs left: %+v", idle)
	}
	idleHeap := liveHeap()
	runtime.KeepAlive(c)

	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
	b.ReportMetric(mib(idleHeap), "heap-MiB")
	b.ReportMetric(float64(idleHeap-base)/float64(bots)/1024, "KiB/idle-bot")
	b.Logf("%d bots x %d intents: deployed in %v, every handler called once in %v (%d cold starts; %d VMs left, the rest reaped meanwhile), all pools reaped %v later",
		bots, intentsPerBot, deployed.Round(time.Millisecond), called.Round(time.Millisecond), warm.ColdStarts, warm.VMs,
		reaped.Round(time.Millisecond))
	b.Logf("live heap: %.0f MiB before, %.0f MiB with every pool scaled to zero (target < 1024 MiB); %.1f KiB per idle bot",
		mib(base), mib(idleHeap), float64(idleHeap-base)/float64(bots)/1024)
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
