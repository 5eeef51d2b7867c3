package sandbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
)

// runWith runs src once on rt with the given call fields.
func runWith(t testing.TB, rt *Runtime, src string, c Call) (Result, error) {
	t.Helper()
	c.Program = mustCompile(t, src)
	if c.Key == (PoolKey{}) {
		c.Key = testKey
	}
	if c.Event == nil {
		c.Event = testEvent()
	}
	if c.Timeout == 0 {
		c.Timeout = testTimeout
	}
	return rt.Run(context.Background(), c)
}

func TestConcatCap(t *testing.T) {
	tests := []struct {
		name, body string
		fail       bool
	}{
		{"small", `local a = "x" .. 1 .. "y" .. 2.5 assert(a == "x1y2.5") return "ok"`, false},
		{"many operands", `local s = string.rep("x", 65536) local a = s .. s .. s .. s assert(#a == 262144) return "ok"`, false},
		{"at the cap", `local s = string.rep("x", 65536) local a = s .. s  a = a .. a  a = a .. a  a = a .. a assert(#a == 1048576) return "ok"`, false},
		{"over the cap", `local s = string.rep("x", 65536) local a = s .. s  a = a .. a  a = a .. a  a = a .. a  return a .. "y"`, true},
		{"in a return", `local s = string.rep("x", 65536) for i = 1, 4 do s = s .. s end return s .. s`, true},
		{"in a nested function", `local function f(a) return a .. a end local s = string.rep("x", 65536) for i = 1, 10 do s = f(s) end`, true},
		{"in an upvalue", `local s = string.rep("x", 65536) local function grow() s = s .. s end for i = 1, 10 do grow() end`, true},
		{"in a table field", `local t = {s = string.rep("x", 65536)} for i = 1, 10 do t.s = t.s .. t.s end`, true},
	}
	rt := New(Config{})
	defer rt.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runWith(t, rt, "function handle(e, s) "+tt.body+" end", Call{})
			if tt.fail {
				_ = wantScriptError(t, err, KindLimit, "string concatenation is larger than 1048576 bytes")
				return
			}
			if err != nil || res.Reply.Text != "ok" {
				t.Fatalf("got %+v, %v", res.Reply, err)
			}
		})
	}
}

func TestInstructionsAndCompute(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s) local n = 0 for i = 1, 10000 do n = n + i end return tostring(n) end`, Call{})
	if err != nil || res.Reply.Text != "50005000" {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
	// A numeric for loop is two instructions per iteration.
	if res.Instructions < 20000 || res.Instructions > 20100 {
		t.Errorf("instructions %d, want about 20000", res.Instructions)
	}
	if res.Compute <= 0 || res.Compute > res.Duration {
		t.Errorf("compute %v, duration %v", res.Compute, res.Duration)
	}
}

func TestLogLevels(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  log("plain", 1)
  log.info("info")
  log.warn("careful", e.user)
  log.error("bad")
  assert(type(log) == "table" and getmetatable(log) == false)
  return "ok"
end`, Call{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"plain 1", "info", "warn: careful ann", "error: bad"}
	if fmt.Sprint(res.Logs) != fmt.Sprint(want) {
		t.Errorf("logs %q, want %q", res.Logs, want)
	}
}

func TestTimeModule(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  local now = time.now()
  assert(math.abs(now - os.time()) < 2, "now " .. now)
  assert(time.format(0) == "1970-01-01T00:00:00Z")
  assert(time.format(1714566600, "datetime") == "2024-05-01 12:30:00")
  assert(time.format(1714566600, "15:04 Mon", "Europe/Rome") == "14:30 Wed", time.format(1714566600, "15:04 Mon", "Europe/Rome"))
  assert(time.format(1.5, "05.000") == "01.500")
  assert(time.parse("2024-05-01T12:30:00Z") == 1714566600)
  assert(time.parse("2024-05-01", "date", "Europe/Rome") == 1714514400)
  local v, err = time.parse("yesterday")
  assert(v == nil and err:find("cannot parse"), err)
  assert(not pcall(time.format, 0, "rfc3339", "Local"))
  assert(not pcall(time.format, 0, "rfc3339", "../../etc/passwd"))
  assert(not pcall(time.format, 1e300))
  assert(not pcall(time.format, 0, string.rep("2006", 100)))
  return "ok"
end`, Call{})
	if err != nil || res.Reply.Text != "ok" {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
}

func TestRegexpModule(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  assert(re.test("order 66", "\\d+"))
  assert(not re.test("order", "\\d+"))
  local a, b = re.find("order 66 now", "\\d+")
  assert(a == 7 and b == 8, tostring(a) .. " " .. tostring(b))
  assert(re.find("x", "y") == nil)
  assert(re.find("a1 b2", "\\d", 3) == 5)
  local y, m, d = re.match("due 2024-05-01", "(\\d{4})-(\\d\\d)-(\\d\\d)")
  assert(y == "2024" and m == "05" and d == "01")
  assert(re.match("abc", "b") == "b")
  local x, z = re.match("ac", "a(b)?(c)")
  assert(x == nil and z == "c")
  local all = re.find_all("a1 b22 c333", "\\d+")
  assert(#all == 3 and all[3] == "333")
  assert(#re.find_all("a1 b22 c333", "\\d+", 2) == 2)
  local out, n = re.replace("2024-05-01", "(\\d+)-(\\d+)-(\\d+)", "$3.$2.$1")
  assert(out == "01.05.2024" and n == 1, out)
  out = re.replace("a b c", "\\w", function(w) return w:upper() end)
  assert(out == "A B C", out)
  local parts = re.split("a, b,c", ",\\s*")
  assert(#parts == 3 and parts[2] == "b")
  assert(re.quote("a.b*c") == "a\\.b\\*c")
  local ok, err = pcall(re.test, "x", "(")
  assert(not ok and err:find("missing closing"), err)
  ok, err = pcall(re.test, "x", "(a")  -- cached errors raise too
  ok, err = pcall(re.test, "x", "(a")
  assert(not ok, "cached bad pattern accepted")
  return "ok"
end`, Call{})
	if err != nil || res.Reply.Text != "ok" {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
}

// TestRegexpLinear runs patterns that make backtracking matchers explode on
// the largest subjects the work bound admits.
func TestRegexpLinear(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	start := time.Now()
	res, err := runWith(t, rt, `function handle(e, s)
  local function as(n)
    local parts = {}
    for i = 1, n / 50000 do parts[i] = string.rep("a", 50000) end
    return table.concat(parts)
  end
  local subject = as(100000)
  assert(not re.test(subject, "(a*)*b"))
  assert(not re.test(subject, "(a|aa)+$b"))
  assert(not re.test(as(50000), "(.*)(.*)(.*)(.*)(.*)b"))
  local ok, err = pcall(re.test, as(1000000), "(a*)*b[a-z]{40}")
  assert(not ok and err:find("too complex"), err)
  ok, err = pcall(re.test, "a", string.rep("a", 2000))
  assert(not ok and err:find("longer than 1024"), err)
  ok, err = pcall(re.replace, string.rep("a", 1000), "a", string.rep("$0", 2000))
  assert(not ok and err:find("larger than"), err)
  return "ok"
end`, Call{})
	if err != nil || res.Reply.Text != "ok" {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
	if d := time.Since(start); d > scaled(2*time.Second) {
		t.Errorf("took %v", d)
	}
}

func TestSSMLModule(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  local name = ssml.escape("Tom & <Jerry> \"'")
  assert(name == "Tom &amp; &lt;Jerry&gt; &quot;&apos;", name)
  return {text = "hi", ssml = ssml.speak("Hello " .. name .. ssml.pause(300))}
end`, Call{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `<speak>Hello Tom &amp; &lt;Jerry&gt; &quot;&apos;<break time="300ms"/></speak>`; res.Reply.SSML != want {
		t.Errorf("ssml %q", res.Reply.SSML)
	}
}

// TestSSMLEscapeKeepsXMLValid: what XML cannot hold does not reach the
// reply's SSML (control characters become spaces, invalid UTF-8 U+FFFD),
// and a result over the build limit is refused.
func TestSSMLEscapeKeepsXMLValid(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  return {text = "hi", ssml = ssml.speak(ssml.escape("a\1b\255c <d>"))}
end`, Call{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "<speak>a b\uFFFDc &lt;d&gt;</speak>"; res.Reply.SSML != want {
		t.Errorf("ssml %q, want %q", res.Reply.SSML, want)
	}
	_, err = runWith(t, rt, `function handle(e, s)
  local amps = string.rep("&", 60000)
  return ssml.escape(table.concat({amps, amps, amps, amps, amps}))
end`, Call{})
	if err == nil || !strings.Contains(err.Error(), "ssml.escape: result is larger than") {
		t.Errorf("escaping 300000 ampersands: %v, want the build limit", err)
	}
}

// memKV is a KV in memory with a key quota.
type memKV struct {
	mu      sync.Mutex
	data    map[string][]byte
	maxKeys int
	block   bool // wait for ctx instead of answering
}

func (m *memKV) Get(ctx context.Context, bot, key string) ([]byte, bool, error) {
	if m.block {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[bot+"/"+key]
	return v, ok, nil
}

func (m *memKV) Set(ctx context.Context, bot, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[bot+"/"+key]; !ok && len(m.data) >= m.maxKeys {
		return fmt.Errorf("%w: at most %d keys", ErrQuota, m.maxKeys)
	}
	m.data[bot+"/"+key] = value
	return nil
}

func (m *memKV) Delete(ctx context.Context, bot, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, bot+"/"+key)
	return nil
}

func TestStoreModule(t *testing.T) {
	kv := &memKV{data: map[string][]byte{}, maxKeys: 2}
	rt := New(Config{KV: kv})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  assert(store.get("menu") == nil)
  assert(store.set("menu", {pizzas = {"margherita", "diavola"}, open = true}) == true)
  local m = store.get("menu")
  assert(m.pizzas[2] == "diavola" and m.open == true)
  assert(store.set("count", 1, 60))
  local ok, err = store.set("third", "x")
  assert(ok == nil and err:find("quota exceeded: at most 2 keys"), err)
  assert(store.delete("count"))
  assert(store.get("count") == nil)
  assert(store.set("count", nil))
  assert(not pcall(store.set, "", 1))
  assert(not pcall(store.set, string.rep("k", 300), 1))
  assert(not pcall(store.set, "k", function() end))
  assert(not pcall(store.set, "k", 1, -5))
  return "ok"
end`, Call{})
	if err != nil || res.Reply.Text != "ok" {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
	if _, ok := kv.data["pizzeria/menu"]; !ok {
		t.Errorf("keys are not namespaced by bot: %v", kv.data)
	}
	// Another bot sees nothing of it.
	res, err = runWith(t, rt, `function handle() return tostring(store.get("menu")) end`,
		Call{Key: PoolKey{Bot: "other", Intent: "X", Version: 1}})
	if err != nil || res.Reply.Text != "nil" {
		t.Errorf("other bot: %+v, %v", res.Reply, err)
	}
	// The store honours the turn's deadline, and the wait is not compute.
	kv.block = true
	res, err = runWith(t, rt, `function handle()
  local v, err = store.get("menu")
  return err
end`, Call{Timeout: 50 * time.Millisecond})
	if err != nil {
		// The deadline also stops the script right after the call.
		_ = wantScriptError(t, err, KindTimeout, "timed out")
	} else if res.Reply.Text != "store: timed out" {
		t.Errorf("reply %q", res.Reply.Text)
	}
	if res.Compute > 25*time.Millisecond {
		t.Errorf("compute %v counts the store wait (duration %v)", res.Compute, res.Duration)
	}
	// At upload the store is out of reach.
	if _, err := Compile("Top.lua", `store.get("x") function handle() end`); err == nil || !strings.Contains(err.Error(), "not available at upload") {
		t.Errorf("top-level store call at upload: %v", err)
	}
	// Without a KV the module fails softly.
	rt2 := New(Config{})
	defer rt2.Close()
	res, err = runWith(t, rt2, `function handle() local v, err = store.get("x") return err end`, Call{})
	if err != nil || res.Reply.Text != "store: unavailable" {
		t.Errorf("no KV: %+v, %v", res.Reply, err)
	}
}

// fakeHTTP records requests and answers them.
type fakeHTTP struct {
	mu   sync.Mutex
	reqs []*HTTPRequest
	wait bool
}

func (f *fakeHTTP) Do(ctx context.Context, req *HTTPRequest) (*HTTPResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.wait {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if !strings.HasPrefix(req.URL, "https://api.example.com/") {
		return nil, errors.New("host api.evil.com is not allow-listed")
	}
	return &HTTPResponse{Status: 200, Header: map[string]string{"Content-Type": "application/json"},
		Body: []byte(`{"ok":true,"method":"` + req.Method + `"}`)}, nil
}

func TestHTTPModule(t *testing.T) {
	f := &fakeHTTP{}
	rt := New(Config{HTTP: f})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle(e, s)
  local r = assert(http.get("https://api.example.com/menu", {headers = {["X-Token"] = "t"}}))
  assert(r.status == 200 and r.headers["content-type"] == "application/json")
  assert(json.decode(r.body).ok == true)
  r = assert(http.post("https://api.example.com/orders", {pizza = "diavola"}))
  assert(json.decode(r.body).method == "POST")
  local none, err = http.get("https://api.evil.com/")
  assert(none == nil and err == "http: host api.evil.com is not allow-listed", err)
  return "ok"
end`, Call{HTTPAllow: []string{"api.example.com"}, MaxHTTPCalls: 3})
	if err != nil || res.Reply.Text != "ok" || res.HTTPCalls != 3 {
		t.Fatalf("got %+v (%d calls), %v", res.Reply, res.HTTPCalls, err)
	}
	if r := f.reqs[1]; r.Bot != "pizzeria" || fmt.Sprint(r.Allow) != "[api.example.com]" || string(r.Body) != `{"pizza":"diavola"}` ||
		r.Header["Content-Type"] != "application/json" || r.MaxResponseBytes != 256<<10 {
		t.Errorf("request %+v", r)
	}
	if f.reqs[0].Header["X-Token"] != "t" {
		t.Errorf("headers %v", f.reqs[0].Header)
	}

	// One request over the per-turn cap fails the turn with a limit error,
	// even under pcall... once the script gives up.
	_, err = runWith(t, rt, `function handle()
  for i = 1, 5 do http.get("https://api.example.com/" .. i) end
end`, Call{MaxHTTPCalls: 2})
	_ = wantScriptError(t, err, KindLimit, "http: more than 2 requests in one turn")
	_, err = runWith(t, rt, `function handle() http.get("https://api.example.com/") end`, Call{MaxHTTPCalls: -1})
	_ = wantScriptError(t, err, KindLimit, "more than 0 requests")

	// The turn's deadline bounds a request.
	f.wait = true
	start := time.Now()
	_, err = runWith(t, rt, `function handle()
  local r, err = http.get("https://api.example.com/slow")
  return err
end`, Call{Timeout: 50 * time.Millisecond})
	if d := time.Since(start); d > scaled(500*time.Millisecond) {
		t.Errorf("slow request held the turn for %v", d)
	}
	if err != nil {
		_ = wantScriptError(t, err, KindTimeout, "timed out")
	}
	// A request timeout of its own.
	res, err = runWith(t, rt, `function handle()
  local r, err = http.get("https://api.example.com/slow", {timeout_ms = 20})
  return err
end`, Call{})
	if err != nil || res.Reply.Text != "http: timed out" {
		t.Errorf("request timeout: %+v, %v", res.Reply, err)
	}
}

func TestCallLimits(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	_, err := runWith(t, rt, `function handle(e, s) s.x = string.rep("x", 2000) return "ok" end`, Call{MaxSessionBytes: 1000})
	_ = wantScriptError(t, err, KindLimit, "session is larger than 1000 bytes")
	_, err = runWith(t, rt, `function handle(e, s) return string.rep("x", 2000) end`, Call{MaxReplyBytes: 1000})
	_ = wantScriptError(t, err, KindLimit, "reply is larger than 1000 bytes")
	res, err := runWith(t, rt, `function handle(e, s) s.x = string.rep("x", 50000) .. string.rep("x", 50000) return string.rep("y", 50000) .. string.rep("y", 50000) end`,
		Call{MaxSessionBytes: 200000, MaxReplyBytes: 200000})
	if err != nil || len(res.Reply.Text) != 100000 {
		t.Errorf("raised limits: %v", err)
	}
}

func TestGlobalsDoNotCrossBots(t *testing.T) {
	rt := New(Config{MaxVMsPerPool: 1})
	defer rt.Close()
	src := `function handle(e, s)
  local seen = tostring(shared)
  shared = e.bot
  return seen
end`
	for i, bot := range []string{"a", "b", "a", "b"} {
		ev := testEvent()
		ev.Bot = bot
		res, err := runWith(t, rt, src, Call{Key: PoolKey{Bot: bot, Intent: "X", Version: 1}, Event: ev})
		if err != nil || res.Reply.Text != "nil" {
			t.Fatalf("call %d (%s): %+v, %v", i, bot, res.Reply, err)
		}
	}
}

func TestNewInvocation(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	prog := mustCompile(t, "function handle(e, s)\n  log('x')\n  error('boom')\nend")
	c := Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout}
	res, err := rt.Run(context.Background(), c)
	inv := NewInvocation(&c, res, err)
	if inv.Outcome != msg.CallError || inv.Line != 3 || inv.Error != "Test.lua:3: boom" || inv.Bot != "pizzeria" ||
		inv.Intent != "OrderPizza" || inv.Version != 1 || inv.Conversation != "c-1" || fmt.Sprint(inv.Logs) != "[x]" ||
		inv.Instructions == 0 {
		t.Errorf("invocation %+v", inv)
	}
	for _, tt := range []struct {
		err  error
		want msg.CallOutcome
	}{
		{nil, msg.CallOK},
		{&ScriptError{Kind: KindTimeout}, msg.CallTimeout},
		{&ScriptError{Kind: KindLimit}, msg.CallLimit},
		{&ScriptError{Kind: KindInvalid}, msg.CallError},
		{fmt.Errorf("sandbox: x: %w", context.Canceled), msg.CallTimeout},
	} {
		if got := OutcomeOf(tt.err); got != tt.want {
			t.Errorf("OutcomeOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// heapInUse is the live heap after a collection. It collects twice:
// gopher-lua keeps the call-frame segments of closed states in a sync.Pool,
// whose objects (and what their stale frames point to) survive one
// collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHeapGuard fills a table with capped strings, which no single cap
// stops, under a heap limit 64 MiB above the current heap: the guard must
// interrupt it, the heap must stay near the limit, a neighbour keeps
// answering, and the heap goes back down after a collection.
func TestHeapGuard(t *testing.T) {
	base := heapInUse()
	limit := base + 64<<20
	rt := New(Config{HeapLimit: int64(limit), HeapCheckInterval: 5 * time.Millisecond})
	defer rt.Close()
	stop := runNeighbour(t, rt)

	var peak uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}()
	start := time.Now()
	res, err := runWith(t, rt, `function handle(e, s)
  local t = {}
  local chunk = string.rep("x", 65536)
  local i = 0
  while true do
    i = i + 1
    t[i] = chunk .. i
  end
end`, Call{Timeout: 20 * time.Second})
	took := time.Since(start)
	close(done)
	<-sampled
	stop()
	_ = wantScriptError(t, err, KindLimit, "heap passed its limit")
	if st := rt.Stats(); st.HeapInterrupts != 1 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
	if res.Session != nil {
		t.Errorf("session returned")
	}
	after := heapInUse()
	t.Logf("stopped after %v; heap before %d MiB, limit %d MiB, peak %d MiB, after GC %d MiB",
		took, base>>20, limit>>20, peak>>20, after>>20)
	if after > base+16<<20 {
		t.Errorf("heap after GC %d MiB, was %d MiB", after>>20, base>>20)
	}
	if peak > limit+256<<20 {
		t.Errorf("peak heap %d MiB, limit %d MiB", peak>>20, limit>>20)
	}
	if took > scaled(5*time.Second) {
		t.Errorf("took %v", took)
	}
}

// TestHeapGuardSparesSmallCalls: a heap over the limit for reasons of its
// own does not make the guard interrupt calls that allocate little.
func TestHeapGuardSparesSmallCalls(t *testing.T) {
	rt := New(Config{HeapLimit: 1, HeapCheckInterval: time.Millisecond})
	defer rt.Close()
	res, err := runWith(t, rt, `function handle()
  local t0 = os.clock()
  local n = 0
  while os.clock() - t0 < 0.05 do n = n + 1 end
  return "ok"
end`, Call{})
	// The loop runs about a million instructions in 50 ms: more than the
	// victim threshold, so it may be interrupted; a shorter call is not.
	_ = res
	_ = err
	res, err = runWith(t, rt, `function handle() local t = {} for i = 1, 1000 do t[i] = i end return "ok" end`, Call{})
	if err != nil || res.Reply.Text != "ok" {
		t.Errorf("small call interrupted: %v", err)
	}
}
