package app

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// hostileCase is a handler that attacks the host, with the outcome its turn
// must have in the invocation log.
type hostileCase struct {
	intent   string
	src      string
	outcomes []string // acceptable outcomes
	msg      string   // part of the logged error
	line     int      // the logged error's Lua line; 0 when none is expected
}

var hostileCases = []hostileCase{
	{intent: "InfiniteLoop", src: "function handle(e, s)\n  while true do end\nend",
		outcomes: []string{"timeout"}, msg: "timed out", line: 2},
	{intent: "Recursion", src: "local function f() return 1 + f() end\nfunction handle(e, s)\n  return f()\nend",
		outcomes: []string{"error"}, msg: "stack overflow"},
	{intent: "PcallLoop", src: "function handle(e, s)\n  while true do\n    pcall(error, 'swallowed')\n  end\nend",
		outcomes: []string{"timeout"}, msg: "timed out"},
	{intent: "StringDoubling", src: "function handle(e, s)\n  local x = 'x'\n  while true do x = x .. x end\nend",
		outcomes: []string{"limit"}, msg: "concatenation is larger than", line: 3},
	{intent: "TableFilling", src: "function handle(e, s)\n  local t = {}\n  local i = 0\n  while true do i = i + 1 t[i] = {i} end\nend",
		outcomes: []string{"timeout", "limit"}},
	{intent: "StringTableFilling", src: "function handle(e, s)\n  local t, c, i = {}, string.rep('x', 65536), 0\n  while true do i = i + 1 t[i] = c .. i end\nend",
		outcomes: []string{"limit", "timeout"}},
	{intent: "StringRep", src: "function handle(e, s)\n  return string.rep('x', 1e9)\nend",
		outcomes: []string{"limit"}, msg: "string.rep: result is larger", line: 2},
	{intent: "Pattern", src: "function handle(e, s)\n  return string.find(string.rep('a', 4000), '(.-)(.-)b')\nend",
		// The step budget ends it, unless the race detector makes the
		// budget take longer than the timeout.
		outcomes: []string{"limit", "timeout"}, line: 2},
	{intent: "Unpack", src: "function handle(e, s)\n  return select('#', unpack({}, 1, 1e8))\nend",
		outcomes: []string{"error"}, msg: "overflow"},
	{intent: "Coroutines", src: "function handle(e, s)\n  for i = 1, 1e6 do coroutine.create(print) end\nend",
		outcomes: []string{"error"}, msg: "attempt to index", line: 2},
	{intent: "StringMetatable", src: "function handle(e, s)\n  getmetatable('').__index = function() return 'pwned' end\nend",
		outcomes: []string{"error"}, msg: "attempt to index", line: 2},
	{intent: "LibraryWrite", src: "function handle(e, s)\n  string.upper = function() return 'pwned' end\nend",
		outcomes: []string{"error"}, msg: "read-only table", line: 2},
	{intent: "OsExecute", src: "function handle(e, s)\n  os.execute('id')\nend",
		outcomes: []string{"error"}, msg: "attempt to call", line: 2},
	{intent: "Load", src: "function handle(e, s)\n  load('return 1')()\nend",
		outcomes: []string{"error"}, msg: "attempt to call", line: 2},
	{intent: "HugeReply", src: "function handle(e, s)\n  local t = {} for i = 1, 20 do t[i] = string.rep('r', 60000) end\n  return {text = 'x', options = t}\nend",
		outcomes: []string{"limit"}, msg: "reply is larger than"},
	{intent: "HugeSession", src: "function handle(e, s)\n  s.keep = 'changed'\n  s.blob = string.rep('s', 65536) .. 'x'\n  return 'ok'\nend",
		outcomes: []string{"limit"}, msg: "session is larger than"},
	{intent: "CyclicSession", src: "function handle(e, s)\n  s.keep = 'changed'\n  s.me = s\n  return 'ok'\nend",
		outcomes: []string{"error"}, msg: "contains itself"},
	{intent: "FunctionInSession", src: "function handle(e, s)\n  s.keep = 'changed'\n  s.f = print or tostring\n  return 'ok'\nend",
		outcomes: []string{"error"}, msg: "cannot store a function"},
	{intent: "MetadataFetch", src: "function handle(e, s)\n  s.keep = 'changed'\n  assert(http.get('http://169.254.169.254/latest/meta-data/'))\nend",
		outcomes: []string{"error"}, msg: "not allow-listed", line: 3},
	{intent: "HTTPFlood", src: "function handle(e, s)\n  for i = 1, 100 do http.get('http://127.0.0.1:1/') end\nend",
		outcomes: []string{"limit"}, msg: "more than 3 requests"},
}

// startHostileApp is startRedisApp with a sandbox heap limit.
func startHostileApp(t *testing.T, heapLimit int64) *testApp {
	t.Helper()
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.SandboxHeapLimit = heapLimit
	ta := serveApp(t, cfg, testLogger(t))
	return ta
}

// liveHeap is the live heap after two collections (gopher-lua pools the
// call frames of closed states in a sync.Pool, which survives one).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// neighbour keeps a benign bot busy until stop, timing its turns.
type neighbour struct {
	mu        sync.Mutex
	latencies []time.Duration
	failures  []string
	stop      chan struct{}
	done      chan struct{}
}

func startNeighbour(t *testing.T, ta *testApp, bot string) *neighbour {
	n := &neighbour{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		for i := 0; ; i++ {
			select {
			case <-n.stop:
				return
			default:
			}
			start := time.Now()
			r := ta.say(t, bot, map[string]any{"user": fmt.Sprint("n", i%4), "intent": "Greet"})
			d := time.Since(start)
			n.mu.Lock()
			n.latencies = append(n.latencies, d)
			if r.Status != http.StatusOK || !strings.HasPrefix(firstReplyOrEmpty(r), "hi ") {
				n.failures = append(n.failures, fmt.Sprintf("%d %s", r.Status, r.Raw))
			}
			n.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return n
}

func (n *neighbour) finish() (median, p99 time.Duration, failures []string) {
	close(n.stop)
	<-n.done
	n.mu.Lock()
	defer n.mu.Unlock()
	l := slices.Clone(n.latencies)
	slices.Sort(l)
	if len(l) == 0 {
		return 0, 0, n.failures
	}
	return l[len(l)/2], l[len(l)*99/100], n.failures
}

func firstReplyOrEmpty(r response) string {
	replies, _ := r.Body["replies"].([]any)
	if len(replies) == 0 {
		return ""
	}
	text, _ := replies[0].(map[string]any)["text"].(string)
	return text
}

// TestHostileHandlers runs every hostile case through the real gateway,
// engine, sandbox pool and Redis while a benign bot keeps talking: each turn
// gets the bot's error reply, leaves its session as it was, and shows up in
// the invocation log with its outcome and Lua line; the neighbour keeps its
// latency; the heap comes back down.
func TestHostileHandlers(t *testing.T) {
	base := liveHeap()
	ta := startHostileApp(t, int64(base)+96<<20)

	const errorReply = "Oops, that went wrong."
	handlers := map[string]string{
		"Seed": "function handle(e, s)\n  s.keep = 'seed'\n  return 'seeded'\nend",
	}
	for _, c := range hostileCases {
		handlers[c.intent] = c.src
	}
	ta.setupBot(t, "hostile", map[string]any{"timeout_ms": 200, "error_reply": errorReply, "max_http_calls": 3,
		"http_allow": []string{"127.0.0.1", "api.example.com"}}, handlers)
	ta.setupBot(t, "neighbour", nil, map[string]string{"Greet": `function handle(e, s)
  s.n = (s.n or 0) + 1
  return "hi " .. e.user .. " " .. s.n
end`})

	// The neighbour's latency alone, then during the attack.
	calm := startNeighbour(t, ta, "neighbour")
	time.Sleep(300 * time.Millisecond)
	calmMedian, _, failures := calm.finish()
	if len(failures) > 0 {
		t.Fatalf("neighbour failed before the attack: %v", failures)
	}
	n := startNeighbour(t, ta, "neighbour")

	for _, c := range hostileCases {
		conv := "conv-" + c.intent
		ta.say(t, "hostile", map[string]any{"user": "mallory", "conversation": conv, "intent": "Seed"}).must(t, http.StatusOK)
		start := time.Now()
		r := ta.say(t, "hostile", map[string]any{"user": "mallory", "conversation": conv, "intent": c.intent})
		took := time.Since(start)
		if r.Status != http.StatusOK || firstReplyOrEmpty(r) != errorReply {
			t.Errorf("%s: answer %d %s, want the bot's error reply", c.intent, r.Status, r.Raw)
		}
		if limit := 2 * time.Second; took > limit {
			t.Errorf("%s: the turn took %v", c.intent, took)
		}
		conv2 := do(t, "GET", ta.URL+"/v1/bots/hostile/conversations/"+conv, adminKey, nil).must(t, http.StatusOK)
		state, _ := conv2.Body["state"].(map[string]any)
		if data, _ := state["data"].(map[string]any); !reflect.DeepEqual(data, map[string]any{"keep": "seed"}) {
			t.Errorf("%s: session changed to %v", c.intent, state["data"])
		}
	}

	median, p99, failures := n.finish()
	t.Logf("neighbour: median %v before the attack, median %v and p99 %v during it", calmMedian, median, p99)
	if len(failures) > 0 {
		t.Errorf("neighbour failed during the attack: %d failures, first %s", len(failures), failures[0])
	}
	if median > max(5*calmMedian, 50*time.Millisecond) || p99 > time.Second {
		t.Errorf("neighbour slowed down: median %v (was %v), p99 %v", median, calmMedian, p99)
	}

	// The invocation log shows each case with its outcome and line.
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range hostileCases {
		var entry map[string]any
		for {
			r := do(t, "GET", ta.URL+"/v1/bots/hostile/logs?limit=1&intent="+url.QueryEscape(c.intent), adminKey, nil).must(t, http.StatusOK)
			if list, _ := r.Body["invocations"].([]any); len(list) > 0 {
				entry = list[0].(map[string]any)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in the invocation log", c.intent)
			}
			time.Sleep(50 * time.Millisecond)
		}
		outcome, _ := entry["outcome"].(string)
		errText, _ := entry["error"].(string)
		line, _ := entry["line"].(float64)
		if !slices.Contains(c.outcomes, outcome) {
			t.Errorf("%s: outcome %q (%s), want one of %v", c.intent, outcome, errText, c.outcomes)
		}
		if !strings.Contains(errText, c.msg) || !strings.HasPrefix(errText, c.intent+".lua") {
			t.Errorf("%s: logged error %q, want %q", c.intent, errText, c.msg)
		}
		if c.line != 0 && int(line) != c.line {
			t.Errorf("%s: logged line %v, want %d (%s)", c.intent, line, c.line, errText)
		}
	}
	r := do(t, "GET", ta.URL+"/v1/bots/hostile/usage", adminKey, nil).must(t, http.StatusOK)
	total, _ := r.Body["total"].(map[string]any)
	if inv, _ := total["invocations"].(float64); int(inv) < 2*len(hostileCases) {
		t.Errorf("usage %v", r.Raw)
	}
	if ms, _ := total["compute_ms"].(float64); ms < 100 {
		t.Errorf("usage compute_ms %v, the loops alone ran for seconds", ms)
	}

	ta.runtime.Close() // drop the pools, which hold the VMs' memory
	if after := liveHeap(); after > base+64<<20 {
		t.Errorf("heap after the attack %d MiB, before %d MiB", after>>20, base>>20)
	}
}

// TestGlobalsDoNotLeak: a global set in one call is gone in the next call,
// the next conversation and another bot.
func TestGlobalsDoNotLeak(t *testing.T) {
	ta := startRedisApp(t)
	leak := `function handle(e, s)
  local before = tostring(stolen)
  stolen = e.bot .. "/" .. e.conversation
  return before
end`
	ta.setupBot(t, "leaky-a", nil, map[string]string{"Leak": leak})
	ta.setupBot(t, "leaky-b", nil, map[string]string{"Leak": leak})
	for i, turn := range []struct{ bot, conv string }{{"leaky-a", "c1"}, {"leaky-a", "c1"}, {"leaky-a", "c2"}, {"leaky-b", "c1"}, {"leaky-b", "c3"}} {
		r := ta.say(t, turn.bot, map[string]any{"user": "u", "conversation": turn.conv, "intent": "Leak"}).must(t, http.StatusOK)
		if got := firstReply(t, r); got != "nil" {
			t.Errorf("turn %d (%s/%s) saw the global %q", i, turn.bot, turn.conv, got)
		}
	}
}

// TestBusyBot: a bot at its max_concurrent_turns makes further turns wait
// briefly, then answers them 429 with Retry-After and its busy reply, while
// another bot is not affected.
func TestBusyBot(t *testing.T) {
	ta := startRedisApp(t)
	slow := `function handle(e, s)
  local t0 = os.clock()
  while os.clock() - t0 < 0.3 do end
  return "done"
end`
	ta.setupBot(t, "busy", map[string]any{"max_concurrent_turns": 1, "busy_reply": "Busy, busy!", "timeout_ms": 2000},
		map[string]string{"Slow": slow})
	ta.setupBot(t, "calm", nil, map[string]string{"Greet": `function handle() return "hi" end`})
	ta.say(t, "busy", map[string]any{"user": "warm", "intent": "Slow"}).must(t, http.StatusOK)

	var wg sync.WaitGroup
	answers := make([]response, 4)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = ta.say(t, "busy", map[string]any{"user": fmt.Sprint("u", i), "intent": "Slow"})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if r := ta.say(t, "calm", map[string]any{"user": "c", "intent": "Greet"}); r.Status != http.StatusOK {
		t.Errorf("another bot: %d %s", r.Status, r.Raw)
	}
	wg.Wait()
	ok, busy := 0, 0
	for _, r := range answers {
		switch r.Status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			busy++
			e, _ := r.Body["error"].(map[string]any)
			if e["code"] != "busy" || e["message"] != "Busy, busy!" || r.Header.Get("Retry-After") != "1" {
				t.Errorf("busy answer: %v %s", r.Header, r.Raw)
			}
		default:
			t.Errorf("answer %d %s", r.Status, r.Raw)
		}
	}
	// One runs, one may wait for it (the queue holds as many as the limit),
	// the rest are turned away at once.
	if ok < 1 || busy < 2 {
		t.Errorf("%d answered, %d busy", ok, busy)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := do(t, "GET", ta.URL+"/v1/bots/busy/logs?outcome=rejected", adminKey, nil).must(t, http.StatusOK)
		if list, _ := r.Body["invocations"].([]any); len(list) == busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejected turns not logged: %s", r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
