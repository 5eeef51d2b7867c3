package sandbox

import (
	"strconv"
	"strings"
)

// Lua pattern matching.
//
// gopher-lua's matcher cannot be interrupted: a call runs until it is done,
// and backtracking makes it polynomial in the subject length with a degree
// set by the pattern ("(.-)(.-)b" on 4 KB runs for minutes). This matcher
// follows Lua 5.1's lstrlib.c algorithm but counts its steps: every
// patternCheckEvery steps it checks the call's deadline, and after
// maxPatternSteps it gives up with "pattern too complex". The subject length
// is capped as well (maxPatternSubject), which bounds the memory of a match.
const (
	maxPatternSubject = 16 << 10
	maxPatternSteps   = 1 << 20
	patternCheckEvery = 1 << 10
	maxPatternDepth   = 200
	maxCaptures       = 32

	capUnfinished = -1
	capPosition   = -2
)

// patternError aborts a match; the matcher's entry points recover it.
type patternError struct{ msg string }

type capture struct {
	init, len int
}

// matcher holds the state of one match of pat against src.
type matcher struct {
	src, pat string
	done     <-chan struct{} // the call's deadline; nil means none
	doneErr  func() error
	level    int
	capture  [maxCaptures]capture
	steps    int
	next     int // steps at which to check the deadline next
	depth    int
}

func newMatcher(src, pat string, done <-chan struct{}, doneErr func() error) *matcher {
	return &matcher{src: src, pat: pat, done: done, doneErr: doneErr, next: patternCheckEvery}
}

func (m *matcher) fail(msg string) {
	panic(patternError{msg})
}

// tick accounts for n steps of work.
func (m *matcher) tick(n int) {
	m.steps += n
	if m.steps < m.next {
		return
	}
	m.next = m.steps + patternCheckEvery
	if m.steps > maxPatternSteps {
		m.fail("pattern too complex")
	}
	if m.done != nil {
		select {
		case <-m.done:
			msg := "context done"
			if m.doneErr != nil {
				if err := m.doneErr(); err != nil {
					msg = err.Error()
				}
			}
			m.fail(msg)
		default:
		}
	}
}

// run calls f, turning a patternError into an error message.
func (m *matcher) run(f func()) (errMsg string) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(patternError)
			if !ok {
				panic(r)
			}
			errMsg = pe.msg
		}
	}()
	f()
	return ""
}

// find looks for the first match at or after init (0-based) and returns its
// bounds, or -1, -1. The captures stay in m.
func (m *matcher) find(init int, anchorOK bool) (start, end int) {
	p := 0
	anchor := anchorOK && len(m.pat) > 0 && m.pat[0] == '^'
	if anchor {
		p = 1
	}
	for s := init; ; s++ {
		m.level = 0
		if e := m.match(s, p); e >= 0 {
			return s, e
		}
		if s >= len(m.src) || anchor {
			return -1, -1
		}
	}
}

func (m *matcher) match(s, p int) int {
	m.depth++
	if m.depth > maxPatternDepth {
		m.fail("pattern too complex")
	}
	r := m.doMatch(s, p)
	m.depth--
	return r
}

func (m *matcher) doMatch(s, p int) int {
	src, pat := m.src, m.pat
	for {
		m.tick(1)
		if p == len(pat) {
			return s
		}
		c := pat[p]
		switch {
		case c == '(':
			if p+1 < len(pat) && pat[p+1] == ')' {
				return m.startCapture(s, p+2, capPosition)
			}
			return m.startCapture(s, p+1, capUnfinished)
		case c == ')':
			return m.endCapture(s, p+1)
		case c == '$' && p+1 == len(pat):
			if s == len(src) {
				return s
			}
			return -1
		case c == '%' && p+1 < len(pat) && pat[p+1] == 'b':
			s = m.matchBalance(s, p+2)
			if s < 0 {
				return -1
			}
			p += 4
			continue
		case c == '%' && p+1 < len(pat) && pat[p+1] == 'f':
			p += 2
			if p >= len(pat) || pat[p] != '[' {
				m.fail("missing '[' after '%f' in pattern")
			}
			ep := m.classEnd(p)
			var prev, cur byte
			if s > 0 {
				prev = src[s-1]
			}
			if s < len(src) {
				cur = src[s]
			}
			if m.matchBracketClass(prev, p, ep-1) || !m.matchBracketClass(cur, p, ep-1) {
				return -1
			}
			p = ep
			continue
		case c == '%' && p+1 < len(pat) && isDigit(pat[p+1]):
			s = m.matchCapture(s, pat[p+1])
			if s < 0 {
				return -1
			}
			p += 2
			continue
		}
		// A single character class, maybe followed by a quantifier.
		ep := m.classEnd(p)
		matched := s < len(src) && m.singleMatch(src[s], p, ep)
		if ep < len(pat) {
			switch pat[ep] {
			case '?':
				if matched {
					if r := m.match(s+1, ep+1); r >= 0 {
						return r
					}
				}
				p = ep + 1
				continue
			case '*':
				return m.maxExpand(s, p, ep)
			case '+':
				if !matched {
					return -1
				}
				return m.maxExpand(s+1, p, ep)
			case '-':
				return m.minExpand(s, p, ep)
			}
		}
		if !matched {
			return -1
		}
		s++
		p = ep
	}
}

func (m *matcher) maxExpand(s, p, ep int) int {
	i := 0
	for s+i < len(m.src) && m.singleMatch(m.src[s+i], p, ep) {
		i++
	}
	m.tick(i)
	for ; i >= 0; i-- {
		if r := m.match(s+i, ep+1); r >= 0 {
			return r
		}
	}
	return -1
}

func (m *matcher) minExpand(s, p, ep int) int {
	for {
		if r := m.match(s, ep+1); r >= 0 {
			return r
		}
		if s < len(m.src) && m.singleMatch(m.src[s], p, ep) {
			s++
		} else {
			return -1
		}
	}
}

func (m *matcher) startCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		m.fail("too many captures")
	}
	m.capture[m.level] = capture{init: s, len: what}
	m.level++
	r := m.match(s, p)
	if r < 0 {
		m.level--
	}
	return r
}

func (m *matcher) endCapture(s, p int) int {
	l := -1
	for i := m.level - 1; i >= 0; i-- {
		if m.capture[i].len == capUnfinished {
			l = i
			break
		}
	}
	if l < 0 {
		m.fail("invalid pattern capture")
	}
	m.capture[l].len = s - m.capture[l].init
	r := m.match(s, p)
	if r < 0 {
		m.capture[l].len = capUnfinished
	}
	return r
}

func (m *matcher) matchBalance(s, p int) int {
	if p+1 >= len(m.pat) {
		m.fail("missing arguments to '%b'")
	}
	if s >= len(m.src) || m.src[s] != m.pat[p] {
		return -1
	}
	b, e := m.pat[p], m.pat[p+1]
	cont := 1
	for i := s + 1; i < len(m.src); i++ {
		switch m.src[i] {
		case e:
			cont--
			if cont == 0 {
				m.tick(i - s)
				return i + 1
			}
		case b:
			cont++
		}
	}
	m.tick(len(m.src) - s)
	return -1
}

func (m *matcher) matchCapture(s int, d byte) int {
	l := m.checkCapture(d)
	c := m.capture[l]
	if c.len < 0 {
		// A position capture: Lua 5.1 compares its length as a huge
		// unsigned number, so it never matches.
		return -1
	}
	m.tick(c.len)
	if len(m.src)-s >= c.len && m.src[c.init:c.init+c.len] == m.src[s:s+c.len] {
		return s + c.len
	}
	return -1
}

func (m *matcher) checkCapture(d byte) int {
	l := int(d) - '1'
	if l < 0 || l >= m.level || m.capture[l].len == capUnfinished {
		m.fail("invalid capture index")
	}
	return l
}

// classEnd returns the index just past the single-character class at p.
func (m *matcher) classEnd(p int) int {
	pat := m.pat
	c := pat[p]
	p++
	switch c {
	case '%':
		if p >= len(pat) {
			m.fail("malformed pattern (ends with '%')")
		}
		return p + 1
	case '[':
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		// The first character is part of the set even if it is ']'.
		for {
			if p >= len(pat) {
				m.fail("malformed pattern (missing ']')")
			}
			c := pat[p]
			p++
			if c == '%' && p < len(pat) {
				p++
			}
			if p < len(pat) && pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

func (m *matcher) singleMatch(c byte, p, ep int) bool {
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return matchClass(c, m.pat[p+1])
	case '[':
		return m.matchBracketClass(c, p, ep-1)
	default:
		return m.pat[p] == c
	}
}

// matchBracketClass matches c against the set pat[p:ec+1] ("[...]").
func (m *matcher) matchBracketClass(c byte, p, ec int) bool {
	pat := m.pat
	sig := true
	if pat[p+1] == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case pat[p] == '%':
			p++
			if matchClass(c, pat[p]) {
				return sig
			}
		case p+2 < ec && pat[p+1] == '-':
			if pat[p] <= c && c <= pat[p+2] {
				return sig
			}
			p += 2
		case pat[p] == c:
			return sig
		}
	}
	return !sig
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// matchClass matches c against the class letter cl (%a, %d, ...) in the C
// locale; an upper-case letter negates the class, anything else is literal.
func matchClass(c, cl byte) bool {
	lower := cl
	if 'A' <= cl && cl <= 'Z' {
		lower = cl + ('a' - 'A')
	}
	var res bool
	switch lower {
	case 'a':
		res = isAlpha(c)
	case 'c':
		res = c < 32 || c == 127
	case 'd':
		res = isDigit(c)
	case 'l':
		res = 'a' <= c && c <= 'z'
	case 'p':
		res = isPunct(c)
	case 's':
		res = c == ' ' || ('\t' <= c && c <= '\r')
	case 'u':
		res = 'A' <= c && c <= 'Z'
	case 'w':
		res = isAlpha(c) || isDigit(c)
	case 'x':
		res = isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if 'A' <= cl && cl <= 'Z' {
		return !res
	}
	return res
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func isPunct(c byte) bool {
	return (33 <= c && c <= 47) || (58 <= c && c <= 64) || (91 <= c && c <= 96) || (123 <= c && c <= 126)
}

// captureValue returns capture i of the match src[s:e]: a string, or for a
// position capture its 1-based position. With no captures, capture 0 is the
// whole match.
func (m *matcher) captureValue(i, s, e int) (str string, pos int, isPos bool) {
	if i >= m.level {
		if i != 0 {
			m.fail("invalid capture index")
		}
		return m.src[s:e], 0, false
	}
	c := m.capture[i]
	switch c.len {
	case capUnfinished:
		m.fail("unfinished capture")
	case capPosition:
		return "", c.init + 1, true
	}
	return m.src[c.init : c.init+c.len], 0, false
}

// captureString is captureValue as a string (positions in decimal).
func (m *matcher) captureString(i, s, e int) string {
	str, pos, isPos := m.captureValue(i, s, e)
	if isPos {
		return strconv.Itoa(pos)
	}
	return str
}

// hasSpecials reports whether pat contains one of Lua 5.1's SPECIALS; a
// pattern without them is searched for as plain text.
func hasSpecials(pat string) bool {
	return strings.ContainsAny(pat, "^$*+?.([%-")
}
