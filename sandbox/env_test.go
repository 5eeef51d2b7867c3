package sandbox

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
	lua "github.com/yuin/gopher-lua"
)

func TestFunctionDefs(t *testing.T) {
	for _, tc := range []struct {
		src     string
		defs    []string // nil: the chunk must run at every call
		globals []string
	}{
		{`function handle(e, s) return "hi" end`, []string{"handle"}, []string{"handle"}},
		{`function helper(x) return x end
		  function handle(e, s) n = helper(1) return "hi" end`, []string{"helper", "handle"}, []string{"helper", "handle", "n"}},
		{`function handle() return 1 end function handle() return 2 end`, []string{"handle", "handle"}, []string{"handle"}},
		// Functions nested in a definition are fine: they get the
		// definition's environment when they are made.
		{`function handle(e) local f = function() return e end return f() end`, []string{"handle"}, []string{"handle"}},
		// Anything else at the top level makes the chunk run.
		{`local n = 0 function handle() n = n + 1 return "x" end`, nil, []string{"handle"}},
		{`local function helper() end function handle() helper() end`, nil, []string{"handle"}},
		{`x = 1 function handle() end`, nil, []string{"x", "handle"}},
		{`function handle() end log("loaded")`, nil, []string{"handle"}},
		{`handle = function() end`, []string{"handle"}, []string{"handle"}},
		{`handle = 1 function handle() end`, nil, []string{"handle"}},
		{`function handle() end return 1`, nil, []string{"handle"}},
	} {
		proto, serr := compileProto("Test.lua", tc.src)
		if serr != nil {
			t.Fatalf("%s: %v", tc.src, serr)
		}
		globals, index, ok := scanGlobals(proto)
		if !ok || !slices.Equal(globals, tc.globals) {
			t.Errorf("%s: globals %q (%v), want %q", tc.src, globals, ok, tc.globals)
		}
		var names []string
		for _, d := range functionDefs(proto, index) {
			names = append(names, d.name)
			if globals[d.global] != d.name {
				t.Errorf("%s: def %s has global index %d", tc.src, d.name, d.global)
			}
		}
		if !slices.Equal(names, tc.defs) {
			t.Errorf("%s: defs %q, want %q", tc.src, names, tc.defs)
		}
	}
}

// TestEnvironmentReset runs scripts whose calls change their globals, the
// functions the main chunk defined among them, many times on one VM: every
// call must start from what the main chunk leaves, whether or not the
// chunk is run again.
func TestEnvironmentReset(t *testing.T) {
	for _, src := range []string{
		// Only function definitions: the chunk is not run again.
		`function helper() return "helper" end
		function handle(e, s)
		  assert(helper() == "helper", "helper was replaced by an earlier call")
		  assert(extra == nil and count == nil and string.upper("a") == "A", "a global leaked")
		  helper = function() return "replaced" end
		  extra = handle
		  handle = nil
		  string = nil
		  count = (count or 0) + 1
		  local get = function() return count end
		  assert(get() == 1 and helper() == "replaced")
		  return "ok"
		end`,
		// The same with a top-level local: the chunk runs at every call.
		`local calls = 0
		function helper() return "helper" end
		function handle(e, s)
		  calls = calls + 1
		  assert(calls == 1, "top-level local persisted")
		  assert(helper() == "helper", "helper was replaced by an earlier call")
		  assert(extra == nil and count == nil, "a global leaked")
		  helper, extra, handle, count = nil, 1, nil, 1
		  return "ok"
		end`,
		// A definition that a later one replaces.
		`function handle() return "first" end
		function handle(e, s)
		  assert(first == nil, "a global leaked")
		  first = true
		  return "ok"
		end`,
	} {
		prog := mustCompile(t, src)
		rt := New(Config{MaxVMsPerPool: 1})
		for i := range 5 {
			res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout})
			if err != nil || res.Reply.Text != "ok" {
				t.Fatalf("call %d of %s: %+v, %v", i, src, res.Reply, err)
			}
		}
		if st := rt.Stats(); st.VMs != 1 || st.ColdStarts != 1 {
			t.Errorf("stats %+v: the calls did not share one VM", st)
		}
		rt.Close()
	}
}

// TestEnvironmentFollowsProgram alternates two programs on one VM: each call
// sees its own program's functions and none of the other's globals.
func TestEnvironmentFollowsProgram(t *testing.T) {
	a := mustCompile(t, `function which() return "a" end
	function handle() assert(b_was_here == nil) a_was_here = true return which() end`)
	b := mustCompile(t, `function handle() assert(a_was_here == nil and which == nil) b_was_here = true return "b" end`)
	rt := New(Config{MaxVMsPerPool: 1})
	defer rt.Close()
	for i, p := range []*Program{a, b, a, a, b, b, a} {
		res, err := rt.Run(context.Background(), Call{Key: testKey, Program: p, Event: testEvent(), Timeout: testTimeout})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := map[*Program]string{a: "a", b: "b"}[p]; res.Reply.Text != want {
			t.Fatalf("call %d: got %q, want %q", i, res.Reply.Text, want)
		}
	}
}

// TestEnvironmentCheckedBeforeReuse puts into a kept environment what no
// script can (a global its code does not assign, a new metatable): the VM
// must then make a new environment rather than reuse it.
func TestEnvironmentCheckedBeforeReuse(t *testing.T) {
	for _, tc := range []struct {
		src    string
		tamper func(v *vm, env *lua.LTable)
	}{
		{`function handle() return tostring(stray) end`, func(v *vm, env *lua.LTable) { env.RawSetString("stray", lua.LString("x")) }},
		{`local x function handle() return tostring(stray) end`, func(v *vm, env *lua.LTable) { env.RawSetString("stray", lua.LString("x")) }},
		{`function handle() return tostring(stray) end`, func(v *vm, env *lua.LTable) { env.RawSet(lua.LNumber(1), lua.LTrue) }},
		{`function handle() return tostring(stray) end`, func(v *vm, env *lua.LTable) { env.RawSet(lua.LTrue, lua.LTrue) }},
		{`function handle() return tostring(stray) end`, func(v *vm, env *lua.LTable) { env.RawSet(lua.LNumber(1e9), lua.LTrue) }},
		{`function helper() end function handle() n = 1 m = 2 return tostring(stray) end`, func(v *vm, env *lua.LTable) {
			env.RawSetString("stray", lua.LString("x")) // after the reset globals n and m in the table's key list
		}},
		{`function handle() return tostring(stray) end`, func(v *vm, env *lua.LTable) {
			mt := v.L.CreateTable(0, 1)
			mt.RawSetString("__index", v.L.CreateTable(0, 0))
			env.Metatable = mt
		}},
	} {
		prog := mustCompile(t, tc.src)
		v := newVM(vmConfig{maxLogLines: 1})
		run := func() string {
			res, _, err := v.run(context.Background(), &Call{Key: testKey, Program: prog, Event: testEvent()}, testTimeout, limits{maxSessionBytes: 1 << 10, maxReplyBytes: 1 << 10})
			if err != nil {
				t.Fatalf("%s: %v", tc.src, err)
			}
			return res.Reply.Text
		}
		if got := run(); got != "nil" {
			t.Fatalf("%s: first call got %q", tc.src, got)
		}
		env := v.env
		tc.tamper(v, env)
		v.resetEnv()
		if v.env != nil {
			t.Errorf("%s: a tampered environment is kept", tc.src)
		}
		if got := run(); got != "nil" || v.env == env {
			t.Errorf("%s: after tampering got %q (same environment: %v)", tc.src, got, v.env == env)
		}
		v.close()
	}
}

// TestEnvironmentKeepsNoValues checks that between calls the kept
// environment holds only the main chunk's functions, so it keeps nothing
// a call made alive.
func TestEnvironmentKeepsNoValues(t *testing.T) {
	prog := mustCompile(t, `function handle(e, s) big = string.rep("x", 1000) t = {e} return "ok" end`)
	v := newVM(vmConfig{maxLogLines: 1})
	defer v.close()
	for range 3 {
		if _, _, err := v.run(context.Background(), &Call{Key: testKey, Program: prog, Event: testEvent()}, testTimeout, limits{maxSessionBytes: 1 << 10, maxReplyBytes: 1 << 10}); err != nil {
			t.Fatal(err)
		}
		var keys []string
		v.env.ForEach(func(k, _ lua.LValue) { keys = append(keys, fmt.Sprint(k)) })
		if !slices.Equal(keys, []string{"handle"}) {
			t.Fatalf("environment between calls holds %q", keys)
		}
	}
}

// TestEventKeptInSession stores the event in the session, which converts
// it after the call is detached from the VM: the routed fields must still
// be the call's.
func TestEventKeptInSession(t *testing.T) {
	rt := New(Config{MaxVMsPerPool: 1})
	defer rt.Close()
	prog := mustCompile(t, `function handle(e, s) s.ev = e return "ok" end`)
	for _, route := range []msg.Decision{
		{Intent: "OrderPizza", Source: msg.SourceClassifier, Confidence: 0.5,
			Candidates: []msg.Candidate{{Intent: "OrderPizza", Confidence: 0.5}}},
		{Intent: "Greet", Source: msg.SourceExpect},
	} {
		res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), Route: route, Timeout: testTimeout})
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := res.Session["ev"].(map[string]any)
		if ev["intent"] != route.Intent || ev["source"] != string(route.Source) || (ev["candidates"] != nil) != (len(route.Candidates) > 0) {
			t.Errorf("route %+v: session event %v", route, ev)
		}
	}
}

// TestManyGlobals runs a script that assigns more globals than a VM keeps
// an environment for: it gets a new environment at every call, and its
// globals do not leak either.
func TestManyGlobals(t *testing.T) {
	var b strings.Builder
	b.WriteString("function handle(e, s)\n  assert(g1 == nil, \"global leaked\")\n")
	for i := range maxKeptGlobals + 1 {
		fmt.Fprintf(&b, "  g%d = %d\n", i, i)
	}
	b.WriteString("  return \"ok\"\nend\n")
	prog := mustCompile(t, b.String())
	if prog.keepEnv || prog.defs != nil {
		t.Fatalf("keepEnv %v with %d globals", prog.keepEnv, maxKeptGlobals+1)
	}
	rt := New(Config{MaxVMsPerPool: 1})
	defer rt.Close()
	for i := range 3 {
		res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout})
		if err != nil || res.Reply.Text != "ok" {
			t.Fatalf("call %d: %+v, %v", i, res.Reply, err)
		}
	}
}

// TestIdleVMForgetsItsUser checks that a VM kept idle for a pool's minimum
// holds nothing of its last event's user once the reaper has looked at it:
// not the user's id, text or conversation, and no table of the event.
func TestIdleVMForgetsItsUser(t *testing.T) {
	clk := newTestClock()
	rt := newRuntime(Config{IdleTimeout: time.Minute, DefaultTimeout: testTimeout}, clk.Now)
	defer rt.Close()
	prog := mustCompile(t, `function handle(e, s) return e.user .. e.text .. e.id .. e.conversation .. e.bot .. e.slots.size end`)
	ev := testEvent()
	userData := func(v *vm) (found []string) {
		v.fields.ForEach(func(k, val lua.LValue) {
			if s, ok := val.(lua.LString); ok && (s == lua.LString(ev.User) || s == lua.LString(ev.Text) ||
				s == lua.LString(ev.ID) || s == lua.LString(ev.Conversation)) {
				found = append(found, k.String())
			}
			if _, ok := val.(*lua.LTable); ok {
				found = append(found, k.String())
			}
		})
		return found
	}
	idleVM := func() *vm {
		p, _ := rt.pools.Load(testKey)
		pl := p.(*pool)
		pl.mu.Lock()
		defer pl.mu.Unlock()
		if len(pl.idle) != 1 {
			t.Fatalf("%d idle VMs, want 1", len(pl.idle))
		}
		return pl.idle[0].v
	}
	for range 2 {
		res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: ev, MinVMs: 1, MaxVMs: 1})
		if err != nil || !strings.HasPrefix(res.Reply.Text, "ann") {
			t.Fatalf("got %+v, %v", res.Reply, err)
		}
	}
	v := idleVM()
	if v.hot&(1<<evUser) == 0 || len(userData(v)) == 0 {
		t.Fatalf("right after a call the VM keeps no user field (hot %b): the test checks nothing", v.hot)
	}
	rt.reap(clk.Now()) // not idle for long yet
	if len(userData(v)) == 0 {
		t.Fatal("a VM just returned forgot its fields")
	}
	clk.Add(2 * time.Minute)
	rt.reap(clk.Now())
	if idleVM() != v {
		t.Fatal("the reaper closed the pool's minimum VM")
	}
	if found := userData(v); len(found) != 0 {
		t.Errorf("an idle VM keeps %v of its last user", found)
	}
	// The next call reads its own event's fields.
	ev2 := testEvent()
	ev2.User, ev2.Text = "bob", "hello"
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: ev2, MinVMs: 1, MaxVMs: 1})
	if err != nil || !strings.HasPrefix(res.Reply.Text, "bobhello") || res.ColdStart {
		t.Fatalf("after forgetting: %+v, %v", res, err)
	}
}
