package sandbox

import (
	"reflect"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// TestTableLayout checks that luaTable still mirrors gopher-lua's LTable:
// the same fields, of the same types, at the same offsets.
func TestTableLayout(t *testing.T) {
	theirs, ours := reflect.TypeFor[lua.LTable](), reflect.TypeFor[luaTable]()
	if theirs.Size() != ours.Size() || theirs.NumField() != ours.NumField() {
		t.Fatalf("lua.LTable is %d bytes in %d fields; luaTable %d in %d", theirs.Size(), theirs.NumField(), ours.Size(), ours.NumField())
	}
	for i := range theirs.NumField() {
		a, b := theirs.Field(i), ours.Field(i)
		if a.Name != b.Name || a.Type != b.Type || a.Offset != b.Offset {
			t.Errorf("field %d: lua.LTable has %s %v at %d; luaTable %s %v at %d", i, a.Name, a.Type, a.Offset, b.Name, b.Type, b.Offset)
		}
	}
}

// TestTableAccess checks setKnownKey and hashKeys against the table's own
// API.
func TestTableAccess(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	tb := L.CreateTable(0, 0)
	count := func() int { // no key here goes to the array part
		n := 0
		tb.ForEach(func(_, _ lua.LValue) { n++ })
		return n
	}
	check := func(step string) {
		t.Helper()
		if got, want := hashKeys(tb), count(); got != want {
			t.Errorf("%s: hashKeys %d, the table holds %d", step, got, want)
		}
	}
	check("empty")
	tb.RawSetString("a", lua.LString("1"))
	tb.RawSetString("b", lua.LString("2"))
	check("two keys")
	setKnownKey(tb, "a", lua.LString("one"))
	if got := tb.RawGetString("a"); got != lua.LString("one") {
		t.Errorf("after setKnownKey: a = %v", got)
	}
	check("replaced")
	setKnownKey(tb, "b", lua.LNil)
	if got := tb.RawGetString("b"); got != lua.LNil {
		t.Errorf("after removing: b = %v", got)
	}
	check("removed")
	setKnownKey(tb, "b", lua.LString("back"))
	var keys []string
	for k, _ := tb.Next(lua.LNil); k != lua.LNil; k, _ = tb.Next(k) {
		keys = append(keys, k.String())
	}
	if !reflect.DeepEqual(keys, []string{"a", "b"}) {
		t.Errorf("next visits %q, want a and b", keys)
	}
	tb.RawSet(lua.LTrue, lua.LTrue)
	tb.RawSet(lua.LNumber(1e9), lua.LTrue)
	check("keys of other types")
	tb.RawSet(lua.LTrue, lua.LNil)
	check("one removed")
}
