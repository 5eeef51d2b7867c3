package convtest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseShapes(t *testing.T) {
	for name, src := range map[string]string{
		"tests":  "tests:\n  - name: one\n    turns: [{say: hi}]\n  - name: two\n    turns: [{say: hi}]\n",
		"list":   "- name: one\n  turns: [{say: hi}]\n- name: two\n  turns: [{say: hi}]\n",
		"single": "name: one\nturns: [{say: hi}]\n",
	} {
		f, err := Parse("f.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Tests[0].Name != "one" || f.Tests[0].User != "tester" || f.Tests[0].Channel != "web" || f.Tests[0].Line == 0 {
			t.Errorf("%s: %+v", name, f.Tests[0])
		}
	}
	f, err := Parse("dir/greeting.yaml", []byte("turns: [{say: hi}]\n"))
	if err != nil || f.Tests[0].Name != "greeting" {
		t.Errorf("a single test without a name is named after its file: %v %v", f, err)
	}
}

func TestParseEverything(t *testing.T) {
	src := `tests:
  - name: all
    user: alice
    channel: telegram
    locale: en-US
    now: 2026-12-01T10:00:00Z
    mocks:
      http:
        - {method: get, url: "https://a.example/x", status: 404, headers: {X-A: b}, body: [1, "two"]}
        - {method: POST, url: "https://a.example/y", body: plain}
    turns:
      - say: hi
        intent: Greet
        reply: |
          line one
          line two
        options: [a, "b c"]
        session: {n: 1, m: {k: [true, null]}}
        slots: {size: large, color: null}
        end_conversation: true
        outcome: handled
      - postback: PAY
        intent: null
        reply: {contains: x}
      - say: x
        reply: {matches: "^a+$"}
        options: []
`
	f, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tc := f.Tests[0]
	if tc.User != "alice" || tc.Channel != "telegram" || tc.Locale != "en-US" || !tc.Now.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("test %+v", tc)
	}
	m := tc.HTTP[0]
	if m.Method != "GET" || m.Status != 404 || m.Headers["X-A"] != "b" || m.Body != `[1,"two"]` || m.Line != 9 {
		t.Errorf("mock %+v", m)
	}
	if m := tc.HTTP[1]; m.Method != "POST" || m.Status != 200 || m.Body != "plain" {
		t.Errorf("mock %+v", m)
	}
	t1, t2, t3 := tc.Turns[0], tc.Turns[1], tc.Turns[2]
	if t1.Say != "hi" || *t1.Intent != "Greet" || *t1.Reply.Exact != "line one\nline two" || !slices.Equal(t1.Options, []string{"a", "b c"}) ||
		!*t1.EndConversation || *t1.Outcome != "handled" || t1.Line != 12 {
		t.Errorf("turn 1 %+v", t1)
	}
	if fmtAny(t1.Session) != "map[m:map[k:[true <nil>]] n:1]" || fmtAny(t1.Slots) != "map[color:<nil> size:large]" {
		t.Errorf("turn 1 session %v slots %v", t1.Session, t1.Slots)
	}
	if t2.Postback != "PAY" || *t2.Intent != "" || *t2.Reply.Contains != "x" || t2.HasOptions || t2.Input() != `postback "PAY"` {
		t.Errorf("turn 2 %+v", t2)
	}
	if !t3.Reply.Match("aaa") || t3.Reply.Match("ab") || !t3.HasOptions || len(t3.Options) != 0 {
		t.Errorf("turn 3 %+v", t3)
	}
}

// TestParseErrors: every mistake is a set-up error with the file and line.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"tests:\n  - name: a\n    turns: [{say: hi}]\n  - name: a\n    turns: [{say: hi}]\n", `f.yaml:4: test "a" is already defined at line 2`},
		{"tests:\n  - turns: [{say: hi}]\n", "f.yaml:2: the test has no name"},
		{"tests: []\n", "f.yaml:1: no tests"},
		{"tests: {}\n", "f.yaml:1: tests: want a list of tests"},
		{"tests:\n  - name: a\n    turns: [{say: hi}]\nextra: 1\n", `f.yaml:4: unknown key "extra" (a file holds tests: a list of tests, or is one test)`},
		{"name: a\nturns: []\n", `f.yaml:1: test "a": want turns, a list of at least one turn`},
		{"name: a\nturns: [{say: hi, postback: X}]\n", "f.yaml:2: a turn needs say or postback (one of them)"},
		{"name: a\nturns: [{intent: X}]\n", "f.yaml:2: a turn needs say or postback (one of them)"},
		{"name: a\nturns: [{say: ''}]\n", "f.yaml:2: say: want text"},
		{"name: a\nturns:\n  - say: hi\n    reply: {contain: x}\n", `f.yaml:4: unknown key "contain" in a reply (known: contains, matches)`},
		{"name: a\nturns:\n  - say: hi\n    reply: {contains: x, matches: y}\n", "f.yaml:4: reply: want text, {contains: text} or {matches: regex}"},
		{"name: a\nturns:\n  - say: hi\n    reply: {matches: \"(\"}\n", "f.yaml:4: reply.matches: error parsing regexp"},
		{"name: a\nturns:\n  - say: hi\n    outcome: crashed\n", "f.yaml:4: outcome: want one of handled, fallback, error, timeout"},
		{"name: a\nturns:\n  - say: hi\n    end_conversation: maybe\n", "f.yaml:4: end_conversation: want true or false"},
		{"name: a\nturns:\n  - say: hi\n    options: a\n", "f.yaml:4: options: want a list of texts"},
		{"name: a\nturns:\n  - say: hi\n    session: [1]\n", "f.yaml:4: session: want a mapping"},
		{"name: a\nturns:\n  - say: hi\n    slots: {size: [1]}\n", `f.yaml:4: slots: slot "size": want its value as text, or null for no value`},
		{"name: a\nnow: tomorrow\nturns: [{say: hi}]\n", `f.yaml:2: now: "tomorrow" is not a time`},
		{"name: a\nmocks: {grpc: []}\nturns: [{say: hi}]\n", `f.yaml:2: unknown key "grpc" in a mocks section (known: http)`},
		{"name: a\nmocks:\n  http:\n    - {url: x, method: PUT}\n", "f.yaml:4: method: the http module sends GET and POST only"},
		{"name: a\nmocks:\n  http:\n    - {url: x, status: 99}\n", "f.yaml:4: status: want an HTTP status, 100 to 599"},
		{"name: a\nmocks:\n  http:\n    - {method: GET}\nturns: [{say: hi}]\n", "f.yaml:4: a mock needs a url"},
		{"name: a\nmocks:\n  http:\n    - {url: x, respond: y}\n", `f.yaml:4: unknown key "respond" in a mock (known: method, url, status, headers, body)`},
		{"name: a\nuser: {x: 1}\nturns: [{say: hi}]\n", "f.yaml:2: user: want text"},
		{"name: a\nname: b\nturns: [{say: hi}]\n", `f.yaml:2: "name" is given twice`},
		{"name: a\nturns: [{say: hi}]\n  bad indent\n", "f.yaml: yaml:"},
		{"", "f.yaml: no tests"},
		{"42\n", "f.yaml:1: want a list of tests, a mapping with tests, or one test"},
	} {
		_, err := Parse("f.yaml", []byte(tc.src))
		var se *SetupError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

func TestParseNow(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-12-01T10:00:00Z":      time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		"2026-12-01T10:00:00+01:00": time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		"2026-12-01T10:00:00":       time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		"2026-12-01 10:00:00":       time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		"2026-12-01":                time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseNow(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseNow(%q) = %v, %v", in, got, err)
		}
	}
}

// TestDocsNameEveryKey: docs/testing.md documents every key of the format.
func TestDocsNameEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "testing.md"))
	if err != nil {
		t.Fatal(err)
	}
	for section, keys := range knownKeys() {
		for _, k := range keys {
			if !strings.Contains(string(raw), "`"+k+"`") {
				t.Errorf("docs/testing.md does not name the %s key `%s`", section, k)
			}
		}
	}
}

// FuzzParse: no input makes Parse panic; what it accepts has tests with
// turns.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"name: a\nturns: [{say: hi, reply: {contains: x}, session: {a: [1, {b: null}]}}]\n",
		"tests:\n  - name: a\n    mocks: {http: [{url: x, body: {a: 1}}]}\n    turns: [{postback: P, options: []}]\n",
		"- name: a\n  now: 2026-01-01\n  turns: [{say: x, slots: {a: b}, outcome: error}]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("f.yaml", []byte(src))
		if err != nil {
			return
		}
		for _, tc := range file.Tests {
			if tc.Name == "" || len(tc.Turns) == 0 {
				t.Fatalf("accepted a test without a name or turns: %q", src)
			}
		}
	})
}
