package xmlx

import (
	"strings"
	"unicode/utf8"
)

// EscapeText returns s as XML character data, usable in an attribute value
// too: & < > " and ' become &amp; &lt; &gt; &quot; and &apos;, each byte of
// invalid UTF-8 becomes U+FFFD, and each character XML 1.0 cannot hold (a
// control character other than tab, newline and carriage return; U+FFFE;
// U+FFFF) becomes repl, which must itself be one XML can hold. Text that
// needs none of this is returned as it is.
func EscapeText(s string, repl rune) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && !special(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case !special(c):
				b.WriteByte(c)
			case c == '&':
				b.WriteString("&amp;")
			case c == '<':
				b.WriteString("&lt;")
			case c == '>':
				b.WriteString("&gt;")
			case c == '"':
				b.WriteString("&quot;")
			case c == '\'':
				b.WriteString("&apos;")
			default: // a control character
				b.WriteRune(repl)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0xFFFE || r == 0xFFFF:
			b.WriteRune(repl)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// special reports whether the ASCII byte c is markup or a control
// character XML cannot hold.
func special(c byte) bool {
	switch c {
	case '&', '<', '>', '"', '\'':
		return true
	case '\t', '\n', '\r':
		return false
	}
	return c < 0x20
}
