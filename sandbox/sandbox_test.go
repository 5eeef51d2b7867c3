package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
)

var testKey = PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 1}

// scaled stretches a wall-clock bound of a test under the race detector.
// The bounds themselves are generous: they check "stops well before the
// budget", not precise timing.
func scaled(d time.Duration) time.Duration {
	if raceEnabled {
		return 10 * d
	}
	return d
}

// testTimeout is the budget of test handlers that do real work, so that a
// loaded machine does not turn them into timeouts.
const testTimeout = 30 * time.Second

func mustCompile(t testing.TB, src string) *Program {
	t.Helper()
	p, err := Compile("Test.lua", src)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func testEvent() *msg.Event {
	return &msg.Event{
		ID:           "m-1",
		Bot:          "pizzeria",
		Channel:      "web",
		User:         "ann",
		Conversation: "c-1",
		Text:         "a large margherita please",
		Slots:        map[string]string{"size": "large", "pizza": "margherita"},
		Locale:       "en-US",
		Timestamp:    time.Date(2025, 5, 1, 12, 30, 0, 0, time.UTC),
	}
}

// runOnce runs src once on a fresh Runtime.
func runOnce(t testing.TB, src string, session map[string]any) (Result, error) {
	t.Helper()
	rt := New(Config{DefaultTimeout: testTimeout})
	defer rt.Close()
	return rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, src), Event: testEvent(), Session: session, Timeout: testTimeout})
}

// wantScriptError checks that err is a *ScriptError of kind whose message
// contains msg.
func wantScriptError(t testing.TB, err error, kind ErrorKind, msg string) *ScriptError {
	t.Helper()
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("got error %v (%T), want a *ScriptError of kind %s", err, err, kind)
	}
	if se.Kind != kind || !strings.Contains(se.Message, msg) {
		t.Fatalf("got %s error %q, want %s error containing %q", se.Kind, se.Message, kind, msg)
	}
	return se
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		kind    ErrorKind // empty: must compile
		line    int
		msg     string
		wantErr string // the full Error() text, when set
	}{
		{name: "ok", src: "function handle(e, s) return 'hi' end"},
		{name: "ok with top-level code", src: "local greeting = 'hi'\nfunction handle(e, s) return greeting end"},
		{name: "syntax error", src: "function handle(e, s)\n  local x = = 1\nend", kind: KindSyntax, line: 2, msg: "near '='",
			wantErr: "Test.lua:2: syntax error near '='"},
		{name: "syntax error at end of file", src: "function handle(e, s)\n  return 1\n", kind: KindSyntax, line: 3, msg: "at end of file"},
		{name: "unterminated string", src: "function handle(e, s)\n  return 'abc\nend", kind: KindSyntax, msg: "unterminated string"},
		{name: "runtime error at top level", src: "function handle() end\nlocal t = nil\nlocal x = t.field", kind: KindRuntime, line: 3,
			msg: "attempt to index"},
		{name: "error() at top level", src: "function handle() end\n\n\nerror('boom')", kind: KindRuntime, line: 4, msg: "boom",
			wantErr: "Test.lua:4: boom"},
		{name: "missing handle", src: "local x = 1", kind: KindInvalid, msg: "does not define a global function handle"},
		{name: "local handle", src: "local function handle() end", kind: KindInvalid},
		{name: "handle not a function", src: "handle = 42", kind: KindInvalid},
		{name: "empty", src: "", kind: KindInvalid},
		{name: "timeout at top level", src: "function handle() end\nwhile true do end", kind: KindTimeout, line: 2},
		{name: "too large", src: "-- " + strings.Repeat("x", MaxSourceBytes), kind: KindLimit},
		{name: "top level cannot reach io", src: "io.write('x')\nfunction handle() end", kind: KindRuntime, line: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile("Test.lua", tt.src)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				if p.Name() != "Test.lua" || len(p.SHA256()) != 64 {
					t.Fatalf("got name %q sha %q", p.Name(), p.SHA256())
				}
				return
			}
			se := wantScriptError(t, err, tt.kind, tt.msg)
			if tt.line != 0 && se.Line != tt.line {
				t.Errorf("got line %d, want %d (%v)", se.Line, tt.line, err)
			}
			if tt.wantErr != "" && err.Error() != tt.wantErr {
				t.Errorf("got %q, want %q", err.Error(), tt.wantErr)
			}
			if p != nil {
				t.Errorf("got a program with an error")
			}
		})
	}
}

func TestCompileSHA256(t *testing.T) {
	p := mustCompile(t, "function handle() end")
	// printf 'function handle() end' | sha256sum
	const want = "7177a4cf455608ec4f14b223ce3211ab0d785978e1eabd61d053f3eeb99d33fd"
	if p.SHA256() != want {
		t.Errorf("got %s, want %s", p.SHA256(), want)
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		name string
		ret  string // Lua expression returned by handle
		want msg.Reply
		kind ErrorKind
		msg  string
	}{
		{name: "string", ret: `"Hello, " .. e.user`, want: msg.Reply{Text: "Hello, ann"}},
		{name: "nil", ret: `nil`, want: msg.Reply{}},
		{name: "empty table", ret: `{}`, want: msg.Reply{}},
		{name: "table", ret: `{text = "t", ssml = "<speak>t</speak>", reprompt = "r", options = {"a", "b", 3}, end_conversation = true, expect = "Next"}`,
			want: msg.Reply{Text: "t", SSML: "<speak>t</speak>", Reprompt: "r", Options: []string{"a", "b", "3"}, EndConversation: true, Expect: "Next"}},
		{name: "number text", ret: `{text = 42}`, want: msg.Reply{Text: "42"}},
		{name: "unknown key", ret: `{text = "t", optoins = {"a"}}`, kind: KindRuntime, msg: `reply has unknown key "optoins" (known: text, ssml, reprompt, options, buttons`},
		{name: "unknown key image", ret: `{text = "t", image = "https://example.com/a.png"}`, kind: KindRuntime, msg: `reply has unknown key "image"`},
		{name: "list of replies", ret: `{{text = "a"}, {text = "b"}}`, kind: KindRuntime, msg: "handle returned a list of replies; return one reply"},
		{name: "list of strings", ret: `{"a", "b"}`, kind: KindRuntime, msg: "handle returned a list of values"},
		{name: "mixed list", ret: `{text = "a", "b"}`, kind: KindRuntime, msg: "handle returned a list of values"},
		{name: "number", ret: `42`, kind: KindRuntime, msg: "handle must return a string or a table, not a number"},
		{name: "boolean", ret: `true`, kind: KindRuntime, msg: "handle must return a string or a table"},
		{name: "function", ret: `function() end`, kind: KindRuntime, msg: "handle must return a string or a table"},
		{name: "bad text", ret: `{text = {}}`, kind: KindRuntime, msg: "reply.text must be a string, not a table"},
		{name: "bad option", ret: `{options = {"a", {}}}`, kind: KindRuntime, msg: "reply.options[2] must be a string"},
		{name: "bad options", ret: `{options = "a"}`, kind: KindRuntime, msg: "reply.options must be an array"},
		{name: "bad end_conversation", ret: `{end_conversation = "yes"}`, kind: KindRuntime, msg: "reply.end_conversation must be a boolean"},
		{name: "too large text", ret: `string.rep("x", 40000) .. string.rep("y", 40000)`, kind: KindLimit, msg: "reply is larger than 65536 bytes"},
		{name: "too many options", ret: `(function() local o = {} for i = 1, 70000 do o[i] = "" end return {options = o} end)()`,
			kind: KindLimit, msg: "reply is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runOnce(t, "function handle(e, s) return "+tt.ret+" end", nil)
			if tt.kind != "" {
				_ = wantScriptError(t, err, tt.kind, tt.msg)
				if res.Session != nil {
					t.Errorf("failed call returned a session: %v", res.Session)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Reply, tt.want) {
				t.Errorf("got %+v, want %+v", res.Reply, tt.want)
			}
			if res.Session == nil {
				t.Errorf("successful call returned no session")
			}
		})
	}
}

func TestRuntimeErrorLine(t *testing.T) {
	_, err := runOnce(t, "function handle(e, s)\n  local x = nil\n  return x.y\nend", nil)
	se := wantScriptError(t, err, KindRuntime, "attempt to index")
	if se.Line != 3 {
		t.Errorf("got line %d, want 3", se.Line)
	}
	if !strings.HasPrefix(err.Error(), "Test.lua:3: ") {
		t.Errorf("got %q", err.Error())
	}
}

func TestSessionRoundTrip(t *testing.T) {
	src := `function handle(e, s)
  s.visits = s.visits + 1
  s.cart.items[#s.cart.items + 1] = {name = "diavola", qty = 2}
  s.cart.total = s.cart.total + 9.5
  s.flags = {vip = true, banned = false}
  s.empty = {}
  s.removed = nil
  s.big = 2^53
  s.neg = -3
  s[1] = "one"
  return "ok"
end`
	in := map[string]any{
		"visits":  json.Number("2"),
		"removed": "gone soon",
		"cart": map[string]any{
			"items": []any{map[string]any{"name": "margherita", "qty": 1.0}},
			"total": 7,
		},
		"nothing": nil,
	}
	res, err := runOnce(t, src, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"visits": int64(3),
		"cart": map[string]any{
			"items": []any{
				map[string]any{"name": "margherita", "qty": int64(1)},
				map[string]any{"name": "diavola", "qty": int64(2)},
			},
			"total": 16.5,
		},
		"flags": map[string]any{"vip": true, "banned": false},
		"empty": map[string]any{},
		"big":   int64(1 << 53),
		"neg":   int64(-3),
		"1":     "one",
	}
	if !reflect.DeepEqual(res.Session, want) {
		t.Errorf("got  %#v\nwant %#v", res.Session, want)
	}
	if in["visits"] != json.Number("2") || in["removed"] != "gone soon" {
		t.Errorf("the caller's session was modified: %v", in)
	}
	// The result must survive encoding/json and come back equal in meaning.
	b, err := json.Marshal(res.Session)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"1":"one","big":9007199254740992,"cart":{"items":[{"name":"margherita","qty":1},{"name":"diavola","qty":2}],"total":16.5},"empty":{},"flags":{"banned":false,"vip":true},"neg":-3,"visits":3}`
	if string(b) != wantJSON {
		t.Errorf("got  %s\nwant %s", b, wantJSON)
	}
}

// TestSessionEmpty covers the sessions that skip the conversion: a result
// is never nil, and the caller's map is returned only empty and unchanged.
func TestSessionEmpty(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		in        map[string]any
		want      map[string]any
		same      bool // the result is the caller's map
	}{
		{"nil stays empty", `function handle(e, s) return "ok" end`, nil, map[string]any{}, false},
		{"empty stays empty", `function handle(e, s) return "ok" end`, map[string]any{}, map[string]any{}, true},
		{"empty gets a key", `function handle(e, s) s.n = 1 return "ok" end`, map[string]any{}, map[string]any{"n": int64(1)}, false},
		{"emptied", `function handle(e, s) s.n = nil return "ok" end`, map[string]any{"n": 1}, map[string]any{}, false},
		{"key set and removed", `function handle(e, s) s.n = 1 s.n = nil return "ok" end`, map[string]any{}, map[string]any{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := maps.Clone(tc.in)
			res, err := runOnce(t, tc.src, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Session == nil || !reflect.DeepEqual(res.Session, tc.want) {
				t.Errorf("got %#v, want %#v", res.Session, tc.want)
			}
			if same := tc.in != nil && reflect.ValueOf(res.Session).UnsafePointer() == reflect.ValueOf(tc.in).UnsafePointer(); same != tc.same {
				t.Errorf("result is the caller's map: %v, want %v", same, tc.same)
			}
			if !reflect.DeepEqual(tc.in, before) {
				t.Errorf("the caller's session changed: %v, was %v", tc.in, before)
			}
		})
	}
}

func TestSessionPairsOrderIsSorted(t *testing.T) {
	res, err := runOnce(t, `function handle(e, s)
  local keys = {}
  for k in pairs(s) do keys[#keys + 1] = k end
  return table.concat(keys, ",")
end`, map[string]any{"b": 1, "c": 2, "a": 3, "d": 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply.Text != "a,b,c,d" {
		t.Errorf("got %q", res.Reply.Text)
	}
}

func TestSessionErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind ErrorKind
		msg  string
	}{
		{"mutate then error", `s.count = 99 error("boom")`, KindRuntime, "boom"},
		{"function", `s.cart = {cb = function() end}`, KindRuntime, "session.cart.cb: cannot store a function"},
		{"function in array", `s.list = {1, 2, function() end}`, KindRuntime, "session.list[3]: cannot store a function"},
		{"cycle", `local t = {} t.self = t s.t = t`, KindRuntime, "session.t.self: table contains itself"},
		{"too deep", `local t = {} s.t = t for i = 1, 40 do t.x = {} t = t.x end`, KindRuntime, "nested deeper than 32 levels"},
		{"NaN", `s.x = 0/0`, KindRuntime, "session.x: cannot store NaN"},
		{"boolean key", `s.t = {[true] = 1}`, KindRuntime, "cannot store a table with a boolean key"},
		{"mixed keys", `s.t = {[1] = "a", ["1"] = "b"}`, KindRuntime, "appears both as a number and as a string"},
		{"too big", `s.blob = string.rep("x", 60000) s.more = string.rep("y", 10000)`, KindLimit, "session is larger than 65536 bytes"},
		{"shared subtables explode", `local t = {} for i = 1, 30 do t = {a = t, b = t} end s.t = t`, KindLimit, "session is larger"},
		{"replaced by non-table", `s = nil`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runOnce(t, "function handle(e, s) "+tt.body+" return 'ok' end", map[string]any{"count": 1})
			if tt.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			_ = wantScriptError(t, err, tt.kind, tt.msg)
			if res.Session != nil {
				t.Errorf("failed call returned a session: %v", res.Session)
			}
		})
	}
}

func TestSessionInputErrors(t *testing.T) {
	for name, sess := range map[string]map[string]any{
		"unsupported type": {"t": time.Now()},
		"nested too deep":  deepMap(40),
		"bad number":       {"n": json.Number("x")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runOnce(t, "function handle() return 'ok' end", sess)
			var se *ScriptError
			if err == nil || errors.As(err, &se) {
				t.Fatalf("got %v, want a host error", err)
			}
		})
	}
}

func deepMap(n int) map[string]any {
	m := map[string]any{}
	cur := m
	for range n {
		next := map[string]any{}
		cur["x"] = next
		cur = next
	}
	return m
}

func TestEventFields(t *testing.T) {
	ev := testEvent()
	ev.Intent = "PlatformIntent"
	ev.Confidence = 0.5
	ev.Voice = true
	ev.Raw = json.RawMessage(`{"platform":{"x":[1,2]}}`)
	route := msg.Decision{Intent: "OrderPizza", Source: msg.SourceClassifier, Confidence: 0.93,
		Candidates: []msg.Candidate{{Intent: "OrderPizza", Confidence: 0.93}, {Intent: "Help", Confidence: 0.2}}}
	src := `function handle(e, s)
  return json.encode({
    id = e.id, bot = e.bot, channel = e.channel, user = e.user, conversation = e.conversation,
    text = e.text, intent = e.intent, source = e.source, confidence = e.confidence,
    slots = e.slots, locale = e.locale, voice = e.voice, timestamp = e.timestamp,
    raw = json.decode(e.raw).platform.x[2], candidates = e.candidates,
    missing = e.nothing,
  })
end`
	rt := New(Config{DefaultTimeout: testTimeout})
	defer rt.Close()
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, src), Event: ev, Route: route})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"bot":"pizzeria","candidates":[{"confidence":0.93,"intent":"OrderPizza"},{"confidence":0.2,"intent":"Help"}],"channel":"web","confidence":0.93,"conversation":"c-1","id":"m-1","intent":"OrderPizza","locale":"en-US","raw":2,"slots":{"pizza":"margherita","size":"large"},"source":"classifier","text":"a large margherita please","timestamp":"2025-05-01T12:30:00Z","user":"ann","voice":true}`
	if res.Reply.Text != want {
		t.Errorf("got  %s\nwant %s", res.Reply.Text, want)
	}

	// Without a routed intent, the platform's intent and confidence show;
	// absent optional fields are nil.
	ev.Raw = nil
	res, err = rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, `function handle(e)
  return tostring(e.intent) .. " " .. e.confidence .. " " .. tostring(e.raw) .. " " .. tostring(e.candidates) .. " " .. tostring(e.source)
end`), Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply.Text != "PlatformIntent 0.5 nil nil " {
		t.Errorf("got %q", res.Reply.Text)
	}
}

// The event is built lazily; nothing a script can do may tell.
func TestEventLaziness(t *testing.T) {
	tests := []struct {
		name string
		body string // must return "ok"
	}{
		{"pairs sees every field", `local n, names = 0, {}
  for k, v in pairs(e) do n = n + 1 names[#names + 1] = k end
  table.sort(names)
  assert(n == 13, "got " .. n .. " fields: " .. table.concat(names, ","))`},
		{"next sees fields", `assert(next(e) ~= nil)`},
		{"rawget sees fields", `assert(rawget(e, "user") == "ann")`},
		{"getmetatable is nil", `assert(getmetatable(e) == nil, tostring(getmetatable(e)))`},
		{"setmetatable works", `setmetatable(e, {__index = function(t, k) return "dflt" end})
  assert(e.user == "ann") assert(e.nothing == "dflt")`},
		{"assignment sticks", `e.text = "changed" assert(e.text == "changed") e.text = nil assert(e.text == nil)`},
		{"delete sticks", `e.user = nil assert(e.user == nil) assert(rawget(e, "user") == nil)
  for k in pairs(e) do assert(k ~= "user") end`},
		{"rawset then read", `rawset(e, "user", "bob") assert(e.user == "bob")`},
		{"new fields", `e.extra = 1 assert(e.extra == 1) assert(e.user == "ann")`},
		{"slots is one table", `assert(e.slots == e.slots) e.slots.size = "small" assert(e.slots.size == "small")`},
		{"json sees fields", `local d = json.decode(json.encode(e)) assert(d.user == "ann" and d.slots.size == "large", json.encode(e))`},
		{"session copy", `s.ev = e`},
		{"methods on fields", `assert(e.text:upper():sub(1, 7) == "A LARGE")`},
	}
	t.Run("returned as the reply", func(t *testing.T) {
		// Read as the ordinary table it is: its fields are no reply keys.
		_, err := runOnce(t, "function handle(e, s) return e end", nil)
		_ = wantScriptError(t, err, KindRuntime, `reply has unknown key "bot"`)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runOnce(t, "function handle(e, s)\n  "+tt.body+"\n  return 'ok'\nend", nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reply.Text != "ok" {
				t.Fatalf("got %+v", res.Reply)
			}
			if tt.name == "session copy" {
				ev, _ := res.Session["ev"].(map[string]any)
				if ev["user"] != "ann" || ev["text"] != "a large margherita please" {
					t.Errorf("session copy of the event: %v", res.Session)
				}
			}
		})
	}
}

// TestEventFieldsAcrossCalls runs calls of one program on one VM, where
// the fields the program reads are kept in the VM's fields table between
// calls: every call must see its own event, and nothing of the last one.
func TestEventFieldsAcrossCalls(t *testing.T) {
	rt := New(Config{MaxVMsPerPool: 1, DefaultTimeout: testTimeout})
	defer rt.Close()
	prog := mustCompile(t, `function handle(e, s)
  local k = s.key
  if s.del then e.user = nil end
  return tostring(e.user) .. "|" .. tostring(e.locale) .. "|" .. tostring(e.timestamp) .. "|" .. tostring(k and e[k])
end`)
	other := mustCompile(t, `function handle(e, s) return tostring(e.text) .. "|" .. tostring(e.user) end`)
	slots := mustCompile(t, `function handle(e, s)
  local v = tostring(e.slots.size)
  if s.change then e.slots.size = "changed" e.slots.extra = "x" end
  return v .. "|" .. tostring(e.slots.size) .. "|" .. tostring(e.slots.extra)
end`)
	full := testEvent()
	bare := &msg.Event{ID: "m-2", Bot: "pizzeria", Channel: "web", User: "bob", Conversation: "c-2", Text: "hi"}
	for i, tc := range []struct {
		prog    *Program
		ev      *msg.Event
		session map[string]any
		want    string
	}{
		{prog, full, nil, "ann|en-US|2025-05-01T12:30:00Z|nil"},
		{prog, bare, nil, "bob||nil|nil"}, // hot fields without a value read nil or ""
		{prog, full, map[string]any{"key": "text"}, "ann|en-US|2025-05-01T12:30:00Z|a large margherita please"},
		{prog, bare, map[string]any{"key": "text"}, "bob||nil|hi"}, // read by a computed key: answered anew
		{prog, full, map[string]any{"key": "channel"}, "ann|en-US|2025-05-01T12:30:00Z|web"},
		{prog, bare, map[string]any{"del": true}, "nil||nil|nil"}, // a deleted hot field stays deleted
		{prog, full, nil, "ann|en-US|2025-05-01T12:30:00Z|nil"},
		{other, bare, nil, "hi|bob"}, // another program on the same VM
		{other, full, nil, "a large margherita please|ann"},
		{prog, bare, nil, "bob||nil|nil"},
		{slots, full, nil, "large|large|nil"},
		{slots, full, map[string]any{"change": true}, "large|changed|x"},
		{slots, full, nil, "large|large|nil"}, // the slots table is the call's own
		{slots, bare, nil, "nil|nil|nil"},
		{slots, full, nil, "large|large|nil"},
	} {
		res, err := rt.Run(context.Background(), Call{Key: testKey, Program: tc.prog, Event: tc.ev, Session: tc.session})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if res.Reply.Text != tc.want {
			t.Errorf("call %d: got %q, want %q", i, res.Reply.Text, tc.want)
		}
		if i > 0 && res.ColdStart {
			t.Fatalf("call %d ran on a new VM: the test needs one VM", i)
		}
	}
}

func TestTimeout(t *testing.T) {
	rt := New(Config{MaxVMsPerPool: 1, DefaultTimeout: testTimeout})
	defer rt.Close()
	prog := mustCompile(t, `function handle(e, s)
  s.touched = true
  if e.text == "loop" then
    while true do end
  end
  return "done"
end`)
	ev := testEvent()
	ev.Text = "loop"
	start := time.Now()
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: ev, Timeout: 50 * time.Millisecond,
		Session: map[string]any{"n": 1}})
	elapsed := time.Since(start)
	se := wantScriptError(t, err, KindTimeout, "timed out after 50ms")
	if se.Line != 4 {
		t.Errorf("got line %d, want 4", se.Line)
	}
	if elapsed > scaled(500*time.Millisecond) {
		t.Errorf("took %v", elapsed)
	}
	if res.Session != nil {
		t.Errorf("timed-out call returned a session")
	}
	// The VM was discarded; the pool still serves the key.
	res, err = rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
	if err != nil || res.Reply.Text != "done" {
		t.Fatalf("after a timeout: %+v, %v", res, err)
	}
	if !res.ColdStart {
		t.Errorf("the timed-out VM was reused")
	}
	if st := rt.Stats(); st.VMs != 1 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDefaultTimeout(t *testing.T) {
	rt := New(Config{DefaultTimeout: 30 * time.Millisecond})
	defer rt.Close()
	start := time.Now()
	_, err := rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, "function handle() while true do end end"), Event: testEvent()})
	_ = wantScriptError(t, err, KindTimeout, "timed out after 30ms")
	if d := time.Since(start); d > scaled(500*time.Millisecond) {
		t.Errorf("took %v", d)
	}
}

func TestCallerContext(t *testing.T) {
	loop := mustCompile(t, "function handle() while true do end end")
	t.Run("cancelled while running", func(t *testing.T) {
		rt := New(Config{DefaultTimeout: testTimeout})
		defer rt.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		start := time.Now()
		_, err := rt.Run(ctx, Call{Key: testKey, Program: loop, Event: testEvent(), Timeout: 5 * time.Second})
		var se *ScriptError
		if !errors.Is(err, context.Canceled) || errors.As(err, &se) {
			t.Fatalf("got %v, want the caller's cancellation", err)
		}
		if d := time.Since(start); d > scaled(time.Second) {
			t.Errorf("took %v", d)
		}
	})
	t.Run("caller deadline before the handler's", func(t *testing.T) {
		rt := New(Config{DefaultTimeout: testTimeout})
		defer rt.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := rt.Run(ctx, Call{Key: testKey, Program: loop, Event: testEvent(), Timeout: 5 * time.Second})
		var se *ScriptError
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &se) {
			t.Fatalf("got %v, want the caller's deadline", err)
		}
		if d := time.Since(start); d > scaled(time.Second) {
			t.Errorf("took %v", d)
		}
	})
	t.Run("already done", func(t *testing.T) {
		rt := New(Config{DefaultTimeout: testTimeout})
		defer rt.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := rt.Run(ctx, Call{Key: testKey, Program: loop, Event: testEvent()})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestPoolBound(t *testing.T) {
	// Each call holds its VM for about 60ms.
	prog := mustCompile(t, `function handle(e)
  local t0 = os.clock()
  while os.clock() - t0 < 0.06 do end
  return e.text
end`)
	t.Run("calls serialize", func(t *testing.T) {
		rt := New(Config{MaxVMsPerPool: 1, DefaultTimeout: testTimeout})
		defer rt.Close()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for range 2 {
			wg.Go(func() {
				_, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d < 110*time.Millisecond {
			t.Errorf("two calls on one VM took %v; they overlapped", d)
		}
		if st := rt.Stats(); st.VMs != 1 || st.ColdStarts != 1 || st.WarmStarts != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("waiting call gives up with its context", func(t *testing.T) {
		rt := New(Config{MaxVMsPerPool: 1, DefaultTimeout: testTimeout})
		defer rt.Close()
		started := make(chan struct{})
		slow := mustCompile(t, `function handle(e)
  local t0 = os.clock()
  while os.clock() - t0 < 0.5 do end
  return "slow"
end`)
		done := make(chan error)
		go func() {
			close(started)
			_, err := rt.Run(context.Background(), Call{Key: testKey, Program: slow, Event: testEvent(), Timeout: testTimeout})
			done <- err
		}()
		<-started
		time.Sleep(20 * time.Millisecond) // let it take the only VM
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := rt.Run(ctx, Call{Key: testKey, Program: prog, Event: testEvent()})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for a VM") {
			t.Fatalf("got %v", err)
		}
		if d := time.Since(start); d > scaled(300*time.Millisecond) {
			t.Errorf("waited %v", d)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("different keys do not share", func(t *testing.T) {
		rt := New(Config{MaxVMsPerPool: 1, DefaultTimeout: testTimeout})
		defer rt.Close()
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				key := testKey
				key.Intent = fmt.Sprint("intent", i)
				if _, err := rt.Run(context.Background(), Call{Key: key, Program: prog, Event: testEvent(), Timeout: testTimeout}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if st := rt.Stats(); st.Pools != 2 || st.VMs != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	if got.MaxVMsPerPool < 2 || got.MaxUses != 10000 || got.DefaultTimeout != time.Second ||
		got.MaxSessionBytes != 64<<10 || got.MaxReplyBytes != 64<<10 || got.MaxLogLines != 20 || got.Logger != nil {
		t.Errorf("defaults %+v", got)
	}
	if got.HeapLimit != DefaultHeapLimit || got.HeapCheckInterval != 10*time.Millisecond || got.MaxHTTPResponseBytes != 256<<10 ||
		got.IdleTimeout != DefaultIdleTimeout {
		t.Errorf("defaults %+v", got)
	}
	set := Config{MaxVMsPerPool: 1, MaxUses: 2, DefaultTimeout: 3, MaxSessionBytes: 4, MaxReplyBytes: 5, MaxLogLines: 6,
		HeapLimit: 7, HeapCheckInterval: 8, MaxHTTPResponseBytes: 9, IdleTimeout: 10, ChannelKinds: []string{"web"}}
	if got := set.withDefaults(); !reflect.DeepEqual(got, set) {
		t.Errorf("set fields changed: %+v", got)
	}
}

func TestMaxUses(t *testing.T) {
	rt := New(Config{MaxUses: 2, DefaultTimeout: testTimeout})
	defer rt.Close()
	prog := mustCompile(t, "function handle() return 'ok' end")
	var cold []bool
	for range 5 {
		res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
		if err != nil {
			t.Fatal(err)
		}
		cold = append(cold, res.ColdStart)
		if res.Duration <= 0 {
			t.Errorf("duration %v", res.Duration)
		}
	}
	if want := []bool{true, false, true, false, true}; !reflect.DeepEqual(cold, want) {
		t.Errorf("cold starts %v, want %v", cold, want)
	}
}

func TestDropAndClose(t *testing.T) {
	rt := New(Config{DefaultTimeout: testTimeout})
	prog := mustCompile(t, "function handle() return 'ok' end")
	call := Call{Key: testKey, Program: prog, Event: testEvent()}
	if _, err := rt.Run(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	if st := rt.Stats(); st.Pools != 1 || st.VMs != 1 {
		t.Fatalf("stats %+v", st)
	}
	rt.Drop(testKey)
	if st := rt.Stats(); st.Pools != 0 || st.VMs != 0 {
		t.Fatalf("after Drop: stats %+v", st)
	}
	res, err := rt.Run(context.Background(), call)
	if err != nil || !res.ColdStart {
		t.Fatalf("after Drop: %+v, %v", res, err)
	}
	rt.Close()
	if _, err := rt.Run(context.Background(), call); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if st := rt.Stats(); st.VMs != 0 {
		t.Fatalf("after Close: stats %+v", st)
	}
}

func TestDropWhileRunning(t *testing.T) {
	rt := New(Config{DefaultTimeout: testTimeout})
	defer rt.Close()
	prog := mustCompile(t, `function handle()
  local t0 = os.clock()
  while os.clock() - t0 < 0.05 do end
  return "ok"
end`)
	done := make(chan error)
	go func() {
		_, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout})
		done <- err
	}()
	time.Sleep(15 * time.Millisecond)
	rt.Drop(testKey)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := rt.Stats(); st.VMs != 0 {
		t.Errorf("the in-flight VM was kept: %+v", st)
	}
}

func TestLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	rt := New(Config{MaxLogLines: 3, Logger: logger, DefaultTimeout: testTimeout})
	defer rt.Close()
	prog := mustCompile(t, `function handle(e)
  log("hello", e.user, 42, true, nil)
  log(setmetatable({}, {__tostring = function() return "custom" end}))
  log(string.rep("x", 2000))
  log("dropped")
  return "ok"
end`)
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logs) != 3 || res.Logs[0] != "hello ann 42 true nil" || res.Logs[1] != "custom" {
		t.Fatalf("logs %q", res.Logs)
	}
	if l := res.Logs[2]; len(l) != 1024+len("…") || !strings.HasSuffix(l, "…") {
		t.Errorf("long line kept as %d bytes", len(l))
	}
	out := buf.String()
	for _, want := range []string{`"bot":"pizzeria"`, `"intent":"OrderPizza"`, `"version":1`, `"line":"hello ann 42 true nil"`} {
		if !strings.Contains(out, want) {
			t.Errorf("slog output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("line over the cap was logged")
	}

	// Logs of a failed call are still returned.
	prog = mustCompile(t, `function handle() log("before") error("boom") end`)
	res, err = rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
	if err == nil || len(res.Logs) != 1 || res.Logs[0] != "before" {
		t.Errorf("failed call: logs %q, err %v", res.Logs, err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	rt := New(Config{MaxVMsPerPool: 3, DefaultTimeout: testTimeout})
	defer rt.Close()
	prog := mustCompile(t, `local calls = 0
function handle(e, s)
  calls = calls + 1
  assert(calls == 1)
  assert(seen == nil)
  seen = e.conversation
  s.n = (s.n or 0) + 1
  return e.conversation .. ":" .. e.text
end`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				ev := testEvent()
				ev.Conversation = fmt.Sprintf("c%d", g)
				ev.Text = fmt.Sprint(i)
				key := testKey
				key.Intent = fmt.Sprint("intent", g%2)
				res, err := rt.Run(context.Background(), Call{Key: key, Program: prog, Event: ev, Session: map[string]any{"n": i}, Timeout: testTimeout})
				if err != nil {
					t.Error(err)
					return
				}
				if want := fmt.Sprintf("c%d:%d", g, i); res.Reply.Text != want || res.Session["n"] != int64(i+1) {
					t.Errorf("got %q %v, want %q", res.Reply.Text, res.Session, want)
					return
				}
			}
		})
	}
	wg.Wait()
	if st := rt.Stats(); st.VMs > 6 || st.ColdStarts+st.WarmStarts != 400 {
		t.Errorf("stats %+v", st)
	}
}

func TestRunMisuse(t *testing.T) {
	rt := New(Config{DefaultTimeout: testTimeout})
	defer rt.Close()
	if _, err := rt.Run(context.Background(), Call{Key: testKey, Event: testEvent()}); err == nil {
		t.Error("no program: no error")
	}
	if _, err := rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, "function handle() end")}); err == nil {
		t.Error("no event: no error")
	}
}

func TestScriptErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		err  ScriptError
		want string
	}{
		{ScriptError{Script: "OrderPizza.lua", Kind: KindSyntax, Line: 12, Message: "syntax error near 'x'"}, "OrderPizza.lua:12: syntax error near 'x'"},
		{ScriptError{Script: "OrderPizza.lua", Kind: KindLimit, Message: "reply is larger than 10 bytes"}, "OrderPizza.lua: reply is larger than 10 bytes"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if line, msg := splitPosition("a.lua", "a.lua:7: boom: x:1: y"); line != 7 || msg != "boom: x:1: y" {
		t.Errorf("splitPosition: %d %q", line, msg)
	}
	if line, msg := splitPosition("a.lua", "b.lua:7: boom"); line != 0 || msg != "b.lua:7: boom" {
		t.Errorf("splitPosition of another chunk: %d %q", line, msg)
	}
}
