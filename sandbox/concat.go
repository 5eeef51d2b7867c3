package sandbox

import (
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// The .. operator.
//
// gopher-lua executes a concatenation (OP_CONCAT, R(A) := R(B).. ... ..R(C))
// as one step that joins its operands into a new string: the deadline is
// checked only before it, and nothing bounds its size, so s = s .. s doubles
// a string to gigabytes in about thirty instructions. No option or
// metamethod reaches it (__concat is only consulted for operands that are
// not strings or numbers), so the sandbox wraps the VM's handler of that
// instruction: the wrapper adds up the operands' lengths first and raises a
// Lua error when the result would pass maxConcatBytes, and it tells the
// running call's deadline how many bytes the concatenation builds, which is
// the heap guard's allocation estimate.
//
// The handler table is an unexported variable of gopher-lua, reached with
// go:linkname; the wrapper therefore applies to every gopher-lua state in
// the process (only this package creates any). That ties this file to gopher-lua's internals: go.mod pins
// v1.1.2, and TestConcatCap fails if an upgrade changes the table or the
// instruction's encoding.

// maxConcatBytes caps the result of one .. expression.
const maxConcatBytes = maxBuildBytes

// luaInstFunc has the shape of gopher-lua's instFunc; its third parameter is
// a *lua.callFrame, which this package never touches.
type luaInstFunc func(L *lua.LState, inst uint32, baseframe unsafe.Pointer) int

//go:linkname luaJumpTable github.com/yuin/gopher-lua.jumpTable
var luaJumpTable [lua.OP_NOP + 1]luaInstFunc

// wrapConcat installs the capped concatenation. It runs once, from
// setGlobals, before the first VM is built.
func wrapConcat() {
	orig := luaJumpTable[lua.OP_CONCAT]
	luaJumpTable[lua.OP_CONCAT] = func(L *lua.LState, inst uint32, baseframe unsafe.Pointer) int {
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
		if d, ok := L.Context().(*deadline); ok {
			d.addBuilt(n)
		}
		return orig(L, inst, baseframe)
	}
}
