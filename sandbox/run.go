package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// limits are the per-call caps a VM enforces.
type limits struct {
	maxSessionBytes int
	maxReplyBytes   int
	// channelKinds are the keys a reply's channel_data may have
	// (Config.ChannelKinds); nil allows any well-formed kind.
	channelKinds []string
}

// outcome is what a call did to its VM.
type outcome int

const (
	keepVM  outcome = iota // healthy: may serve the next call
	closeVM                // interrupted, panicked or over a limit: discard
)

// newEnv returns an empty global environment for n globals: reads of
// names it does not hold fall back to the frozen built-ins.
func (v *vm) newEnv(n int) *lua.LTable {
	env := v.L.CreateTable(0, max(n, 1))
	env.Metatable = v.envMT
	return env
}

// runChunk runs the program's main chunk with env as its global
// environment. The caller has set the deadline.
func (v *vm) runChunk(fn *lua.LFunction) error {
	v.L.Push(fn)
	return v.L.PCall(0, 0, nil)
}

// closure returns a new function of proto whose global environment is env,
// as OP_CLOSURE would make it in a function running in env.
func (v *vm) closure(proto *lua.FunctionProto, env *lua.LTable) *lua.LFunction {
	fn := v.L.NewFunctionFromProto(proto)
	fn.Env = env
	return fn
}

// loadChunk gives a call its global environment: an empty table in which
// the program's main chunk has run. The caller has set the deadline.
//
// The table and the closures bound to it are kept between calls of the same
// program on this VM instead of being made anew, which cost more than the
// rest of a small handler's call: after every call, resetEnv puts the table
// back in the state the main chunk leaves it in, and it is reused only if
// it provably is in that state. That is equivalent to a fresh table
// because no Lua value outlives a call: the environment and the functions
// bound to it can only be reached from values the call made (scripts
// cannot name the environment), and nothing the call made stays reachable
// from Lua after it (the event is detached, the session and reply are
// converted to Go values, the libraries are frozen, and globals are reset);
// so no later call can tell the table or a closure from a new one.
//
// When the chunk only defines global functions without upvalues
// (Program.defs), running it would only bind those names to new closures,
// so the kept table already holds what it would make and the chunk is not
// run at all. Other chunks run at every call, in the emptied table. A
// program that assigns more than maxKeptGlobals names gets a new table at
// every call instead.
func (v *vm) loadChunk(p *Program) (*lua.LTable, error) {
	if !p.keepEnv {
		v.envProg, v.env, v.envChunk, v.envWant = nil, nil, nil, nil
		env := v.newEnv(2)
		return env, v.runChunk(v.closure(p.proto, env))
	}
	if v.envProg != p {
		v.bindEnv(p)
	}
	if p.defs != nil {
		return v.env, nil
	}
	return v.env, v.runChunk(v.envChunk)
}

// bindEnv makes the environment and closures of p's calls on this VM.
func (v *vm) bindEnv(p *Program) {
	env := v.newEnv(len(p.globals))
	v.envProg, v.env, v.envChunk = p, env, nil
	v.envWant = make([]lua.LValue, len(p.globals))
	for i := range v.envWant {
		v.envWant[i] = lua.LNil
	}
	v.envSize = 0
	if p.defs == nil {
		v.envChunk = v.closure(p.proto, env)
		return
	}
	// What the chunk does: bind each name in turn, so the last definition
	// of a name wins.
	for _, d := range p.defs {
		fn := v.closure(d.proto, env)
		env.RawSetString(d.name, fn)
		i := d.global
		if v.envWant[i] == lua.LNil {
			v.envSize++
		}
		v.envWant[i] = fn
	}
}

// resetEnv undoes a call's changes to the environment: every global the
// program's code can assign (Program.globals) gets back its value from
// before the call, the chunk's function or nil. It then checks that the
// table holds nothing else and still has its metatable; if not, the
// environment is forgotten and the next call makes a new one. After the
// reset, the table holds exactly envSize keys, the chunk's functions, and
// an empty array part, unless something else was put in it; counting them
// (hashKeys) costs no walk over the table.
func (v *vm) resetEnv() {
	env := v.env
	if env == nil {
		return
	}
	for i, name := range v.envProg.globals {
		if want := v.envWant[i]; env.RawGetString(name) != want {
			env.RawSetString(name, want)
		}
	}
	if hashKeys(env) != v.envSize || env.Len() != 0 || env.Metatable != lua.LValue(v.envMT) {
		v.envProg, v.env, v.envChunk, v.envWant = nil, nil, nil, nil
	}
}

// run executes one call on v. Lua code runs only between SetContext and
// RemoveContext; everything after reads tables raw, so no script code can
// run outside the deadline.
func (v *vm) run(ctx context.Context, c *Call, timeout time.Duration, lim limits) (Result, outcome, error) {
	L := v.L
	name := c.Program.name
	v.uses++

	// Build the arguments first: a bad session is the caller's error.
	session, err := v.sessionTable(c.Session)
	if err != nil {
		v.ended = monoNow()
		return Result{}, keepVM, fmt.Errorf("sandbox: %s: %w", name, err)
	}

	start := monoNow()
	v.attach(ctx, c.Key, c)
	event := v.newEventTable(c.Event, &v.call.Route, c.Program)
	defer v.endEvent() // after the session conversion, which may materialize it
	v.dl.arm(ctx, start, timeout)
	L.SetContext(v.dl)

	ret := lua.LNil // an LValue: any Lua value the handler returns
	var handleMissing bool
	env, perr := v.loadChunk(c.Program)
	if perr == nil {
		if h, ok := env.RawGetString("handle").(*lua.LFunction); ok {
			L.Push(h)
			L.Push(event)
			L.Push(session)
			if perr = L.PCall(2, 1, nil); perr == nil {
				ret = L.Get(-1)
			}
		} else {
			handleMissing = true
		}
	}
	L.SetTop(0)
	L.RemoveContext()
	v.resetEnv()
	stopErr, byCaller := v.dl.disarm()
	limitHit := v.dl.limitHit
	res := Result{Instructions: v.dl.steps, HTTPCalls: v.httpCalls,
		LLMCalls: v.llmCalls, LLMInputTokens: v.llmInput, LLMOutputTokens: v.llmOutput}
	hostWait := v.hostWait
	res.Logs = v.detach()

	finish := func(err error, o outcome) (Result, outcome, error) {
		res.Duration = time.Since(start) // reads only the monotonic clock
		v.ended = start.Add(res.Duration)
		res.Compute = max(res.Duration-hostWait, 0)
		return res, o, err
	}

	if perr != nil && stopErr == nil {
		stopErr, byCaller = v.dl.overran(ctx)
	}
	if perr != nil {
		switch {
		case stopErr != nil && byCaller:
			return finish(fmt.Errorf("sandbox: %s: call abandoned: %w", name, stopErr), closeVM)
		case errors.Is(stopErr, errHeapLimit):
			se := fromLuaError(name, KindLimit, perr)
			se.Message = heapLimitMessage(v.dl)
			return finish(se, closeVM)
		case stopErr != nil:
			return finish(timeoutError(name, perr, timeout), closeVM)
		case isPanic(perr):
			return finish(fromLuaError(name, KindRuntime, perr), closeVM)
		case limitHit:
			// A cap refused the work before doing it, but the script may
			// have built large values on the way there.
			return finish(fromLuaError(name, KindLimit, perr), closeVM)
		default:
			return finish(fromLuaError(name, KindRuntime, perr), keepVM)
		}
	}
	if stopErr != nil {
		// The call was stopped before handle returned, and handle returned
		// anyway: some pcall or xpcall swallowed the interruption (an
		// xpcall message handler that loops returns false, say). Its
		// result is not the script's answer; say what happened.
		switch {
		case byCaller:
			return finish(fmt.Errorf("sandbox: %s: call abandoned: %w", name, stopErr), closeVM)
		case errors.Is(stopErr, errHeapLimit):
			return finish(newScriptError(name, KindLimit, "%s", heapLimitMessage(v.dl)), closeVM)
		default:
			return finish(timeoutError(name, stopErr, timeout), closeVM)
		}
	}
	o := keepVM
	if handleMissing {
		return finish(newScriptError(name, KindInvalid, "script does not define a global function handle"), o)
	}
	if t, ok := ret.(*lua.LTable); ok {
		v.materialize(t) // a handler may return the event itself
	}
	reply, serr := v.toReply(name, ret, lim)
	if serr != nil {
		return finish(serr, closeIfLimit(serr, o))
	}
	sess, serr := v.sessionFromLua(name, session, c.Session, lim.maxSessionBytes)
	if serr != nil {
		return finish(serr, closeIfLimit(serr, o))
	}
	res.Reply = reply
	res.Session = sess
	return finish(nil, o)
}

// epoch anchors monoNow.
var epoch = time.Now()

// monoNow is time.Now read from the monotonic clock alone: one clock read
// where time.Now makes two, on every call. Its wall-clock reading is
// epoch's, advanced by the monotonic time since, so it does not follow
// changes of the system clock; the times it makes are only used for
// durations and compared with others that carry a monotonic reading.
func monoNow() time.Time { return epoch.Add(time.Since(epoch)) }

// heapLimitMessage says why the heap guard stopped the call armed on d.
func heapLimitMessage(d *deadline) string {
	return fmt.Sprintf("interrupted: the process heap passed its limit while this call was allocating (about %d MiB estimated)",
		(d.built+bytesPerStep*d.steps)>>20)
}

func closeIfLimit(err *ScriptError, o outcome) outcome {
	if err.Kind == KindLimit {
		return closeVM
	}
	return o
}

func isPanic(err error) bool {
	var ae *lua.ApiError
	return errors.As(err, &ae) && ae.Type == lua.ApiErrorPanic
}
