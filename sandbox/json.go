package sandbox

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"

	"github.com/parleyhq/parley/internal/jsonx"
)

// Limits of the json module.
const (
	maxJSONInput  = 1 << 20 // json.decode input
	maxJSONOutput = 1 << 20 // json.encode output
	maxJSONDepth  = 32      // nesting, both ways; also the session limit
)

func (v *vm) jsonEncode(L *lua.LState) int {
	e := encoder{max: maxJSONOutput, materialize: v.materialize}
	if _, err := e.encode(L.CheckAny(1), 0); err != nil {
		if ee := (*encodeError)(nil); errors.As(err, &ee) && ee.kind == KindLimit {
			raiseLimit(L, "json.encode: %s", err.Error())
		}
		L.RaiseError("json.encode: %s", err.Error())
	}
	charge(L, len(e.buf))
	L.Push(lua.LString(e.buf))
	return 1
}

func jsonDecode(L *lua.LState) int {
	s := L.CheckString(1)
	if len(s) > maxJSONInput {
		raiseLimit(L, "json.decode: input is larger than %d bytes", maxJSONInput)
	}
	v, err := decodeJSON(L, s)
	if err != nil {
		L.RaiseError("json.decode: %s", err.Error())
	}
	L.Push(v)
	return 1
}

// encodeError is a value that cannot be encoded, with the path to it.
type encodeError struct {
	kind ErrorKind // KindLimit for size, KindRuntime otherwise
	path string
	msg  string
}

func (e *encodeError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

// encoder writes Lua values as compact JSON: tables whose keys are exactly
// 1..n become arrays, other tables objects with sorted keys (number keys in
// their string form), and an empty table is {}. With wantGo it also returns
// the value as Go data the way encoding/json would decode that JSON, except
// that integral numbers become int64.
type encoder struct {
	buf    []byte
	max    int
	wantGo bool
	root   string // name of the root value in error paths
	stack  []*lua.LTable
	path   []pathElem // where the value being written is, for errors
	ents   []entry    // entries of the tables being written, innermost last
	// materialize, when set, is applied to every table before reading it.
	materialize func(*lua.LTable)
}

// pathElem is a step into a table: the key of an object's entry, or the
// index (from 1) of an array's element.
type pathElem struct {
	key   string
	index int
}

func (e *encoder) fail(kind ErrorKind, format string, args ...any) *encodeError {
	var b strings.Builder
	b.WriteString(e.root)
	for _, p := range e.path {
		switch {
		case p.index > 0:
			fmt.Fprintf(&b, "[%d]", p.index)
		case b.Len() == 0:
			b.WriteString(p.key)
		default:
			b.WriteString(".")
			b.WriteString(p.key)
		}
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &encodeError{kind: kind, path: b.String(), msg: msg}
}

func (e *encoder) tooBig() *encodeError {
	return e.fail(KindLimit, "larger than %d bytes as JSON", e.max)
}

func (e *encoder) encode(v lua.LValue, depth int) (any, error) {
	if len(e.buf) > e.max {
		return nil, e.tooBig()
	}
	switch x := v.(type) {
	case *lua.LNilType:
		e.buf = append(e.buf, "null"...)
		return nil, nil
	case lua.LBool:
		e.buf = strconv.AppendBool(e.buf, bool(x))
		return bool(x), nil
	case lua.LNumber:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, e.fail(KindRuntime, "cannot store %v", f)
		}
		e.buf = appendJSONNumber(e.buf, f)
		if !e.wantGo {
			return nil, nil
		}
		if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
			return int64(f), nil
		}
		return f, nil
	case lua.LString:
		if len(e.buf)+len(x) > e.max {
			return nil, e.tooBig()
		}
		e.buf = jsonx.AppendString(e.buf, string(x))
		if !e.wantGo {
			return nil, nil
		}
		return string(x), nil
	case *lua.LTable:
		return e.table(x, depth)
	default:
		if _, ok := isSecret(v); ok {
			return nil, e.fail(KindRuntime, "a secret cannot be stored or encoded; %s", secretUse)
		}
		return nil, e.fail(KindRuntime, "cannot store a %s", v.Type().String())
	}
}

type entry struct {
	key string
	val lua.LValue
}

func (e *encoder) table(t *lua.LTable, depth int) (any, error) {
	if depth >= maxJSONDepth {
		return nil, e.fail(KindRuntime, "nested deeper than %d levels", maxJSONDepth)
	}
	if slices.Contains(e.stack, t) {
		return nil, e.fail(KindRuntime, "table contains itself")
	}
	e.stack = append(e.stack, t)
	// The entries of this table go to e.ents[base:], after those of the
	// tables it is nested in, and are dropped when it is done.
	base := len(e.ents)
	defer func() {
		e.stack = e.stack[:len(e.stack)-1]
		clear(e.ents[base:])
		e.ents = e.ents[:base]
	}()
	if e.materialize != nil {
		e.materialize(t)
	}

	// One pass over the table's parts (see luaTable; its maps hold no nil
	// values) counts the keys, checks whether they are exactly 1..n, and
	// keeps the string keys' entries.
	lt := tableOf(t)
	n, maxIndex, ints := 0, 0.0, true
	for i, val := range lt.array {
		if val != lua.LNil {
			n++
			maxIndex = float64(i + 1)
		}
	}
	for k, val := range lt.strdict {
		n++
		ints = false
		e.ents = append(e.ents, entry{k, val})
	}
	for k := range lt.dict {
		n++
		if f, ok := k.(lua.LNumber); ok && float64(f) >= 1 && float64(f) == math.Trunc(float64(f)) {
			maxIndex = max(maxIndex, float64(f))
		} else {
			ints = false
		}
	}
	if n == 0 {
		e.buf = append(e.buf, "{}"...)
		if e.wantGo {
			return map[string]any{}, nil
		}
		return nil, nil
	}
	if n*2 > e.max-len(e.buf) {
		return nil, e.tooBig()
	}
	if ints && maxIndex == float64(n) {
		var arr []any
		if e.wantGo {
			arr = make([]any, 0, n)
		}
		e.buf = append(e.buf, '[')
		for i := 1; i <= n; i++ {
			if i > 1 {
				e.buf = append(e.buf, ',')
			}
			e.path = append(e.path, pathElem{index: i})
			x, err := e.encode(t.RawGetInt(i), depth+1)
			e.path = e.path[:len(e.path)-1]
			if err != nil {
				return nil, err
			}
			if e.wantGo {
				arr = append(arr, x)
			}
		}
		e.buf = append(e.buf, ']')
		return arr, nil
	}

	// An object: number keys are written in their string form.
	for i, val := range lt.array {
		if val != lua.LNil {
			e.ents = append(e.ents, entry{strconv.Itoa(i + 1), val})
		}
	}
	for k, val := range lt.dict {
		key, ok := k.(lua.LNumber)
		if !ok {
			return nil, e.fail(KindRuntime, "cannot store a table with a %s key", k.Type().String())
		}
		e.ents = append(e.ents, entry{key.String(), val})
	}
	ents := e.ents[base:]
	slices.SortFunc(ents, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	var obj map[string]any
	if e.wantGo {
		obj = make(map[string]any, len(ents))
	}
	e.buf = append(e.buf, '{')
	for i := range len(ents) {
		// Nested tables append to e.ents, which may move it: index it anew.
		en := e.ents[base+i]
		if i > 0 {
			if en.key == e.ents[base+i-1].key {
				return nil, e.fail(KindRuntime, "key %q appears both as a number and as a string", en.key)
			}
			e.buf = append(e.buf, ',')
		}
		e.buf = jsonx.AppendString(e.buf, en.key)
		e.buf = append(e.buf, ':')
		e.path = append(e.path, pathElem{key: en.key})
		x, err := e.encode(en.val, depth+1)
		e.path = e.path[:len(e.path)-1]
		if err != nil {
			return nil, err
		}
		if e.wantGo {
			obj[en.key] = x
		}
	}
	e.buf = append(e.buf, '}')
	return obj, nil
}

// appendJSONNumber formats f like encoding/json does, with integers in
// plain decimal.
func appendJSONNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		fmtc = 'e'
	}
	return strconv.AppendFloat(b, f, fmtc, -1, 64)
}

// decodeError is malformed JSON.
type decodeError struct {
	msg string
	pos int // 1-based byte offset
}

func (e *decodeError) Error() string {
	return e.msg + " at position " + strconv.Itoa(e.pos)
}

// decodeJSON parses s into Lua values: objects and arrays become tables,
// null becomes nil (so it leaves a hole in an array).
//
// The values it builds are charged to the running call's allocation
// estimate as it goes, and it stops with errInterrupted when the call must
// stop, so a large document neither hides from the heap guard nor outlives
// the call's deadline.
func decodeJSON(L *lua.LState, s string) (lua.LValue, error) {
	d := decoder{L: L, s: s}
	d.dl, _ = inSandbox(L)
	d.space()
	v, err := d.value(0)
	if err == nil {
		d.space()
		if d.i < len(d.s) {
			err = d.fail("unexpected data after the value")
		}
	}
	if d.dl != nil && d.dl.spend(d.pending) && err == nil {
		err = errInterrupted
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// errInterrupted is a host function's failure when the call it works for
// must stop; the call's outcome says why (timeout or limit).
var errInterrupted = errors.New("interrupted")

// What the decoder charges for the values it builds: a table, and a slot
// of a table or a boxed number (strings add their length).
const (
	decodedTableBytes = 112
	decodedSlotBytes  = 16
	// decodeChargeBytes is how much the decoder charges at once, and so
	// how often it checks the call's deadline.
	decodeChargeBytes = 16 << 10
)

type decoder struct {
	L       *lua.LState
	s       string
	i       int
	dl      *deadline // the running call's; nil outside a call
	pending int       // bytes built and not charged yet
}

// built charges n bytes of decoded values, checking the deadline every
// decodeChargeBytes.
func (d *decoder) built(n int) error {
	d.pending += n
	if d.pending < decodeChargeBytes || d.dl == nil {
		return nil
	}
	stop := d.dl.spend(d.pending)
	d.pending = 0
	if stop {
		return errInterrupted
	}
	return nil
}

func (d *decoder) fail(msg string) error {
	return &decodeError{msg: msg, pos: d.i + 1}
}

func (d *decoder) unexpected() error {
	if d.i >= len(d.s) {
		return d.fail("unexpected end of input")
	}
	return d.fail("unexpected character " + strconv.QuoteRuneToASCII(rune(d.s[d.i])))
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) literal(word string, v lua.LValue) (lua.LValue, error) {
	if !strings.HasPrefix(d.s[d.i:], word) {
		return nil, d.unexpected()
	}
	d.i += len(word)
	return v, nil
}

func (d *decoder) value(depth int) (lua.LValue, error) {
	if d.i >= len(d.s) {
		return nil, d.unexpected()
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		if err := d.built(decodedSlotBytes + len(s)); err != nil {
			return nil, err
		}
		return lua.LString(s), nil
	case c == 't':
		return d.literal("true", lua.LTrue)
	case c == 'f':
		return d.literal("false", lua.LFalse)
	case c == 'n':
		return d.literal("null", lua.LNil)
	case c == '-' || isDigit(c):
		return d.number()
	default:
		return nil, d.unexpected()
	}
}

func (d *decoder) object(depth int) (lua.LValue, error) {
	if depth >= maxJSONDepth {
		return nil, d.fail("nested deeper than " + strconv.Itoa(maxJSONDepth) + " levels")
	}
	d.i++ // {
	if err := d.built(decodedTableBytes); err != nil {
		return nil, err
	}
	t := d.L.CreateTable(0, 4)
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return t, nil
	}
	for {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.unexpected()
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if err := d.built(decodedSlotBytes + len(k)); err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.unexpected()
		}
		d.i++
		d.space()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		t.RawSetString(k, v)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			return t, nil
		}
		return nil, d.unexpected()
	}
}

func (d *decoder) array(depth int) (lua.LValue, error) {
	if depth >= maxJSONDepth {
		return nil, d.fail("nested deeper than " + strconv.Itoa(maxJSONDepth) + " levels")
	}
	d.i++ // [
	if err := d.built(decodedTableBytes); err != nil {
		return nil, err
	}
	t := d.L.CreateTable(4, 0)
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return t, nil
	}
	for n := 1; ; n++ {
		d.space()
		v, err := d.value(depth + 1)
		if err == nil {
			err = d.built(decodedSlotBytes)
		}
		if err != nil {
			return nil, err
		}
		t.RawSetInt(n, v)
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			return t, nil
		}
		return nil, d.unexpected()
	}
}

func (d *decoder) number() (lua.LValue, error) {
	start := d.i
	s := d.s
	if d.i < len(s) && s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(s) && s[d.i] == '0':
		d.i++
	case d.i < len(s) && '1' <= s[d.i] && s[d.i] <= '9':
		for d.i < len(s) && isDigit(s[d.i]) {
			d.i++
		}
	default:
		return nil, d.unexpected()
	}
	if d.i < len(s) && s[d.i] == '.' {
		d.i++
		if d.i >= len(s) || !isDigit(s[d.i]) {
			return nil, d.unexpected()
		}
		for d.i < len(s) && isDigit(s[d.i]) {
			d.i++
		}
	}
	if d.i < len(s) && (s[d.i] == 'e' || s[d.i] == 'E') {
		d.i++
		if d.i < len(s) && (s[d.i] == '+' || s[d.i] == '-') {
			d.i++
		}
		if d.i >= len(s) || !isDigit(s[d.i]) {
			return nil, d.unexpected()
		}
		for d.i < len(s) && isDigit(s[d.i]) {
			d.i++
		}
	}
	f, err := strconv.ParseFloat(s[start:d.i], 64)
	if err != nil {
		d.i = start
		return nil, d.fail("number out of range")
	}
	return lua.LNumber(f), nil
}

// str parses a string starting at the opening quote.
func (d *decoder) str() (string, error) {
	d.i++ // "
	start := d.i
	// Fast path: no escapes.
	for d.i < len(d.s) {
		c := d.s[d.i]
		if c == '"' {
			d.i++
			return d.s[start : d.i-1], nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", d.fail("control character in string")
		}
		d.i++
	}
	var b []byte
	b = append(b, d.s[start:d.i]...)
	for {
		if d.i >= len(d.s) {
			return "", d.fail("unterminated string")
		}
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), nil
		case c < 0x20:
			return "", d.fail("control character in string")
		case c != '\\':
			b = append(b, c)
			d.i++
			continue
		}
		d.i++ // backslash
		if d.i >= len(d.s) {
			return "", d.fail("unterminated string")
		}
		esc := d.s[d.i]
		d.i++
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.fail("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if strings.HasPrefix(d.s[d.i:], `\u`) {
					save := d.i
					d.i += 2
					if lo, ok := d.hex4(); ok {
						if dec := utf16.DecodeRune(r, lo); dec != utf8.RuneError {
							r2 = dec
						} else {
							d.i = save
						}
					} else {
						d.i = save
					}
				}
				r = r2
			}
			b = utf8.AppendRune(b, r)
		default:
			d.i--
			return "", d.fail("invalid escape")
		}
	}
}

func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(d.s[d.i : d.i+4]) {
		var v byte
		switch {
		case isDigit(c):
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	d.i += 4
	return r, true
}
