package sandbox

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Options for every sandbox VM. See the package documentation for why.
const (
	vmCallStackSize    = 200
	vmRegistrySize     = 2048
	vmRegistryMaxSize  = 64 * 1024
	vmRegistryGrowStep = 4096

	// maxArrayIndex bounds the array part of Lua tables. gopher-lua fills the
	// gap up to a new integer key one slot at a time, so with its default
	// (64 Mi) the single statement t[67108000] = 1 allocates gigabytes and
	// cannot be interrupted. Larger keys go to the hash part instead, which
	// is correct for indexing but makes #t stop at this length.
	maxArrayIndex = 1 << 18
)

var setGlobalsOnce sync.Once

// setGlobals lowers gopher-lua's process-wide array-part bound and wraps the
// .. operator and tail calls for sandbox VMs (see instructions.go). It runs
// before the first VM is built, so every VM reads the values after they were
// written.
func setGlobals() {
	setGlobalsOnce.Do(func() {
		if lua.MaxArrayIndex > maxArrayIndex {
			lua.MaxArrayIndex = maxArrayIndex
		}
		wrapInstructions()
	})
}

// vmConfig is what a VM needs from its Runtime.
type vmConfig struct {
	logger      *slog.Logger
	maxLogLines int
	kv          KV
	http        HTTPClient
	secrets     Secrets
	llm         LLM
	maxHTTPBody int
	clock       Clock
}

// vm is one sandboxed Lua state. It is used by one goroutine at a time.
type vm struct {
	L        *lua.LState
	envMT    *lua.LTable // metatable of every per-call global environment
	eventMT  *lua.LTable // metatable of the lazy event table
	fields   *lua.LTable // its __index: the current event's stored fields (see event.go)
	stored   uint32      // the fields in fields
	hot      uint32      // the fields stored at the start of every call of hotProg
	hotProg  *Program
	next     *lua.LFunction // the original next
	readOnly *lua.LFunction // __newindex of frozen tables, and their marker
	dl       *deadline
	uses     int
	ended    time.Time // when the last call ended (run sets it on every return)

	logger      *slog.Logger
	maxLogLines int
	kv          KV
	http        HTTPClient
	secrets     Secrets
	secretMT    *lua.LTable // metatable of every secret
	llm         LLM
	maxHTTPBody int
	clock       Clock // nil: the real time
	regexps     regexpCache

	// Per-call state, attached by attach and cleared by detach.
	active    bool
	ctx       context.Context
	key       PoolKey
	logs      []string
	event     lazyEvent
	call      *Call           // limits and allow-list of the call (&callBuf); nil in validation
	callBuf   Call            // a copy of the call, so that the caller's need not escape
	hostCtx   context.Context // made on the first host call that does I/O
	hostWait  time.Duration   // time spent waiting for host I/O
	httpCalls int
	llmCalls  int // llm.chat calls that reached the model
	llmInput  int // their input and output tokens
	llmOutput int

	// The global environment of the last program this VM ran, kept
	// between its calls (see loadChunk). envChunk is the main chunk bound
	// to env (nil when envProg.defs is set); envWant holds, for each name
	// of envProg.globals, its value between calls (the chunk's function or
	// nil), and envSize how many of them are not nil.
	envProg  *Program
	env      *lua.LTable
	envChunk *lua.LFunction
	envWant  []lua.LValue
	envSize  int

	// strs caches the Lua values of event strings that repeat from call to
	// call within a pool (bot, channel, locale, ...), saving an allocation each.
	strs [numCachedStrings]cachedString
	// enc converts the session back after each call (sessionFromLua).
	enc encoder
}

type cachedString struct {
	s string
	v lua.LValue
}

// newVM builds a sandboxed state: only the base, table, string and math
// libraries are opened, and what scripts can reach is a frozen environment of
// whitelisted and wrapped functions.
func newVM(cfg vmConfig) *vm {
	setGlobals()
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       vmCallStackSize,
		RegistrySize:        vmRegistrySize,
		RegistryMaxSize:     vmRegistryMaxSize,
		RegistryGrowStep:    vmRegistryGrowStep,
		MinimizeStackMemory: true,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		// os is opened only to borrow time, clock and date; the table itself
		// is never reachable from scripts.
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	v := &vm{
		L:           L,
		dl:          newDeadline(),
		logger:      cfg.logger,
		maxLogLines: cfg.maxLogLines,
		kv:          cfg.kv,
		http:        cfg.http,
		secrets:     cfg.secrets,
		llm:         cfg.llm,
		maxHTTPBody: cfg.maxHTTPBody,
		clock:       cfg.clock,
	}
	v.enc.materialize = v.materialize
	v.readOnly = L.NewFunction(luaReadOnly)
	v.buildEnv()
	return v
}

// close releases the state.
func (v *vm) close() {
	v.dl.stop()
	v.L.Close()
}

// buildEnv builds the frozen base environment and the per-call environment
// metatable, and cuts every route back to the original globals.
func (v *vm) buildEnv() {
	L := v.L
	g := L.G.Global
	lib := func(name string) *lua.LTable { return g.RawGetString(name).(*lua.LTable) }
	fn := func(t *lua.LTable, name string) *lua.LFunction { return t.RawGetString(name).(*lua.LFunction) }

	base := L.CreateTable(0, 32)
	for _, name := range []string{
		"assert", "error", "ipairs", "pcall", "xpcall", "rawequal", "select",
		"tonumber", "tostring", "type", "_VERSION",
	} {
		base.RawSetString(name, g.RawGetString(name))
	}
	base.RawSetString("unpack", L.NewFunction(luaUnpack))
	// Functions that bypass metamethods materialize the lazy event first.
	v.next = fn(g, "next")
	for _, name := range []string{"next", "rawget", "getmetatable"} {
		base.RawSetString(name, L.NewFunction(v.materializeArg(fn(g, name).GFunction)))
	}
	base.RawSetString("pairs", L.NewFunction(v.luaPairs))
	base.RawSetString("setmetatable", L.NewFunction(v.luaSetMetatable))
	base.RawSetString("rawset", L.NewFunction(v.luaRawSet))

	// string: wrapped where one call can take unbounded time or memory.
	gstr := lib(lua.StringLibName)
	str := L.CreateTable(0, 16)
	for _, name := range []string{"byte", "char", "len", "sub"} {
		str.RawSetString(name, gstr.RawGetString(name))
	}
	// These copy their argument: the copy counts toward the call's
	// allocation estimate.
	for _, name := range []string{"lower", "reverse", "upper"} {
		str.RawSetString(name, L.NewFunction(chargeResult(fn(gstr, name).GFunction)))
	}
	str.RawSetString("rep", L.NewFunction(strRep))
	str.RawSetString("format", L.NewFunction(wrapFormat(fn(gstr, "format").GFunction)))
	str.RawSetString("find", L.NewFunction(strFind))
	str.RawSetString("match", L.NewFunction(strMatch))
	str.RawSetString("gmatch", L.NewFunction(strGmatch))
	str.RawSetString("gsub", L.NewFunction(strGsub))
	stringProxy := v.freeze(str)
	base.RawSetString("string", stringProxy)

	// The string metatable is the string library itself in gopher-lua;
	// replace it so getmetatable("") is false and the library stays out of reach.
	strMT := L.CreateTable(0, 2)
	strMT.RawSetString("__index", stringProxy)
	strMT.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(lua.LString(""), strMT)

	// table: writers refuse frozen tables; concat is capped.
	gtab := lib(lua.TabLibName)
	tab := L.CreateTable(0, 8)
	for _, name := range []string{"getn", "maxn"} {
		tab.RawSetString(name, gtab.RawGetString(name))
	}
	for _, name := range []string{"insert", "remove", "sort"} {
		tab.RawSetString(name, L.NewFunction(v.refuseFrozen(fn(gtab, name).GFunction)))
	}
	tab.RawSetString("concat", L.NewFunction(tabConcat))
	base.RawSetString("table", v.freeze(tab))

	// math: everything but randomseed (a no-op since Go 1.24 that would
	// promise determinism); random validates its interval instead of panicking.
	gmath := lib(lua.MathLibName)
	mth := L.CreateTable(0, 32)
	gmath.ForEach(func(k, val lua.LValue) {
		if s, ok := k.(lua.LString); ok && s != "randomseed" {
			mth.RawSetString(string(s), val)
		}
	})
	mth.RawSetString("random", L.NewFunction(mathRandom))
	base.RawSetString("math", v.freeze(mth))

	gos := lib(lua.OsLibName)
	os := L.CreateTable(0, 3)
	os.RawSetString("time", gos.RawGetString("time"))
	os.RawSetString("clock", gos.RawGetString("clock"))
	date := wrapDate(fn(gos, "date").GFunction)
	if v.clock != nil {
		os.RawSetString("time", L.NewFunction(v.clockTime(fn(gos, "time").GFunction)))
		date = v.clockDate(date)
	}
	os.RawSetString("date", L.NewFunction(date))
	base.RawSetString("os", v.freeze(os))

	json := L.CreateTable(0, 2)
	json.RawSetString("encode", L.NewFunction(v.jsonEncode))
	json.RawSetString("decode", L.NewFunction(jsonDecode))
	base.RawSetString("json", v.freeze(json))

	v.openHostModules(base)

	v.fields = L.CreateTable(0, numEventFields)
	fieldsMT := L.CreateTable(0, 1)
	fieldsMT.RawSetString("__index", L.NewFunction(v.fieldIndex))
	v.fields.Metatable = fieldsMT
	v.eventMT = L.CreateTable(0, 3)
	v.eventMT.RawSetString("__index", v.fields)
	v.eventMT.RawSetString("__newindex", L.NewFunction(v.eventNewIndex))
	v.eventMT.RawSetString("__metatable", lua.LFalse)

	v.envMT = L.CreateTable(0, 2)
	v.envMT.RawSetString("__index", base)
	v.envMT.RawSetString("__metatable", lua.LFalse)

	// Empty the original globals (still the environment of the built-in Go
	// functions) and point the state at an empty table.
	var keys []lua.LValue
	g.ForEach(func(k, _ lua.LValue) { keys = append(keys, k) })
	for _, k := range keys {
		g.RawSet(k, lua.LNil)
	}
	empty := L.CreateTable(0, 0)
	L.G.Global = empty
	L.Env = empty
	// The opened libraries are also kept in the registry's _LOADED table;
	// drop it, so the original tables (all of os, among others) are
	// neither reachable nor kept in memory.
	L.G.Registry.RawSetString("_LOADED", lua.LNil)
}

// freeze returns a read-only proxy of t: an empty table whose reads go to t
// and whose writes raise. getmetatable of it returns false.
func (v *vm) freeze(t *lua.LTable) *lua.LTable {
	return v.freezeCallable(t, nil)
}

// freezeCallable is freeze for a library that can also be called as a
// function (log(...)); call gets the proxy as its first argument.
func (v *vm) freezeCallable(t *lua.LTable, call lua.LGFunction) *lua.LTable {
	mt := v.L.CreateTable(0, 4)
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", v.readOnly)
	mt.RawSetString("__metatable", lua.LFalse)
	if call != nil {
		mt.RawSetString("__call", v.L.NewFunction(call))
	}
	proxy := v.L.CreateTable(0, 0)
	proxy.Metatable = mt
	return proxy
}

// frozen reports whether t is a proxy made by freeze.
func (v *vm) frozen(t *lua.LTable) bool {
	mt, ok := t.Metatable.(*lua.LTable)
	return ok && mt.RawGetString("__newindex") == lua.LValue(v.readOnly)
}

const errReadOnly = "attempt to modify a read-only table"

func luaReadOnly(L *lua.LState) int {
	L.RaiseError(errReadOnly)
	return 0
}

// refuseFrozen wraps a table library writer so it raises on frozen tables.
func (v *vm) refuseFrozen(f lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if v.frozen(L.CheckTable(1)) {
			L.RaiseError(errReadOnly)
		}
		return f(L)
	}
}

// luaSetMetatable is Lua 5.1's setmetatable: tables only (gopher-lua would
// replace the metatable shared by every string or number), and a metatable
// with a __metatable field cannot be replaced.
func (v *vm) luaSetMetatable(L *lua.LState) int {
	t := L.CheckTable(1)
	v.materialize(t)
	mt := L.Get(2)
	if _, ok := mt.(*lua.LTable); !ok && mt != lua.LNil {
		L.ArgError(2, "nil or table expected")
	}
	if cur, ok := t.Metatable.(*lua.LTable); ok && cur.RawGetString("__metatable") != lua.LNil {
		L.RaiseError("cannot change a protected metatable")
	}
	t.Metatable = mt
	L.SetTop(1)
	return 1
}

// materializeArg wraps f so that a lazy event passed as its first argument
// is materialized first.
func (v *vm) materializeArg(f lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if t, ok := L.Get(1).(*lua.LTable); ok {
			v.materialize(t)
		}
		return f(L)
	}
}

// luaPairs is Lua 5.1's pairs: next, t, nil.
func (v *vm) luaPairs(L *lua.LState) int {
	t := L.CheckTable(1)
	v.materialize(t)
	L.Push(v.next)
	L.Push(t)
	L.Push(lua.LNil)
	return 3
}

// luaRawSet is rawset that refuses frozen tables.
func (v *vm) luaRawSet(L *lua.LState) int {
	t := L.CheckTable(1)
	if v.frozen(t) {
		L.RaiseError(errReadOnly)
	}
	v.materialize(t)
	k := L.CheckAny(2)
	if k == lua.LNil {
		L.ArgError(2, "table index is nil")
	}
	L.RawSet(t, k, L.CheckAny(3))
	L.SetTop(1)
	return 1
}

// maxLogLineBytes caps one log line.
const maxLogLineBytes = 1024

// logLine turns the arguments from first on, converted like tostring and
// joined by spaces, into one line of the call's log. Lines of level warn and
// error start with "warn: " and "error: ".
func (v *vm) logLine(L *lua.LState, level slog.Level, first int) int {
	if !v.active || len(v.logs) >= v.maxLogLines {
		return 0
	}
	var b strings.Builder
	switch level {
	case slog.LevelWarn:
		b.WriteString("warn: ")
	case slog.LevelError:
		b.WriteString("error: ")
	}
	prefix := b.Len()
	for i := first; i <= L.GetTop(); i++ {
		if i > first {
			b.WriteByte(' ')
		}
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
		if b.Len() > maxLogLineBytes {
			break
		}
	}
	line := b.String()
	if len(line) > maxLogLineBytes {
		line = truncateUTF8(line, maxLogLineBytes) + "…"
	}
	charge(L, len(line))
	v.logs = append(v.logs, line)
	if v.logger != nil {
		v.logger.LogAttrs(v.ctx, level, "handler log",
			slog.String("bot", v.key.Bot),
			slog.String("intent", v.key.Intent),
			slog.Int("version", v.key.Version),
			slog.String("line", line[prefix:]))
	}
	return 0
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// attach binds per-call state; detach unbinds it and hands back the logs.
// c is nil for the validation run.
func (v *vm) attach(ctx context.Context, key PoolKey, c *Call) {
	v.active = true
	v.ctx = ctx
	v.key = key
	v.call = nil
	if c != nil {
		v.callBuf = *c
		v.call = &v.callBuf
	}
	v.logs = nil
	v.hostCtx = nil
	v.hostWait = 0
	v.httpCalls = 0
	v.llmCalls, v.llmInput, v.llmOutput = 0, 0, 0
}

func (v *vm) detach() []string {
	logs := v.logs
	v.active = false
	v.ctx = nil
	v.call = nil
	v.callBuf = Call{}
	v.logs = nil
	v.hostCtx = nil
	return logs
}

// str returns the Lua value of s, reusing the previous call's value when the
// string in that slot is unchanged.
func (v *vm) str(slot int, s string) lua.LValue {
	c := &v.strs[slot]
	if c.v == nil || c.s != s {
		c.s, c.v = s, lua.LString(s)
	}
	return c.v
}

const (
	strBot = iota
	strChannel
	strIntent
	strSource
	strLocale
	numCachedStrings
)
