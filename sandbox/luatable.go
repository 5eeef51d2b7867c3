package sandbox

import (
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Two steps of every call need more of a gopher-lua table than its API
// gives: replacing the values of the event fields kept in vm.fields, and
// checking that a kept global environment holds nothing but its globals.
//
// Through the API, the first costs RawSetString, which besides storing the
// value looks the key up in the table's insertion-order index (keyed by
// interface values, with an allocation) in case it is new; for a key the
// table already has, that is most of its cost. The second would need a
// walk over the table, as the API has no way to count its keys.
//
// So the sandbox reads the table through luaTable, a copy of the layout of
// gopher-lua's LTable (value.go). That ties this file to gopher-lua's
// internals, like the .. wrapper (concat.go): go.mod pins v1.1.2, and
// TestTableLayout fails if an upgrade changes the struct.

// luaTable mirrors lua.LTable field for field.
type luaTable struct {
	Metatable lua.LValue
	array     []lua.LValue
	dict      map[lua.LValue]lua.LValue
	strdict   map[string]lua.LValue
	keys      []lua.LValue
	k2i       map[lua.LValue]int
}

func tableOf(t *lua.LTable) *luaTable { return (*luaTable)(unsafe.Pointer(t)) }

// setKnownKey stores val under key in t, or removes key if val is nil, as
// RawSetString does, for a key that t was given before through
// RawSetString: its insertion-order index (which never drops a key) holds
// it already.
func setKnownKey(t *lua.LTable, key string, val lua.LValue) {
	lt := tableOf(t)
	if val == lua.LNil {
		delete(lt.strdict, key)
		return
	}
	lt.strdict[key] = val
}

// hashKeys returns how many keys with a value t holds outside its array
// part. gopher-lua removes a key from its maps when it is set to nil.
func hashKeys(t *lua.LTable) int {
	lt := tableOf(t)
	return len(lt.strdict) + len(lt.dict)
}
