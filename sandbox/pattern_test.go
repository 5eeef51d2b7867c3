package sandbox

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPatternsGolden runs testdata/patterns.lua, whose golden output came
// from Lua 5.1.5, on the sandbox's matcher.
func TestPatternsGolden(t *testing.T) {
	src, err := os.ReadFile("testdata/patterns.lua")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/patterns.golden")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile("patterns.lua", string(src))
	if err != nil {
		t.Fatal(err)
	}
	rt := New(Config{MaxReplyBytes: 1 << 20, DefaultTimeout: testTimeout})
	defer rt.Close()
	res, err := rt.Run(context.Background(), Call{Key: testKey, Program: prog, Event: testEvent()})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(res.Reply.Text, "\n")
	exp := strings.Split(string(want), "\n")
	if len(got) != len(exp) {
		t.Fatalf("got %d lines, want %d", len(got), len(exp))
	}
	for i := range exp {
		if got[i] != exp[i] {
			t.Errorf("got  %s\nwant %s", got[i], exp[i])
		}
	}
}

func TestMatcherDirect(t *testing.T) {
	tests := []struct {
		src, pat   string
		start, end int
		err        string
	}{
		{"hello", "l+", 2, 4, ""},
		{"hello", "^h", 0, 1, ""},
		{"hello", "o$", 4, 5, ""},
		{"hello", "x", -1, -1, ""},
		{"", "", 0, 0, ""},
		{"a", "%", 0, 0, "malformed pattern (ends with '%')"},
		{"a", "[a", 0, 0, "malformed pattern (missing ']')"},
		{"a", "(", 0, 0, "unfinished capture"},
		{strings.Repeat("a", 200), strings.Repeat("a?", 300), 0, 0, "pattern too complex"},
	}
	for _, tt := range tests {
		m := newMatcher(tt.src, tt.pat, nil, nil)
		var s, e int
		msg := m.run(func() {
			s, e = m.find(0, true)
			if s >= 0 {
				for i := range m.level {
					m.captureValue(i, s, e)
				}
			}
		})
		if msg != tt.err {
			t.Errorf("%q ~ %q: error %q, want %q", tt.src, tt.pat, msg, tt.err)
			continue
		}
		if tt.err == "" && (s != tt.start || e != tt.end) {
			t.Errorf("%q ~ %q: got %d,%d, want %d,%d", tt.src, tt.pat, s, e, tt.start, tt.end)
		}
	}
}

// TestMatcherStepBudget checks that the worst patterns stop quickly with no
// deadline at all.
func TestMatcherStepBudget(t *testing.T) {
	for _, pat := range []string{"(.-)(.-)b", "(.-)(.-)(.-)(.-)b", "a*a*a*a*a*b", ".-.-.-.-.-b"} {
		m := newMatcher(strings.Repeat("a", maxPatternSubject), pat, nil, nil)
		start := time.Now()
		msg := m.run(func() { m.find(0, true) })
		if msg != "pattern too complex" {
			t.Errorf("%q: got %q", pat, msg)
		}
		if d := time.Since(start); d > scaled(2*time.Second) {
			t.Errorf("%q: took %v", pat, d)
		}
	}
}

// TestMatcherDeadline checks that a closed deadline stops a match.
func TestMatcherDeadline(t *testing.T) {
	done := make(chan struct{})
	close(done)
	m := newMatcher(strings.Repeat("a", 4000), "(.-)(.-)b", done, func() error { return context.DeadlineExceeded })
	msg := m.run(func() { m.find(0, true) })
	if msg != context.DeadlineExceeded.Error() {
		t.Errorf("got %q", msg)
	}
	if m.steps > 2*patternCheckEvery {
		t.Errorf("ran %d steps after the deadline", m.steps)
	}
}
