package sandbox

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzCompile checks that no source makes Compile panic.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"function handle(e, s) return 'hi' end",
		"function handle(e, s)\n  local x = = 1\nend",
		"local t = {} t[1e9] = 1 function handle() end",
		"function handle() end while true do end",
		"x = ('a'):rep(10):gsub('a', '%0%0')",
		"goto x",
		"local function f(...) return arg end function handle() return f(1) end",
		"return ...",
		"--[[",
		"a = {[1]=1, 2, [3]=...}",
		"function handle() return string.find(string.rep('a', 100), '(.-)%1') end",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile("Fuzz.lua", src)
		if err == nil && p == nil {
			t.Fatal("no program and no error")
		}
		if err != nil {
			if se := (*ScriptError)(nil); !errors.As(err, &se) {
				t.Fatalf("error %T: %v", err, err)
			}
		}
	})
}

// FuzzJSONDecode checks that json.decode never panics, accepts only valid
// JSON, and that decode(encode(decode(x))) is stable. Invalid UTF-8 in a
// decoded string is written as \ufffd (as encoding/json does), which
// decodes to U+FFFD itself, so such output is stable from the next round.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		`{"a": [1, 2.5, "x", true, false, null, {}]}`,
		`"\ud83d\ude00\u00e9\n"`,
		`[[[[]]]]`,
		`-0.0e-0`,
		`{"a":1,}`,
		`"\ud800"`,
		"\"\xff\"",
	} {
		f.Add(s)
	}
	v := newVM(vmConfig{})
	defer v.close()
	f.Fuzz(func(t *testing.T, in string) {
		once, err := jsonRoundTrip(t, v, in)
		if err != nil {
			if json.Valid([]byte(in)) && !strings.Contains(err.Error(), "nested deeper") && !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("rejected valid JSON %q: %v", in, err)
			}
			return
		}
		if !json.Valid([]byte(in)) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		twice, err := jsonRoundTrip(t, v, once)
		if err == nil && twice != once && strings.Contains(once, `\ufffd`) {
			once = twice
			twice, err = jsonRoundTrip(t, v, once)
		}
		if err != nil || twice != once {
			t.Fatalf("unstable: %q -> %q -> %q, %v", in, once, twice, err)
		}
	})
}

// FuzzPattern checks that the matcher never panics and always stops.
func FuzzPattern(f *testing.F) {
	f.Add("hello world", "(o)(.-)%1")
	f.Add("f(a(b)c)", "%b()")
	f.Add("THE (quick) fox", "%f[%a]%a+")
	f.Add("aaaa", "a-a-a-$")
	f.Add("x", "[%")
	f.Add("x", "[]")
	f.Add("x", "(()")
	f.Fuzz(func(t *testing.T, src, pat string) {
		if len(src) > maxPatternSubject {
			return
		}
		m := newMatcher(src, pat, nil, nil)
		m.run(func() {
			s, e := m.find(0, true)
			if s < 0 {
				return
			}
			if s > e || e > len(src) {
				t.Fatalf("%q ~ %q: bad match %d,%d", src, pat, s, e)
			}
			for i := range m.level {
				m.captureValue(i, s, e)
			}
		})
	})
}
