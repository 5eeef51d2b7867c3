package sandbox

import (
	"regexp"
	"regexp/syntax"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The re module: regular expressions in Go's RE2 syntax, matched in time
// linear in the subject (no backtracking), unlike Lua patterns.
//
// A Go regexp match cannot be interrupted either, so its work is bounded
// before it starts: patterns are capped at maxRegexpPattern bytes, subjects
// at maxRegexpSubject, and the product of the subject length and the
// compiled program's size at maxRegexpWork, which keeps one call in the
// low milliseconds.
const (
	maxRegexpPattern = 1024
	maxRegexpSubject = 1 << 20
	maxRegexpWork    = 1 << 24
	maxRegexpResults = 10000
	maxRegexpCache   = 64 // compiled patterns kept per VM
)

type compiledRegexp struct {
	re    *regexp.Regexp
	insts int
	err   string
}

// regexpCache keeps a VM's compiled patterns; handlers use few, constant ones.
type regexpCache map[string]*compiledRegexp

func (v *vm) compileRegexp(L *lua.LState, pat string) *compiledRegexp {
	if c, ok := v.regexps[pat]; ok {
		if c.err != "" {
			L.RaiseError("%s", c.err)
		}
		return c
	}
	if len(pat) > maxRegexpPattern {
		raiseLimit(L, "re: pattern is longer than %d bytes", maxRegexpPattern)
	}
	c := &compiledRegexp{}
	parsed, err := syntax.Parse(pat, syntax.Perl)
	if err == nil {
		var prog *syntax.Prog
		if prog, err = syntax.Compile(parsed.Simplify()); err == nil {
			c.insts = len(prog.Inst)
			c.re, err = regexp.Compile(pat)
		}
	}
	if err != nil {
		c.err = "re: " + err.Error()
	}
	if v.regexps == nil || len(v.regexps) >= maxRegexpCache {
		v.regexps = regexpCache{}
	}
	v.regexps[pat] = c
	if c.err != "" {
		L.RaiseError("%s", c.err)
	}
	return c
}

// regexpArgs reads subject and pattern and checks the work bound.
func (v *vm) regexpArgs(L *lua.LState) (string, *regexp.Regexp) {
	s := L.CheckString(1)
	c := v.compileRegexp(L, L.CheckString(2))
	if len(s) > maxRegexpSubject {
		raiseLimit(L, "re: subject is longer than %d bytes", maxRegexpSubject)
	}
	if len(s)*c.insts > maxRegexpWork {
		raiseLimit(L, "re: pattern too complex for a subject of %d bytes", len(s))
	}
	return s, c.re
}

// openRegexp builds the re module.
//
//	re.test(s, p)              -> boolean
//	re.find(s, p [, init])     -> start, end | nil
//	re.match(s, p)             -> captures (or the whole match) | nil
//	re.find_all(s, p [, n])    -> {match, ...}
//	re.replace(s, p, r [, n])  -> string, count   (r: "$1"-style template or function)
//	re.split(s, p [, n])       -> {piece, ...}
//	re.quote(s)                -> s with every metacharacter escaped
func (v *vm) openRegexp() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 7)
	t.RawSetString("test", L.NewFunction(func(L *lua.LState) int {
		s, re := v.regexpArgs(L)
		L.Push(lua.LBool(re.MatchString(s)))
		return 1
	}))
	t.RawSetString("find", L.NewFunction(func(L *lua.LState) int {
		s, re := v.regexpArgs(L)
		init := posrelat(L.OptInt(3, 1), len(s)) - 1
		init = min(max(init, 0), len(s))
		loc := re.FindStringIndex(s[init:])
		if loc == nil {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + loc[0] + 1))
		L.Push(lua.LNumber(init + loc[1]))
		return 2
	}))
	t.RawSetString("match", L.NewFunction(func(L *lua.LState) int {
		s, re := v.regexpArgs(L)
		m := re.FindStringSubmatchIndex(s)
		if m == nil {
			L.Push(lua.LNil)
			return 1
		}
		return pushSubmatches(L, s, m, true)
	}))
	t.RawSetString("find_all", L.NewFunction(func(L *lua.LState) int {
		s, re := v.regexpArgs(L)
		n := min(L.OptInt(3, maxRegexpResults), maxRegexpResults)
		all := re.FindAllStringIndex(s, n)
		charge(L, decodedTableBytes+decodedSlotBytes*len(all))
		out := L.CreateTable(len(all), 0)
		for _, m := range all {
			out.Append(lua.LString(s[m[0]:m[1]]))
		}
		L.Push(out)
		return 1
	}))
	t.RawSetString("replace", L.NewFunction(v.regexpReplace))
	t.RawSetString("split", L.NewFunction(func(L *lua.LState) int {
		s, re := v.regexpArgs(L)
		n := L.OptInt(3, -1)
		if n < 0 || n > maxRegexpResults {
			n = maxRegexpResults
		}
		parts := re.Split(s, n)
		charge(L, decodedTableBytes+decodedSlotBytes*len(parts))
		out := L.CreateTable(len(parts), 0)
		for _, p := range parts {
			out.Append(lua.LString(p))
		}
		L.Push(out)
		return 1
	}))
	t.RawSetString("quote", L.NewFunction(func(L *lua.LState) int {
		s := L.CheckString(1)
		if len(s) > maxRegexpSubject {
			raiseLimit(L, "re.quote: input is longer than %d bytes", maxRegexpSubject)
		}
		q := regexp.QuoteMeta(s)
		charge(L, len(q))
		L.Push(lua.LString(q))
		return 1
	}))
	return t
}

// pushSubmatches pushes the captures of match m of s (nil for a group that
// did not take part), or the whole match when there are none and whole is set.
func pushSubmatches(L *lua.LState, s string, m []int, whole bool) int {
	groups := len(m)/2 - 1
	if groups == 0 {
		if whole {
			L.Push(lua.LString(s[m[0]:m[1]]))
			return 1
		}
		return 0
	}
	for g := 1; g <= groups; g++ {
		if m[2*g] < 0 {
			L.Push(lua.LNil)
		} else {
			L.Push(lua.LString(s[m[2*g]:m[2*g+1]]))
		}
	}
	return groups
}

func (v *vm) regexpReplace(L *lua.LState) int {
	s, re := v.regexpArgs(L)
	repl := L.Get(3)
	switch repl.(type) {
	case lua.LString, lua.LNumber, *lua.LFunction:
	default:
		L.ArgError(3, "string or function expected")
	}
	n := L.OptInt(4, -1)
	if n < 0 || n > maxRegexpResults {
		n = maxRegexpResults
	}
	matches := re.FindAllStringSubmatchIndex(s, n)
	// A template expands to at most its length plus one match per '$'.
	refs := 0
	if str, ok := repl.(lua.LString); ok {
		refs = strings.Count(string(str), "$")
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		b.WriteString(s[last:m[0]])
		switch r := repl.(type) {
		case *lua.LFunction:
			L.Push(r)
			L.Push(lua.LString(s[m[0]:m[1]]))
			nargs := 1 + pushSubmatches(L, s, m, false)
			L.Call(nargs, 1)
			switch out := L.Get(-1).(type) {
			case lua.LString, lua.LNumber:
				b.WriteString(lua.LVAsString(out))
			case *lua.LNilType:
				b.WriteString(s[m[0]:m[1]])
			default:
				L.RaiseError("re.replace: invalid replacement value (a %s)", out.Type().String())
			}
			L.Pop(1)
		default:
			tmpl := lua.LVAsString(r)
			if b.Len()+len(tmpl)+refs*(m[1]-m[0]) > maxBuildBytes {
				raiseLimit(L, "re.replace: result is larger than %d bytes", maxBuildBytes)
			}
			b.Write(re.ExpandString(nil, tmpl, s, m))
		}
		last = m[1]
		if b.Len() > maxBuildBytes {
			raiseLimit(L, "re.replace: result is larger than %d bytes", maxBuildBytes)
		}
	}
	b.WriteString(s[last:])
	if b.Len() > maxBuildBytes {
		raiseLimit(L, "re.replace: result is larger than %d bytes", maxBuildBytes)
	}
	charge(L, b.Len())
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(len(matches)))
	return 2
}
