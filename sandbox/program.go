package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Limits applied by Compile.
const (
	// MaxSourceBytes is the largest script Compile accepts.
	MaxSourceBytes = 256 << 10
	// validateTimeout bounds the validation run of a script's main chunk.
	validateTimeout = 100 * time.Millisecond
)

// Program is a compiled handler script. It is immutable and safe to share
// between goroutines and Runtimes; every VM instantiates it separately. It
// remembers the pool it last ran in, to find it again quickly.
type Program struct {
	name   string
	sha256 string
	proto  *lua.FunctionProto
	// keepEnv is set when a VM may keep the program's global environment
	// between calls (see vm.loadChunk): it assigns at most maxKeptGlobals
	// names. globals are those names: the constants of its
	// global-assignment instructions (see scanGlobals).
	keepEnv bool
	globals []string
	// defs is set, when keepEnv is, if the main chunk does nothing but
	// define global functions without upvalues: its definitions in order.
	// Running such a chunk only binds those names to new closures in the
	// environment, so a VM may do that itself.
	defs []globalDef
	// eventNames is the set of event fields the program names in its code
	// (see event.go).
	eventNames uint32

	pool atomic.Pointer[pool] // see Runtime.pool
}

// globalDef is one "function name(...) ... end" of a main chunk; global is
// the index of name in Program.globals.
type globalDef struct {
	name   string
	global int
	proto  *lua.FunctionProto
}

// maxKeptGlobals bounds the global names of a program whose environment a
// VM keeps between calls: resetting it after a call costs a lookup per
// name, in Go code that the call's deadline does not bound. A program with
// more gets a new environment for every call.
const maxKeptGlobals = 256

// Name returns the name the program was compiled under; it prefixes the
// positions in its error messages.
func (p *Program) Name() string { return p.name }

// SHA256 returns the hex SHA-256 of the source.
func (p *Program) SHA256() string { return p.sha256 }

// Compile parses and compiles source once, then validates it in a throwaway
// VM: the main chunk must run without error within a short budget and
// define a global function handle. name is used in error messages
// ("OrderPizza.lua:12: ..."). Every failure is a *ScriptError.
func Compile(name, source string) (*Program, error) {
	if len(source) > MaxSourceBytes {
		return nil, newScriptError(name, KindLimit, "script is larger than %d bytes", MaxSourceBytes)
	}
	sum := sha256.Sum256([]byte(source))
	proto, serr := compileProto(name, source)
	if serr != nil {
		return nil, serr
	}
	p := &Program{name: name, sha256: hex.EncodeToString(sum[:]), proto: proto, eventNames: eventNames(proto)}
	if names, index, ok := scanGlobals(proto); ok {
		p.keepEnv, p.globals = true, names
		p.defs = functionDefs(proto, index)
	}
	if err := validate(p); err != nil {
		return nil, err
	}
	return p, nil
}

// compileProto turns source into a function prototype. gopher-lua's parser
// and compiler report errors by panicking; any panic that escapes them is
// reported as a syntax error rather than taking the host down.
func compileProto(name, source string) (proto *lua.FunctionProto, serr *ScriptError) {
	defer func() {
		if r := recover(); r != nil {
			proto = nil
			serr = newScriptError(name, KindSyntax, "cannot compile: %v", r)
		}
	}()
	chunk, err := parse.Parse(strings.NewReader(source), name)
	if err != nil {
		return nil, fromParseError(name, source, err)
	}
	proto, err = lua.Compile(chunk, name)
	if err != nil {
		if ce := (*lua.CompileError)(nil); errors.As(err, &ce) {
			return nil, &ScriptError{Script: name, Kind: KindSyntax, Line: ce.Line, Message: clipMessage(ce.Message)}
		}
		return nil, newScriptError(name, KindSyntax, "%v", err)
	}
	// The main chunk is compiled as a vararg function that "needs arg", so
	// every call would build a Lua 5.0 arg table (with a hash part) that
	// nothing can see: the chunk has no local named arg. Skip it.
	proto.IsVarArg &^= lua.VarArgNeedsArg
	compact(proto)
	return proto, nil
}

// compact copies the slices of a compiled prototype and its nested ones to
// their lengths. gopher-lua's compiler leaves them in buffers sized for
// large functions, about 16 KiB per function however small, and a Program
// is kept for as long as its handler is deployed, idle or not.
func compact(p *lua.FunctionProto) {
	p.Code = clip(p.Code)
	p.Constants = clip(p.Constants)
	p.FunctionPrototypes = clip(p.FunctionPrototypes)
	p.DbgSourcePositions = clip(p.DbgSourcePositions)
	p.DbgLocals = clip(p.DbgLocals)
	p.DbgCalls = clip(p.DbgCalls)
	p.DbgUpvalues = clip(p.DbgUpvalues)
	for _, f := range p.FunctionPrototypes {
		compact(f)
	}
}

// clip returns a copy of s in an array of its own length; nil when s is
// empty, so nothing keeps the original array alive.
func clip[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// Fields of a gopher-lua instruction (opcode.go): the opcode in the top 6
// bits, A in the next 8, and Bx in the low 18 (B in the low 9).
func instOp(inst uint32) int { return int(inst >> 26) }
func instA(inst uint32) int  { return int(inst>>18) & 0xff }
func instB(inst uint32) int  { return int(inst & 0x1ff) }
func instBx(inst uint32) int { return int(inst & 0x3ffff) }

// scanGlobals returns, once each, the global names that p and the functions
// nested in it assign, and the index of each in names; ok is false when
// there are more than maxKeptGlobals. Lua 5.1 code can write its global
// environment only with SETGLOBAL, whose name is a constant: the sandbox
// offers no getfenv, setfenv, _G or other way to reach the environment as
// a table.
func scanGlobals(p *lua.FunctionProto) (names []string, index map[string]int, ok bool) {
	index = make(map[string]int)
	var scan func(p *lua.FunctionProto) bool
	scan = func(p *lua.FunctionProto) bool {
		for _, inst := range p.Code {
			if instOp(inst) != lua.OP_SETGLOBAL {
				continue
			}
			k := instBx(inst)
			if k >= len(p.Constants) {
				continue
			}
			s, ok := p.Constants[k].(lua.LString)
			if !ok {
				continue
			}
			if _, seen := index[string(s)]; !seen {
				if len(names) == maxKeptGlobals {
					return false
				}
				index[string(s)] = len(names)
				names = append(names, string(s))
			}
		}
		for _, f := range p.FunctionPrototypes {
			if !scan(f) {
				return false
			}
		}
		return true
	}
	if !scan(p) {
		return nil, nil, false
	}
	return names, index, true
}

// functionDefs returns the definitions of a main chunk that consists only
// of global function definitions whose functions capture no upvalues:
//
//	CLOSURE A Bx; SETGLOBAL A K  (repeated)  RETURN 0 1
//
// and nil for any other chunk (top-level locals, other statements).
// Running such a chunk in an environment has no effect but to set each
// name, in order, to a new closure of its prototype whose environment is
// that environment (OP_CLOSURE takes the running function's); nothing in
// it can fail or run user code.
func functionDefs(p *lua.FunctionProto, index map[string]int) []globalDef {
	code := p.Code
	if len(code) < 3 || len(code)%2 != 1 {
		return nil
	}
	last := code[len(code)-1]
	if instOp(last) != lua.OP_RETURN || instA(last) != 0 || instB(last) != 1 {
		return nil
	}
	var defs []globalDef
	for i := 0; i+1 < len(code); i += 2 {
		cl, set := code[i], code[i+1]
		if instOp(cl) != lua.OP_CLOSURE || instOp(set) != lua.OP_SETGLOBAL || instA(cl) != instA(set) {
			return nil
		}
		fi, ki := instBx(cl), instBx(set)
		if fi >= len(p.FunctionPrototypes) || ki >= len(p.Constants) {
			return nil
		}
		f := p.FunctionPrototypes[fi]
		name, ok := p.Constants[ki].(lua.LString)
		if !ok || f.NumUpvalues != 0 {
			return nil
		}
		defs = append(defs, globalDef{name: string(name), global: index[string(name)], proto: f})
	}
	return defs
}

// validate runs the main chunk once in a fresh VM that is closed afterwards.
func validate(p *Program) error {
	v := newVM(vmConfig{maxLogLines: 0})
	defer v.close()
	L := v.L
	start := time.Now()
	ctx := context.Background()
	v.attach(ctx, PoolKey{}, nil)
	v.dl.arm(ctx, start, validateTimeout)
	L.SetContext(v.dl)
	// The real chunk, not loadChunk's shortcut: validation is also where
	// a script's top level first runs.
	env := v.newEnv(len(p.globals))
	err := v.runChunk(v.closure(p.proto, env))
	L.SetTop(0)
	L.RemoveContext()
	stopErr, _ := v.dl.disarm()
	v.detach()
	switch {
	case err != nil && stopErr != nil:
		return timeoutError(p.name, err, validateTimeout)
	case err != nil:
		return fromLuaError(p.name, KindRuntime, err)
	}
	if _, ok := env.RawGetString("handle").(*lua.LFunction); !ok {
		return newScriptError(p.name, KindInvalid, "script does not define a global function handle")
	}
	return nil
}

// String returns the program's name and a short hash, for logs.
func (p *Program) String() string {
	return fmt.Sprintf("%s@%.12s", p.name, p.sha256)
}
