package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdString is s as encoding/json writes it without HTML escaping.
func stdString(tb testing.TB, s string) string {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and backslash \`, "<a href='x'>&amp;</a>",
		"\b\f\n\r\t", "\x00\x01\x1f\x7f", "é ü 日本 🙂", "\u2028 line \u2029 para",
		"\xff", "\xff\xfe bad", "a\xc3", "\xc3\x28", "\xe2\x82", "\xed\xa0\x80 surrogate",
		"\uFFFD kept", "\xf4\x90\x80\x80 beyond U+10FFFF", "mixed \x01\"\u2028\xff<>&",
	}
	for c := range 0x80 { // every ASCII byte alone
		cases = append(cases, string(rune(c)))
	}
	for _, s := range cases {
		if got, want := string(AppendString(nil, s)), stdString(t, s); got != want {
			t.Errorf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func TestAppendStringAppends(t *testing.T) {
	if got := string(AppendString([]byte(`{"k":`), "v")); got != `{"k":"v"` {
		t.Errorf("got %s", got)
	}
}

// FuzzAppendString checks the writer against encoding/json: the same bytes,
// and for valid UTF-8 a round trip back to the input.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "hello \"you\"\n", "héllo\u2028\x01", "\xff\xfe bad utf-8", "<&>", "\b\f\t\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw := AppendString(nil, s)
		if want := stdString(t, s); string(raw) != want {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, raw, want)
		}
		var back string
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("%s is not a JSON string: %v", raw, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%s decodes to %q, want %q", raw, back, s)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	s := strings.Repeat(`Hello "world", here is a line with é and a tab	in it. `, 8)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
