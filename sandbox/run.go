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
}

// outcome is what a call did to its VM.
type outcome int

const (
	keepVM  outcome = iota // healthy: may serve the next call
	closeVM                // interrupted, panicked or over a limit: discard
)

// loadChunk runs the program's main chunk in a fresh global environment and
// returns that environment. The caller has set the deadline.
func (v *vm) loadChunk(p *Program) (*lua.LTable, error) {
	L := v.L
	env := L.CreateTable(0, 2)
	env.Metatable = v.envMT
	fn := L.NewFunctionFromProto(p.proto)
	fn.Env = env
	L.Push(fn)
	err := L.PCall(0, 0, nil)
	return env, err
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
		return Result{}, keepVM, fmt.Errorf("sandbox: %s: %w", name, err)
	}

	start := time.Now()
	v.attach(ctx, c.Key, c)
	event := v.newEventTable(c.Event, &c.Route)
	defer v.endEvent() // after the session conversion, which may materialize it
	v.dl.arm(ctx, start, timeout)
	L.SetContext(v.dl)

	var ret lua.LValue = lua.LNil
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
	stopErr, byCaller := v.dl.disarm()
	limitHit := v.dl.limitHit
	res := Result{Instructions: v.dl.steps, HTTPCalls: v.httpCalls}
	hostWait := v.hostWait
	res.Logs = v.detach()

	finish := func(err error, o outcome) (Result, outcome, error) {
		res.Duration = time.Since(start)
		res.Compute = max(res.Duration-hostWait, 0)
		return res, o, err
	}

	if perr != nil {
		switch {
		case stopErr != nil && byCaller:
			return finish(fmt.Errorf("sandbox: %s: call abandoned: %w", name, stopErr), closeVM)
		case errors.Is(stopErr, errHeapLimit):
			se := fromLuaError(name, KindLimit, perr)
			se.Message = fmt.Sprintf("interrupted: the process heap passed its limit while this call was allocating (about %d MiB estimated)",
				(v.dl.built.Load()+bytesPerStep*v.dl.steps)>>20)
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
	o := keepVM
	if stopErr != nil {
		// The budget ran out just as the handler returned; its result
		// stands, but the VM is not worth keeping.
		o = closeVM
	}
	if handleMissing {
		return finish(newScriptError(name, KindInvalid, "script does not define a global function handle"), o)
	}
	if t, ok := ret.(*lua.LTable); ok {
		v.materialize(t) // a handler may return the event itself
	}
	reply, serr := toReply(name, ret, lim.maxReplyBytes)
	if serr != nil {
		return finish(serr, closeIfLimit(serr, o))
	}
	sess, serr := v.sessionFromLua(name, session, lim.maxSessionBytes)
	if serr != nil {
		return finish(serr, closeIfLimit(serr, o))
	}
	res.Reply = reply
	res.Session = sess
	return finish(nil, o)
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
