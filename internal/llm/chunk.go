package llm

import (
	"unicode/utf16"
	"unicode/utf8"
)

// A streamed answer is one chunk per token, and decoding each with
// encoding/json was most of Parley's work on a streamed call (it scans the
// input twice and allocates for every field). fastChunk reads the chunks
// that carry text, the finish reason or the usage in one pass and without
// allocating beyond the text itself; a chunk it does not take (tool call
// fragments, an error, a number that is not a plain integer, anything
// unusual) is decoded with encoding/json instead. FuzzFastChunk checks that
// whatever it takes, it reads as encoding/json does.

// fastChunk is what a chunk says about choice 0, and its usage.
type fastChunk struct {
	model        string
	piece        string // the text the chunk adds
	finish       string
	usage        *usage
	usageStorage usage
	zeros        int // elements of choices with index 0
}

// decodeFast reads data into c; false means "decode it with encoding/json".
func decodeFast(data []byte, c *fastChunk) bool {
	*c = fastChunk{}
	s := scanner{b: data}
	var seen keys
	ok := s.object(func(key []byte) bool {
		switch seen.see(key, "model", "choices", "usage", "error") {
		case "model":
			v, ok := s.stringOrNull()
			c.model = v
			return ok
		case "choices":
			if s.null() {
				return true
			}
			return s.array(func() bool { return s.choice(c) })
		case "usage":
			if s.null() {
				return true
			}
			c.usage = &c.usageStorage
			var seen keys
			return s.object(func(key []byte) bool {
				switch seen.see(key, "prompt_tokens", "completion_tokens") {
				case "prompt_tokens":
					n, ok := s.int()
					c.usageStorage.PromptTokens = n
					return ok
				case "completion_tokens":
					n, ok := s.int()
					c.usageStorage.CompletionTokens = n
					return ok
				case "":
					return s.skip()
				}
				return false
			})
		case "error":
			return s.null() // an error event: encoding/json reads it
		case "":
			return s.skip()
		}
		return false
	})
	s.ws()
	return ok && !seen.odd && c.zeros <= 1 && s.i == len(s.b)
}

// keys tells the known keys of one object apart: see returns the known
// name key is, "" for another key, or "!" for a key encoding/json would
// read differently (a known one again, or in other letter case, which it
// matches too).
type keys struct {
	mask uint8
	odd  bool
}

func (k *keys) see(key []byte, known ...string) string {
	for i, name := range known {
		switch {
		case string(key) == name:
			if k.mask&(1<<i) != 0 {
				k.odd = true
				return "!"
			}
			k.mask |= 1 << i
			return name
		case equalFold(key, name):
			k.odd = true
			return "!"
		}
	}
	return ""
}

// equalFold reports whether key and name are equal in ASCII letter case;
// encoding/json's folding of other letters (the Kelvin sign, the long s)
// is left to it: keys with bytes beyond ASCII count as matches.
func equalFold(key []byte, name string) bool {
	if len(key) != len(name) {
		for _, c := range key {
			if c >= 0x80 {
				return true
			}
		}
		return false
	}
	for i, c := range key {
		if c >= 0x80 {
			return true
		}
		if c|0x20 != name[i]|0x20 {
			return false
		}
	}
	return true
}

// choice reads one element of choices; only choice 0 counts.
func (s *scanner) choice(c *fastChunk) bool {
	index := 0
	var content, refusal, finish string
	var hasContent, hasRefusal bool
	var seen keys
	ok := s.object(func(key []byte) bool {
		switch seen.see(key, "index", "finish_reason", "delta") {
		case "index":
			n, ok := s.int()
			index = n
			return ok
		case "finish_reason":
			v, ok := s.stringOrNull()
			finish = v
			return ok
		case "delta":
			if s.null() {
				return true
			}
			var seen keys
			return s.object(func(key []byte) bool {
				switch seen.see(key, "content", "refusal", "tool_calls") {
				case "content":
					if s.null() {
						return true
					}
					v, ok := s.string()
					hasContent, content = true, v
					return ok
				case "refusal":
					if s.null() {
						return true
					}
					v, ok := s.string()
					hasRefusal, refusal = true, v
					return ok
				case "tool_calls":
					return s.null() // fragments: encoding/json reads them
				case "":
					return s.skip()
				}
				return false
			})
		case "":
			return s.skip()
		}
		return false
	})
	if !ok || seen.odd || index != 0 {
		return ok && !seen.odd
	}
	c.zeros++
	switch {
	case hasContent:
		c.piece = content
	case hasRefusal:
		c.piece = refusal
	}
	c.finish = finish
	return true
}

// scanner walks JSON text; every method returns false on anything it does
// not read exactly as encoding/json would.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit consumes a literal (null, true, false).
func (s *scanner) lit(word string) bool {
	s.ws()
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// null consumes null if it comes next.
func (s *scanner) null() bool { return s.lit("null") }

// object calls field for each key; field consumes the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.bytes()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if !field(key) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array calls elem for each element; elem consumes it.
func (s *scanner) array(elem func() bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// stringOrNull reads a string, or null as "".
func (s *scanner) stringOrNull() (string, bool) {
	if s.null() {
		return "", true
	}
	return s.string()
}

// string reads a string: only valid UTF-8, escapes as JSON has them.
func (s *scanner) string() (string, bool) {
	b, ok := s.bytes()
	return string(b), ok
}

// bytes reads a string without copying it when it has no escapes: the
// bytes are the input's, or a new buffer with the escapes undone.
func (s *scanner) bytes() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			str := s.b[start:s.i]
			s.i++
			if !utf8.Valid(str) {
				return nil, false // encoding/json would replace the invalid bytes
			}
			return str, true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// escaped reads the rest of a string that has an escape at s.i.
func (s *scanner) escaped(start int) ([]byte, bool) {
	out := append(make([]byte, 0, s.i-start+16), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return nil, false
			}
			return out, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				// A pair, or encoding/json's U+FFFD for a lone half.
				save := s.i
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, ok := s.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							continue
						}
					}
				}
				s.i = save
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

// hex4 reads the four hex digits of a \u escape.
func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// int reads a non-negative integer of at most 15 digits.
func (s *scanner) int() (int, bool) {
	s.ws()
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' && s.i-start < 15 {
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return 0, false
		}
	}
	return n, true
}

// skip consumes any value.
func (s *scanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(func([]byte) bool { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, ok := s.bytes()
		return ok
	case c == 'n':
		return s.lit("null")
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

// number consumes a JSON number.
func (s *scanner) number() bool {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	intStart := s.i
	if digits() == 0 || s.b[intStart] == '0' && s.i-intStart > 1 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return s.i > start
}
