package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
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
// between goroutines and Runtimes; every VM instantiates it separately.
type Program struct {
	name   string
	sha256 string
	proto  *lua.FunctionProto
}

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
	p := &Program{name: name, sha256: hex.EncodeToString(sum[:]), proto: proto}
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
		if ce, ok := err.(*lua.CompileError); ok {
			return nil, &ScriptError{Script: name, Kind: KindSyntax, Line: ce.Line, Message: ce.Message}
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
	env, err := v.loadChunk(p)
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
