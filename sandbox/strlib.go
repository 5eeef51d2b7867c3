package sandbox

import (
	"math"
	"math/rand/v2"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Caps on single library calls that would otherwise allocate without bound
// in one step the deadline cannot interrupt.
const (
	maxRepBytes       = 64 << 10 // string.rep
	maxBuildBytes     = 1 << 20  // table.concat, string.gsub, string.format
	maxDateFormatSize = 256      // os.date
)

func strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := float64(L.CheckNumber(2))
	if !(n >= 1) || s == "" {
		L.Push(lua.LString(""))
		return 1
	}
	if float64(len(s))*math.Floor(n) > maxRepBytes {
		raiseLimit(L, "string.rep: result is larger than %d bytes", maxRepBytes)
	}
	out := strings.Repeat(s, int(n))
	charge(L, len(out))
	L.Push(lua.LString(out))
	return 1
}

// charge adds n bytes that a Go function built for the running call to the
// call's allocation estimate, which the heap guard reads, and raises when
// the call must stop (its budget passed, its caller left or the heap guard
// interrupted it), so that Go code working in a loop for a script stops
// with the call. Every built-in and host function that builds values for a
// script charges what it builds.
func charge(L *lua.LState, n int) {
	if d, ok := inSandbox(L); ok && d.spend(n) {
		L.RaiseError("interrupted")
	}
}

// chargeResult wraps a library function that returns one string it built,
// charging the string's length.
func chargeResult(f lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		n := f(L)
		if s, ok := L.Get(-1).(lua.LString); ok && n == 1 {
			charge(L, len(s))
		}
		return n
	}
}

// maxUnpack is how many values unpack returns at most, as in Lua 5.1
// (LUAI_MAXCSTACK).
const maxUnpack = 8000

// luaUnpack is unpack(t [, i [, j]]) that refuses a range of more than
// maxUnpack values at once, where gopher-lua's pushes values until the
// value stack overflows, which takes long with a large range.
func luaUnpack(L *lua.LState) int {
	t := L.CheckTable(1)
	i := float64(L.OptNumber(2, 1))
	var j float64
	if L.Get(3) == lua.LNil {
		j = float64(t.Len())
	} else {
		j = float64(L.CheckNumber(3))
	}
	i, j = math.Floor(i), math.Floor(j)
	if i > j {
		return 0
	}
	if j-i >= maxUnpack {
		L.RaiseError("too many results to unpack")
	}
	n := int(j-i) + 1
	for k := range n {
		L.Push(t.RawGet(lua.LNumber(i + float64(k))))
	}
	return n
}

// matcherFor builds a matcher for a library call, refusing subjects over the
// cap and binding the call's deadline.
func matcherFor(L *lua.LState, fname, src, pat string) *matcher {
	if len(src) > maxPatternSubject {
		raiseLimit(L, "string.%s: subject is longer than %d bytes (patterns are capped; use a plain find)", fname, maxPatternSubject)
	}
	var done <-chan struct{}
	var doneErr func() error
	if ctx := L.Context(); ctx != nil {
		done, doneErr = ctx.Done(), ctx.Err
	}
	return newMatcher(src, pat, done, doneErr)
}

// guard runs f and raises a pattern error as a Lua error.
func guard(L *lua.LState, m *matcher, f func()) {
	if msg := m.run(f); msg != "" {
		if strings.Contains(msg, "too complex") {
			raiseLimit(L, "%s", msg)
		}
		L.RaiseError("%s", msg)
	}
}

// posrelat converts a Lua string position (negative counts from the end).
func posrelat(pos, n int) int {
	if pos < 0 {
		pos += n + 1
	}
	if pos < 0 {
		return 0
	}
	return pos
}

func strFind(L *lua.LState) int  { return strFindAux(L, true) }
func strMatch(L *lua.LState) int { return strFindAux(L, false) }

func strFindAux(L *lua.LState, find bool) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	init := posrelat(L.OptInt(3, 1), len(src)) - 1
	if init < 0 {
		init = 0
	} else if init > len(src) {
		init = len(src)
	}
	if find && (lua.LVAsBool(L.Get(4)) || !hasSpecials(pat)) {
		i := strings.Index(src[init:], pat)
		if i < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + i + 1))
		L.Push(lua.LNumber(init + i + len(pat)))
		return 2
	}
	name := "match"
	if find {
		name = "find"
	}
	m := matcherFor(L, name, src, pat)
	n := 0
	guard(L, m, func() {
		s, e := m.find(init, true)
		if s < 0 {
			L.Push(lua.LNil)
			n = 1
			return
		}
		if find {
			L.Push(lua.LNumber(s + 1))
			L.Push(lua.LNumber(e))
			n = 2 + pushCaptures(L, m, s, e, false)
			return
		}
		n = pushCaptures(L, m, s, e, true)
	})
	return n
}

// pushCaptures pushes the captures of the match src[s:e]; with none and
// whole set, it pushes the whole match.
func pushCaptures(L *lua.LState, m *matcher, s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := 0; i < n; i++ {
		L.Push(captureLValue(m, i, s, e))
	}
	return n
}

func captureLValue(m *matcher, i, s, e int) lua.LValue {
	str, pos, isPos := m.captureValue(i, s, e)
	if isPos {
		return lua.LNumber(pos)
	}
	return lua.LString(str)
}

// strGmatch returns an iterator that matches lazily, one match per call.
func strGmatch(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	matcherFor(L, "gmatch", src, pat) // check the subject now
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		m := matcherFor(L, "gmatch", src, pat)
		n := 0
		guard(L, m, func() {
			for s := pos; s <= len(src); s++ {
				m.level = 0
				if e := m.match(s, 0); e >= 0 {
					pos = e
					if e == s {
						pos++ // an empty match: move on
					}
					n = pushCaptures(L, m, s, e, true)
					return
				}
			}
			pos = len(src) + 1
		})
		return n
	}))
	return 1
}

func strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	repl := L.Get(3)
	switch repl.(type) {
	case lua.LString, lua.LNumber, *lua.LTable, *lua.LFunction:
	default:
		L.ArgError(3, "string/function/table expected")
	}
	maxN := L.OptInt(4, len(src)+1)
	m := matcherFor(L, "gsub", src, pat)
	var b strings.Builder
	n := 0
	guard(L, m, func() {
		anchor := len(pat) > 0 && pat[0] == '^'
		p := 0
		if anchor {
			p = 1
		}
		s := 0
		for n < maxN {
			m.level = 0
			e := m.match(s, p)
			if e >= 0 {
				n++
				gsubValue(L, m, &b, s, e, repl)
			}
			switch {
			case e >= 0 && e > s:
				s = e
			case s < len(src):
				b.WriteByte(src[s])
				s++
			default:
				s = len(src) + 1
			}
			if s > len(src) || anchor || b.Len() > maxBuildBytes {
				break
			}
		}
		if s < len(src) {
			b.WriteString(src[s:])
		}
	})
	if b.Len() > maxBuildBytes {
		raiseLimit(L, "string.gsub: result is larger than %d bytes", maxBuildBytes)
	}
	charge(L, b.Len())
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(n))
	return 2
}

// gsubValue appends the replacement for the match src[s:e].
func gsubValue(L *lua.LState, m *matcher, b *strings.Builder, s, e int, repl lua.LValue) {
	var val lua.LValue
	switch r := repl.(type) {
	case lua.LString, lua.LNumber:
		gsubString(L, m, b, s, e, lua.LVAsString(r))
		return
	case *lua.LTable:
		val = L.GetTable(r, captureLValue(m, 0, s, e))
	case *lua.LFunction:
		L.Push(r)
		n := pushCaptures(L, m, s, e, true)
		L.Call(n, 1)
		val = L.Get(-1)
		L.Pop(1)
	}
	switch v := val.(type) {
	case lua.LString, lua.LNumber:
		if b.Len()+len(lua.LVAsString(v)) > maxBuildBytes {
			raiseLimit(L, "string.gsub: result is larger than %d bytes", maxBuildBytes)
		}
		b.WriteString(lua.LVAsString(v))
	case *lua.LNilType:
		b.WriteString(m.src[s:e])
	case lua.LBool:
		if v {
			L.RaiseError("invalid replacement value (a boolean)")
		}
		b.WriteString(m.src[s:e])
	default:
		L.RaiseError("invalid replacement value (a %s)", val.Type().String())
	}
}

// gsubString expands a replacement string: %0 is the whole match, %1-%9
// the captures, %% a percent sign.
func gsubString(L *lua.LState, m *matcher, b *strings.Builder, s, e int, repl string) {
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		switch {
		case i >= len(repl):
			L.RaiseError("invalid use of '%%' in replacement string")
		case repl[i] == '0':
			b.WriteString(m.src[s:e])
		case isDigit(repl[i]):
			b.WriteString(m.captureString(int(repl[i]-'1'), s, e))
		default:
			b.WriteByte(repl[i])
		}
		if b.Len() > maxBuildBytes {
			raiseLimit(L, "string.gsub: result is larger than %d bytes", maxBuildBytes)
		}
	}
}

// wrapFormat guards string.format, which hands its format to Go's
// fmt.Sprintf: widths and precisions are limited to two digits as in Lua,
// '*' and explicit argument indexes are refused, and the result is capped.
func wrapFormat(format lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		f := L.CheckString(1)
		size := len(f)
		arg := 2
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			i++
			if i < len(f) && f[i] == '%' {
				continue
			}
			for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
				i++
			}
			width, prec := 0, 0
			i, width = formatDigits(L, f, i)
			if i < len(f) && f[i] == '.' {
				i, prec = formatDigits(L, f, i+1)
			}
			if i >= len(f) || !isAlpha(f[i]) {
				L.RaiseError("invalid conversion in format string")
			}
			size += width + prec + 32
			switch f[i] {
			case 's', 'q', 'v':
				n := len(L.Get(arg).String())
				if f[i] == 'q' {
					n = n*6 + 2
				}
				size += n
			default:
				size += 320 // the widest float formatting
			}
			arg++
		}
		if size > maxBuildBytes {
			raiseLimit(L, "string.format: result may be larger than %d bytes", maxBuildBytes)
		}
		return format(L)
	}
}

// formatDigits reads at most two digits at f[i:].
func formatDigits(L *lua.LState, f string, i int) (int, int) {
	n, j := 0, i
	for j < len(f) && isDigit(f[j]) {
		n = n*10 + int(f[j]-'0')
		j++
	}
	if j-i > 2 {
		L.RaiseError("invalid format (width or precision too long)")
	}
	return j, n
}

// wrapDate refuses oversized os.date formats.
func wrapDate(date lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() >= 1 && len(L.CheckString(1)) > maxDateFormatSize {
			raiseLimit(L, "os.date: format is longer than %d bytes", maxDateFormatSize)
		}
		return date(L)
	}
}

// mathRandom is Lua 5.1's math.random with its interval checks (gopher-lua
// panics on an empty interval).
func mathRandom(L *lua.LState) int {
	const maxInt = 1 << 53
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(rand.Float64()))
	case 1:
		hi := math.Floor(float64(L.CheckNumber(1)))
		if !(hi >= 1 && hi <= maxInt) {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(rand.Int64N(int64(hi)) + 1))
	case 2:
		lo := math.Floor(float64(L.CheckNumber(1)))
		hi := math.Floor(float64(L.CheckNumber(2)))
		if !(lo <= hi && lo >= -maxInt && hi <= maxInt) {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(float64(rand.Int64N(int64(hi-lo)+1)) + lo))
	default:
		L.RaiseError("wrong number of arguments")
	}
	return 1
}

// tabConcat is table.concat with its result capped.
func tabConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	var b strings.Builder
	for k := i; k <= j; k++ {
		var s string
		switch v := t.RawGet(lua.LNumber(k)).(type) {
		case lua.LString:
			s = string(v)
		case lua.LNumber:
			s = v.String()
		default:
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		if b.Len()+len(s)+len(sep) > maxBuildBytes {
			raiseLimit(L, "table.concat: result is larger than %d bytes", maxBuildBytes)
		}
		b.WriteString(s)
		if k < j {
			b.WriteString(sep)
		}
		if k == math.MaxInt {
			break
		}
	}
	charge(L, b.Len())
	L.Push(lua.LString(b.String()))
	return 1
}
