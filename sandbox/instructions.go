package sandbox

import (
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Wrapped VM instructions.
//
// Two of gopher-lua's instructions need bounds that no option or metamethod
// reaches, so the sandbox wraps the VM's handlers of them. The handler table
// is an unexported variable of gopher-lua, reached with go:linkname, and it
// is shared by every gopher-lua state in the process, including the Lua
// scripts of the embedded store (miniredis). Each wrapper therefore acts only
// on a sandbox VM, which it recognizes by its context: sandbox code runs
// only under a *deadline (see vm.run and Compile); any other state gets
// gopher-lua's own behaviour, unchanged. That ties this file to gopher-lua's
// internals: go.mod pins v1.1.2, and TestConcatCap, TestTailCalls and
// TestInstructionsOnlyInSandbox fail if an upgrade changes what it relies on.
//
// The .. operator (OP_CONCAT, R(A) := R(B).. ... ..R(C)) joins its operands
// into a new string in one step: the deadline is checked only before it,
// and nothing bounds its size, so s = s .. s doubles a string to gigabytes in
// about thirty instructions. __concat is only consulted for operands that
// are not strings or numbers. The wrapper adds up the operands' lengths
// first and raises a Lua error when the result would pass maxConcatBytes,
// and it tells the running call's deadline how many bytes the concatenation
// builds, which is the heap guard's allocation estimate.
//
// A tail call (OP_TAILCALL, return f(...)) reuses its caller's frame and
// counts the frames it replaced in the frame's TailCall field. Nothing
// bounds that count, and when an error ends the call, gopher-lua's
// traceback writes one line per replaced frame: a handler looping by tail
// calls for its one-second budget (some ten million of them) then spends
// many more seconds and gigabytes building a traceback after its deadline,
// where neither the deadline nor the heap guard can stop it. The wrapper
// caps the count at maxTailCalls; only the traceback and the level
// arithmetic of error(msg, level) read it, and the traceback shows at most
// seven frames of each end anyway.

// maxConcatBytes caps the result of one .. expression.
const maxConcatBytes = maxBuildBytes

// maxTailCalls caps the tail calls a frame remembers.
const maxTailCalls = 64

// luaInstFunc has the shape of gopher-lua's instFunc; its third parameter is
// a *lua.callFrame, which this package never touches.
type luaInstFunc func(L *lua.LState, inst uint32, baseframe unsafe.Pointer) int

//go:linkname luaJumpTable github.com/yuin/gopher-lua.jumpTable
var luaJumpTable [lua.OP_NOP + 1]luaInstFunc

// frameLayout locates the current frame's tail-call count: the offset of
// LState.currentFrame and of callFrame.TailCall, found by reflection when
// the wrappers are installed. ok is false if gopher-lua's layout is not
// the expected one, and then tail calls are not capped (TestTailCalls fails).
var frameLayout struct {
	current, tailCall uintptr
	ok                bool
}

func findFrameLayout() {
	cur, ok := reflect.TypeOf(lua.LState{}).FieldByName("currentFrame")
	if !ok || cur.Type.Kind() != reflect.Pointer || cur.Type.Elem().Kind() != reflect.Struct {
		return
	}
	tc, ok := cur.Type.Elem().FieldByName("TailCall")
	if !ok || tc.Type.Kind() != reflect.Int {
		return
	}
	frameLayout.current, frameLayout.tailCall, frameLayout.ok = cur.Offset, tc.Offset, true
}

// inSandbox reports whether L is a sandbox VM running code (see above).
func inSandbox(L *lua.LState) (*deadline, bool) {
	d, ok := L.Context().(*deadline)
	return d, ok
}

// wrapInstructions installs the wrappers. It runs once, from setGlobals,
// before the first VM is built.
func wrapInstructions() {
	concat := luaJumpTable[lua.OP_CONCAT]
	luaJumpTable[lua.OP_CONCAT] = func(L *lua.LState, inst uint32, baseframe unsafe.Pointer) int {
		d, ok := inSandbox(L)
		if !ok {
			return concat(L, inst, baseframe)
		}
		// Operands are the registers B..C of the current frame; L.Get
		// indexes them from 1.
		b := int(inst & 0x1ff)
		c := int(inst>>9) & 0x1ff
		n := 0
		for i := b; i <= c; i++ {
			switch v := L.Get(i + 1).(type) {
			case lua.LString:
				n += len(v)
			case lua.LNumber:
				n += 24
			}
		}
		if n > maxConcatBytes {
			raiseLimit(L, "string concatenation is larger than %d bytes", maxConcatBytes)
		}
		d.addBuilt(n)
		return concat(L, inst, baseframe)
	}

	findFrameLayout()
	if !frameLayout.ok {
		return
	}
	tailCall := luaJumpTable[lua.OP_TAILCALL]
	luaJumpTable[lua.OP_TAILCALL] = func(L *lua.LState, inst uint32, baseframe unsafe.Pointer) int {
		ret := tailCall(L, inst, baseframe)
		if _, ok := inSandbox(L); ok {
			if cf := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(L), frameLayout.current)); cf != nil {
				if n := (*int)(unsafe.Add(cf, frameLayout.tailCall)); *n > maxTailCalls {
					*n = maxTailCalls
				}
			}
		}
		return ret
	}
}
