package xmlx

import (
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeText(t *testing.T) {
	tests := []struct {
		in   string
		repl rune
		want string
	}{
		{"", ' ', ""},
		{"plain text, é 日本 🙂", ' ', "plain text, é 日本 🙂"},
		{`Fish & "chips" <now> it's`, ' ', "Fish &amp; &quot;chips&quot; &lt;now&gt; it&apos;s"},
		{"tab\tline\ncr\r", ' ', "tab\tline\ncr\r"},
		{"bell\x07 nul\x00 esc\x1b", ' ', "bell  nul  esc "},
		{"bell\x07 \xff ok", '\uFFFD', "bell\uFFFD \uFFFD ok"},
		{"bad \xff\xfe utf-8", ' ', "bad \uFFFD\uFFFD utf-8"},
		{"non-characters \uFFFE\uFFFF", '\uFFFD', "non-characters \uFFFD\uFFFD"},
		{"kept \uFFFD and \x7f", ' ', "kept \uFFFD and \x7f"},
		{"&amp; already escaped", ' ', "&amp;amp; already escaped"},
	}
	for _, tt := range tests {
		if got := EscapeText(tt.in, tt.repl); got != tt.want {
			t.Errorf("EscapeText(%q, %q) = %q, want %q", tt.in, tt.repl, got, tt.want)
		}
	}
}

// FuzzEscapeText checks that escaped text is well-formed XML in an element
// and in an attribute, and that it reads back as the input wherever the
// input was valid UTF-8 that XML can hold.
func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "a & b", `<x a="1">'</x>`, "\x01\xff\uFFFE", "]]> <!-- -->", "&lt;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := EscapeText(s, ' ')
		if !utf8.ValidString(esc) {
			t.Fatalf("EscapeText(%q) = %q is not valid UTF-8", s, esc)
		}
		var doc struct {
			A    string `xml:"a,attr"`
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal([]byte(`<e a="`+esc+`">`+esc+`</e>`), &doc); err != nil {
			t.Fatalf("EscapeText(%q) = %q is not XML text: %v", s, esc, err)
		}
		holdable := utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
			return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF
		}) < 0
		// XML parsers turn carriage returns into newlines (encoding/xml
		// leaves the other whitespace of attributes as it is).
		text := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
		if holdable && (doc.Text != text || doc.A != text) {
			t.Fatalf("EscapeText(%q) reads back as text %q, attribute %q", s, doc.Text, doc.A)
		}
	})
}

func BenchmarkEscapeText(b *testing.B) {
	s := strings.Repeat(`Fish & "chips", here is a sentence with é in it. `, 8)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		EscapeText(s, ' ')
	}
}
