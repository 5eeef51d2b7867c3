package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// bigHTTP answers every request with a large body, or with many or large
// headers.
type bigHTTP struct{ headers map[string]string }

func (b *bigHTTP) Do(ctx context.Context, req *HTTPRequest) (*HTTPResponse, error) {
	if b.headers != nil {
		return &HTTPResponse{Status: 200, Header: b.headers}, nil
	}
	return &HTTPResponse{Status: 200, Body: []byte(strings.Repeat("b", 512<<10))}, nil
}

// TestHostAllocationsCharged: values that host functions and built-ins
// build for a script count toward the call's allocation estimate, so the
// heap guard stops a call that keeps them, though it runs few instructions.
func TestHostAllocationsCharged(t *testing.T) {
	kv := &memKV{data: map[string][]byte{"b/doc": []byte(strings.Repeat("[1,2,3,4,5,6,7,8],", 30000) + "0]")}, maxKeys: 10}
	kv.data["b/doc"] = append([]byte("["), kv.data["b/doc"]...)
	cases := []struct{ name, body string }{
		{"json.decode", `local doc = "[" .. string.rep('[1,"abcdefgh",{"k":2}],', 2600) .. "0]"
  while true do keep[#keep + 1] = json.decode(doc) end`},
		// One match a call, with a large replacement: each call builds
		// 900 KB with little regexp work, so the heap guard, not the
		// timeout, ends it even on a slow machine under the race detector.
		{"re.replace", `local parts = {} for i = 1, 15 do parts[i] = string.rep("b", 60000) end
  local src, big = string.rep("a", 1024), table.concat(parts)
  while true do keep[#keep + 1] = re.replace(src, "a+", big) end`},
		{"store.get", `while true do keep[#keep + 1] = store.get("doc") end`},
		{"http body", `while true do keep[#keep + 1] = http.get("https://api.example.com/") end`},
		{"string.upper", `local s = string.rep("a", 65536) while true do keep[#keep + 1] = s:upper() end`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := heapInUse()
			rt := New(Config{HeapLimit: int64(base + 64<<20), HeapCheckInterval: 5 * time.Millisecond, KV: kv, HTTP: &bigHTTP{}})
			defer rt.Close()
			_, err := runWith(t, rt, "function handle(e, s)\n  local keep = {}\n  "+c.body+"\nend",
				Call{Key: PoolKey{Bot: "b", Intent: "I", Version: 1}, Timeout: 60 * time.Second, MaxHTTPCalls: 100000})
			_ = wantScriptError(t, err, KindLimit, "heap passed its limit")
		})
	}
}

// TestHTTPResponseHeadersCapped: a response whose headers are too many or
// too large is refused before it reaches the script.
func TestHTTPResponseHeadersCapped(t *testing.T) {
	many := map[string]string{}
	for i := range 200 {
		many["X-H"+strings.Repeat("h", i)] = "v"
	}
	large := map[string]string{"X-Big": strings.Repeat("v", 100<<10)}
	for name, h := range map[string]map[string]string{"many": many, "large": large} {
		rt := New(Config{HTTP: &bigHTTP{headers: h}})
		res, err := runWith(t, rt, `function handle(e, s)
  local r, err = http.get("https://api.example.com/")
  return tostring(r) .. " " .. tostring(err)
end`, Call{})
		rt.Close()
		if err != nil || !strings.HasPrefix(res.Reply.Text, "nil http: response headers are larger than") {
			t.Errorf("%s: %+v, %v", name, res.Reply, err)
		}
	}
}

// TestHugeErrorIsCapped: an error value of any size reaches logs and API
// answers cut to the length of a log line.
func TestHugeErrorIsCapped(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	for _, src := range []string{
		`function handle(e, s) error(string.rep("x", 1000000)) end`,
		`function handle(e, s) error(setmetatable({}, {__tostring = function() return string.rep("x", 1000000) end})) end`,
		`function handle(e, s) local t = {} t[string.rep("k", 60000)] = print or tostring s.bad = t return "ok" end`,
	} {
		_, err := runWith(t, rt, src, Call{})
		if err == nil || len(err.Error()) > 2*maxLogLineBytes {
			t.Errorf("error of %d bytes: %.200v", len(err.Error()), err)
		}
	}
	_, err := Compile("Big.lua", "function handle(e, s) return '"+strings.Repeat("x", 1<<20)+" end")
	if err == nil || len(err.Error()) > 2*maxLogLineBytes {
		t.Errorf("syntax error of %d bytes", len(err.Error()))
	}
}

// TestInstructionsOnlyInSandbox: the wrapped instructions leave every
// other gopher-lua state in the process as gopher-lua made it (the
// embedded store runs its scripts on gopher-lua too).
func TestInstructionsOnlyInSandbox(t *testing.T) {
	rt := New(Config{})
	defer rt.Close()
	if _, err := runWith(t, rt, `function handle(e, s) local x = string.rep("x", 65536) for i = 1, 5 do x = x .. x end end`, Call{}); err == nil {
		t.Fatal("the sandbox's concatenation cap is off")
	}
	L := lua.NewState()
	defer L.Close()
	err := L.DoString(`
local x = string.rep("x", 65536)
for i = 1, 5 do x = x .. x end
assert(#x == 2097152)
local function f(n) if n == 0 then error("deep") end return f(n - 1) end
local ok, msg = pcall(f, 1000)
assert(not ok and msg:find("deep"))
`)
	if err != nil {
		t.Fatal(err)
	}
}

// TestTailCalls: tail calls work as in Lua, however many, and an endless
// one ends with its deadline, not long after.
func TestTailCalls(t *testing.T) {
	if !frameLayout.ok {
		t.Fatal("gopher-lua's frame layout changed: tail calls are not capped")
	}
	rt := New(Config{})
	defer rt.Close()
	res, err := runWith(t, rt, `local function count(n, acc) if n == 0 then return acc end return count(n - 1, acc + 1) end
function handle(e, s) return tostring(count(100000, 0)) end`, Call{})
	if err != nil || res.Reply.Text != "100000" {
		t.Fatalf("%+v, %v", res.Reply, err)
	}
	start := time.Now()
	_, err = runWith(t, rt, `local function f() return f() end
function handle(e, s) return f() end`, Call{Timeout: 100 * time.Millisecond})
	_ = wantScriptError(t, err, KindTimeout, "timed out")
	if took := time.Since(start); took > scaled(2*time.Second) {
		t.Errorf("an endless tail call with a 100ms budget took %v", took)
	}
}
