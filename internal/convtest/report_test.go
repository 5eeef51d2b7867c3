package convtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"slices"
	"strings"
	"testing"
)

// sampleReport is a report with a passing and a failing test, in two files.
func sampleReport() *Report {
	return &Report{Passed: 1, Failed: 1, Target: "in-process", Tests: []*Result{
		{Name: "greets", File: "tests/a.yaml", Line: 2, Passed: true, Failures: []Failure{}, DurationMS: 12},
		{Name: "orders", File: "tests/b.yaml", Line: 5, Failures: []Failure{
			{Turn: 2, Field: "reply", Want: "Large.", Got: "Small.", Line: 9, Input: `say "large"`},
			{Turn: 2, Field: "session", Want: map[string]any{"size": "large"}, Got: map[string]any{"size": "small"}, Line: 9, Input: `say "large"`},
		}, Notes: []string{"a note"}, DurationMS: 30},
	}}
}

// TestJSONShape: --json prints the pinned shape.
func TestJSONShape(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Passed, Failed *int
		Tests          []struct {
			Name, File *string
			Passed     *bool
			Failures   []map[string]any
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if *got.Passed != 1 || *got.Failed != 1 || len(got.Tests) != 2 || *got.Tests[0].Name != "greets" || *got.Tests[1].File != "tests/b.yaml" ||
		*got.Tests[1].Passed || got.Tests[0].Failures == nil {
		t.Fatalf("json:\n%s", b.String())
	}
	f := got.Tests[1].Failures[0]
	if f["turn"] != float64(2) || f["field"] != "reply" || f["want"] != "Large." || f["got"] != "Small." {
		t.Errorf("failure %v", f)
	}
}

// TestJUnit: a suite per file, a case per test, the failures' diff in the
// failure element.
func TestJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJUnit(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), xml.Header) {
		t.Errorf("no XML header:\n%s", b.String())
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Tests != 2 || got.Failures != 1 || len(got.Suites) != 2 || got.Suites[1].Failures != 1 || got.Suites[1].Time != "0.030" {
		t.Fatalf("junit:\n%s", b.String())
	}
	c := got.Suites[1].Cases[0]
	if c.Name != "orders" || c.Classname != "tests/b.yaml" || c.Line != 5 || c.Failure == nil || c.Failure.Type != "reply" ||
		c.Failure.Message != "turn 2: reply does not match" || c.SystemOut != "note: a note" {
		t.Errorf("case %+v", c)
	}
	for _, want := range []string{"turn 2 (tests/b.yaml:9): say \"large\"\nreply:\n  - want \"Large.\"\n  + got  \"Small.\"\nsession:\n", `-   "size": "large"`} {
		if !strings.Contains(c.Failure.Text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, c.Failure.Text)
		}
	}
	if got.Suites[0].Cases[0].Failure != nil {
		t.Error("a passing case has a failure")
	}
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		want, got any
		lines     []string
	}{
		{"a", "b", []string{`- want "a"`, `+ got  "b"`}},
		{"one\ntwo\nthree", "one\n2\nthree", []string{"  one", "- two", "+ 2", "  three"}},
		{[]string{"x", "y"}, []string{"x"}, []string{"  [", `-   "x",`, `-   "y"`, `+   "x"`, "  ]"}},
		{true, false, []string{"- want true", "+ got  false"}},
	} {
		if got := diff(tc.want, tc.got); !slices.Equal(got, tc.lines) {
			t.Errorf("diff(%v, %v) =\n%s\nwant\n%s", tc.want, tc.got, strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
		}
	}
}

func TestSubset(t *testing.T) {
	got := map[string]any{"a": float64(1), "b": map[string]any{"c": "x", "d": []any{float64(1), map[string]any{"e": true, "f": "g"}}}, "empty": map[string]any{}}
	for _, tc := range []struct {
		want any
		ok   bool
	}{
		{map[string]any{}, true},
		{map[string]any{"a": float64(1)}, true},
		{map[string]any{"a": float64(2)}, false},
		{map[string]any{"b": map[string]any{"c": "x"}}, true},
		{map[string]any{"b": map[string]any{"d": []any{float64(1), map[string]any{"e": true}}}}, true},
		{map[string]any{"b": map[string]any{"d": []any{float64(1)}}}, false},
		{map[string]any{"missing": nil}, true},
		{map[string]any{"a": nil}, false},
		{map[string]any{"empty": []any{}}, true},
		{map[string]any{"missing": map[string]any{}}, false},
	} {
		if subset(tc.want, got) != tc.ok {
			t.Errorf("subset(%v) = %v", tc.want, !tc.ok)
		}
	}
	if subset(map[string]any{"a": "x"}, nil) || subset(map[string]any{"a": "x"}, "text") {
		t.Error("a mapping is a subset of something else")
	}
}
