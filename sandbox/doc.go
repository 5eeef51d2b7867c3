// Package sandbox runs bot handlers written in Lua: one small script per
// (bot, intent), compiled once at upload and run for every turn in pooled,
// locked-down gopher-lua VMs.
//
// # Compiling and running
//
// [Compile] parses and compiles a script to bytecode once, then runs its main
// chunk in a throwaway VM to check that it loads and defines handle. Every
// failure is a [*ScriptError] with the Lua line number:
//
//	prog, err := sandbox.Compile("OrderPizza.lua", src)
//	// err: OrderPizza.lua:12: syntax error near 'x'
//
//	rt := sandbox.New(sandbox.Config{Logger: logger})
//	defer rt.Close()
//	res, err := rt.Run(ctx, sandbox.Call{
//		Key:     sandbox.PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 3},
//		Program: prog,
//		Event:   ev,
//		Route:   decision,
//		Session: session,
//	})
//	// res.Reply is the answer; res.Session replaces session.
//
// # The handler contract
//
// A script defines a global function handle(event, session) and returns
// either a string (the reply text), a table, or nil (no reply). Reply table
// fields: text, ssml, reprompt, expect (strings), options (an array of
// strings; numbers are converted), end_conversation and sensitive
// (booleans). Other fields are ignored. The event table, built from the
// [msg.Event] and the routing [msg.Decision], has the fields id,
// bot, channel, user, conversation, text, intent, source, confidence,
// slots, locale, voice, timestamp (RFC 3339, absent when unknown), raw
// (absent when empty) and candidates (only when the router has
// suggestions). The Lua API as handler authors see it, with examples, is
// docs/handlers.md.
//
// session is the conversation state as a table. Change it in place: after
// handle returns, it is converted back (tables with keys 1..n become
// arrays, other tables objects with string keys, integral numbers int64) and
// must be storable as JSON within Config.MaxSessionBytes; functions and
// other non-data values are errors. If the call fails in any way the
// session is not returned, so a failed turn changes nothing.
//
// Every call starts from a fresh global environment in which the main chunk
// has just run: globals set by the script, and top-level locals, live for
// one call only. Nothing a call leaves behind is visible to the next, in
// the same conversation or another. A script whose top level only defines
// global functions (function name(...) ... end, no top-level locals) costs
// nothing for this: a VM binds those functions once and puts them back
// after each call (for scripts assigning at most 256 global names). Any
// other top level runs again at every call, so keep it cheap. (The environment falls back to the built-ins for names it does
// not hold, so assigning nil to a built-in name, as in tostring = nil, does
// not hide it.)
//
// # The safe baseline
//
// VMs open only the base, table, string and math libraries and expose a
// frozen environment of whitelisted functions:
//
//   - No io, os beyond os.time, os.clock and os.date, debug, coroutine,
//     channel or package; no load, loadstring, dofile, loadfile, require,
//     module, getfenv, setfenv, collectgarbage, print, newproxy or _G.
//
//   - string, table, math, os, json and the host modules below are
//     read-only (writes raise "attempt to modify a read-only table",
//     getmetatable returns false);
//     math.randomseed and string.dump are gone. The string metatable is
//     private, so getmetatable("") is false, and setmetatable accepts tables
//     only and refuses protected metatables. rawset and table.insert,
//     table.remove and table.sort refuse the read-only tables.
//
//   - Calls that could allocate without bound in one step are capped:
//     string.rep (64 KiB), the .. operator, table.concat, string.gsub and
//     string.format (1 MiB), json.encode (1 MiB out), json.decode (1 MiB
//     in, 32 levels), os.date formats (256 bytes), log lines (1 KiB each),
//     and every host module (below). The .. cap wraps gopher-lua's
//     concatenation instruction (see instructions.go), since no option
//     reaches it; the wrapper acts on sandbox VMs only. unpack returns at
//     most 8000 values, as in Lua 5.1. A cap that refuses work makes the
//     call's outcome KindLimit.
//
//   - A frame remembers at most 64 of the tail calls that replaced it
//     (instructions.go): gopher-lua writes a traceback line for each when
//     an error ends the call, which for an endless tail call would take
//     seconds and gigabytes after the deadline.
//
//   - Error messages are cut to 1 KiB, like log lines.
//
//   - Lua patterns (string.find, match, gmatch, gsub) run on this package's
//     own matcher, which follows Lua 5.1 but counts its steps: it checks the
//     call's deadline every 1024 steps and gives up with "pattern too
//     complex" after 1 Mi steps or 200 levels of nesting. gopher-lua's
//     matcher cannot be interrupted and backtracks polynomially. Subjects
//     are capped at 16 KiB; a plain find (string.find(s, sub, 1, true), or a
//     pattern without special characters) has no cap.
//
//   - log(...) (also log.info, log.warn, log.error) joins its arguments
//     like tostring into one line, kept in Result.Logs (up to
//     Config.MaxLogLines; warn and error lines start with "warn: " and
//     "error: ") and sent to Config.Logger at that level.
//
//   - json.encode(v) writes sorted keys, arrays for tables with keys 1..n
//     and {} for an empty table; json.decode(s) turns null into nil.
//
//   - Each call has a deadline (Call.Timeout or Config.DefaultTimeout),
//     checked before every VM instruction, which pcall cannot swallow. The
//     caller's context bounds it too: a caller deadline is kept exactly, a
//     cancellation is noticed within about 10 ms.
//
//   - The call stack is limited to 200 frames and the value stack to 64 Ki
//     slots (2 Ki to start), growing 4096 at a time so that
//     unpack({}, 1, 1e8) fails fast.
//
//   - gopher-lua's process-wide bound on the array part of tables
//     (lua.MaxArrayIndex) is lowered to 2^18 when the first VM is built
//     (the one change to gopher-lua that other states in the process, such
//     as the embedded store's scripts, see too):
//     with the default, t[67108000] = 1 allocates gigabytes in one
//     uninterruptible step. Integer keys above it still work but live in
//     the hash part, where the length operator does not count them.
//
//   - The heap guard (guard.go) bounds memory across calls: while VMs exist
//     it polls the process heap every Config.HeapCheckInterval, and when
//     the live heap passes Config.HeapLimit it interrupts the running call
//     with the largest allocation estimate (KindLimit); its VM is discarded.
//     Every built-in and host function charges what it builds to that
//     estimate, and those that work in a loop (json.decode) check the
//     call's deadline as they go (see charge).
//
//   - A call whose budget ran out before handle returned is a timeout,
//     whatever pcall or xpcall swallowed on the way.
//
//   - Coroutines are not offered: each one is a whole Lua thread.
//
// What the baseline does not guarantee: the heap bound is a process bound
// that holds within one polling interval plus one forced collection, not a
// per-call cap (there is none in Go): a fast allocator overshoots the limit
// by what it allocates in that time (tens of MiB on a loaded 2-core
// machine, see docs/benchmarks.md), and a heap grown by something other
// than handlers makes the guard interrupt the largest handler still. A Go
// call that is already running (a host function, a capped built-in) is
// only stopped when it returns; all of them are capped to keep that short.
// Wall-clock timeouts and compute figures count time the goroutine waits
// for a CPU. For tenants that must not share a fate, run separate processes.
//
// # Host modules
//
// Beyond json and log, handlers get time (now, format, parse), re (RE2
// regular expressions with linear-time matching and bounded work), ssml
// (escape, speak, pause), store (a bot-wide key/value store, through
// Config.KV), http (GET and POST to the hosts in Call.HTTPAllow, through
// Config.HTTPClient, at most Call.MaxHTTPCalls per call), llm (chat
// completions of the bot's model, Call.LLM, through Config.LLM; each call
// counts as an http request, its answer toward the call's allocation
// estimate, and with stream set its text goes to the [msg.Stream] of the
// call's context as it arrives), and the function secret(name), which
// returns the bot's secret (through Config.Secrets) as an opaque value: the
// http module sends it as a header value, tostring shows ***, and every
// other use raises (.., json.encode, string functions, storing it in the
// session or the store, returning it in a reply). Host I/O runs
// under a context that ends with the call's budget, its caller's context
// and the heap guard, and its waiting time is not counted as compute.
// Expected failures return nil and a message; bad arguments and caps raise.
// docs/handlers.md documents the host modules with examples.
//
// A host that runs handlers under test may set Config.Clock, which then
// tells os.time, os.date (without a time) and time.now the time, per call,
// and Config.HTTP to a client that answers from recorded responses; a
// server leaves the clock unset.
//
// # Metering
//
// Every Result reports the call's Duration, its Compute (Duration less
// host I/O waits), the Lua instructions it ran (counted by the deadline,
// which the VM consults before every instruction) and its http requests.
// [NewInvocation] turns a call and its outcome into an [msg.Invocation] record
// for invocation logs and billing.
//
// # Concurrency
//
// A [Program] is immutable and may be shared by any number of goroutines
// and Runtimes. A [Runtime] is safe for concurrent use. It keeps one pool
// per [PoolKey], never sharing a VM between keys, and a VM serves one call
// at a time. Each pool holds at most Call.MaxVMs VMs (default
// Config.MaxVMsPerPool); a call that finds them all busy waits, in arrival
// order, until one is returned or its context ends. A VM whose call timed
// out, was abandoned by its caller, panicked or hit a size limit is closed
// rather than reused, as is one that has served Config.MaxUses calls.
//
// # Elastic pools
//
// A pool starts empty and builds a VM only when a call finds none idle (a
// cold start; the Program is compiled already, so only the VM is new). A
// background reaper closes VMs left idle for Config.IdleTimeout, down to
// Call.MinVMs, which are built in the background after a call and kept
// warm; a pool with no VMs that was not used for that long is forgotten.
// An idle handler then costs only its Program, so a process can hold many
// thousands of mostly idle bots. [Runtime.Stats] counts cold and warm
// starts, idle VMs and what the reaper closed; Result.ColdStart and
// Result.WarmStart tell them apart per call.
package sandbox
