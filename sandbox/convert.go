package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// sessionError is a session value the host cannot convert; path names it
// ("session.cart[2]").
type sessionError struct {
	path []string // innermost key first
	msg  string
}

func (e *sessionError) Error() string {
	p := "session"
	for i := len(e.path) - 1; i >= 0; i-- {
		if k := e.path[i]; len(k) > 0 && k[0] == '[' {
			p += k
		} else {
			p += "." + k
		}
	}
	return p + ": " + e.msg
}

// sessionTable converts the caller's session (as decoded by encoding/json,
// with or without UseNumber) to a Lua table. Map keys are inserted in sorted
// order so that pairs() is deterministic.
func (v *vm) sessionTable(s map[string]any) (*lua.LTable, error) {
	if len(s) == 0 {
		return v.L.CreateTable(0, 0), nil
	}
	lv, err := v.fromGo(s, 0)
	if err != nil {
		return nil, err
	}
	return lv.(*lua.LTable), nil
}

func (v *vm) fromGo(x any, depth int) (lua.LValue, error) {
	if depth > maxJSONDepth {
		return nil, &sessionError{msg: fmt.Sprintf("nested deeper than %d levels", maxJSONDepth)}
	}
	switch t := x.(type) {
	case nil:
		return lua.LNil, nil
	case string:
		return lua.LString(t), nil
	case bool:
		return lua.LBool(t), nil
	case float64:
		return lua.LNumber(t), nil
	case float32:
		return lua.LNumber(t), nil
	case int:
		return lua.LNumber(t), nil
	case int64:
		return lua.LNumber(t), nil
	case int32:
		return lua.LNumber(t), nil
	case uint64:
		return lua.LNumber(t), nil
	case uint32:
		return lua.LNumber(t), nil
	case uint:
		return lua.LNumber(t), nil
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return nil, &sessionError{msg: fmt.Sprintf("bad number %q", string(t))}
		}
		return lua.LNumber(f), nil
	case []any:
		tb := v.L.CreateTable(len(t), 0)
		for i, e := range t {
			lv, err := v.fromGo(e, depth+1)
			if err != nil {
				addPath(err, "["+strconv.Itoa(i+1)+"]")
				return nil, err
			}
			tb.RawSetInt(i+1, lv)
		}
		return tb, nil
	case map[string]any:
		tb := v.L.CreateTable(0, len(t))
		if len(t) == 0 {
			return tb, nil
		}
		var stack [8]string // most maps are small: no allocation to sort them
		keys := stack[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			lv, err := v.fromGo(t[k], depth+1)
			if err != nil {
				addPath(err, k)
				return nil, err
			}
			if lv != lua.LNil {
				tb.RawSetString(k, lv)
			}
		}
		return tb, nil
	default:
		return nil, &sessionError{msg: fmt.Sprintf("unsupported type %T", x)}
	}
}

func addPath(err error, key string) {
	var se *sessionError
	if errors.As(err, &se) {
		se.path = append(se.path, key)
	}
}

// sessionFromLua converts the session table back after a successful call,
// enforcing the size cap on its JSON encoding. An empty table comes back as
// before, the call's own empty map if it had one.
func (v *vm) sessionFromLua(script string, lv lua.LValue, before map[string]any, maxBytes int) (map[string]any, *ScriptError) {
	t, ok := lv.(*lua.LTable)
	if !ok {
		return nil, newScriptError(script, KindRuntime, "session must stay a table")
	}
	if t.Metatable == lua.LNil && maxBytes >= len("{}") {
		if k, _ := t.Next(lua.LNil); k == lua.LNil {
			if before != nil && len(before) == 0 {
				return before, nil
			}
			return map[string]any{}, nil // what the encoder makes of it, quicker
		}
	}
	// The VM's encoder, so that its buffers and bound materialize are
	// made once; it keeps no Lua value after the conversion.
	e := &v.enc
	e.buf, e.max, e.wantGo, e.root = e.buf[:0], maxBytes, true, "session"
	e.stack, e.path, e.ents = e.stack[:0], e.path[:0], e.ents[:0]
	x, err := e.table(t, 0)
	clear(e.stack[:cap(e.stack)])
	clear(e.path[:cap(e.path)])
	clear(e.ents[:cap(e.ents)])
	if err != nil {
		var ee *encodeError
		if !errors.As(err, &ee) {
			return nil, newScriptError(script, KindRuntime, "%s", err.Error())
		}
		if ee.kind == KindLimit {
			return nil, newScriptError(script, KindLimit, "session is larger than %d bytes as JSON", maxBytes)
		}
		return nil, newScriptError(script, ee.kind, "%s", ee.Error())
	}
	if len(e.buf) > maxBytes {
		return nil, newScriptError(script, KindLimit, "session is larger than %d bytes as JSON", maxBytes)
	}
	switch m := x.(type) {
	case map[string]any:
		return m, nil
	default:
		// A session holding only keys 1..n encodes as an array; keep it an
		// object so the session is always a map.
		arr := m.([]any)
		out := make(map[string]any, len(arr))
		for i, e := range arr {
			out[strconv.Itoa(i+1)] = e
		}
		return out, nil
	}
}
