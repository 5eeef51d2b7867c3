package convtest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the report as JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: a line per failed test (per
// test, when verbose) with, for each failure, the turn, what it sent, and
// a diff of what was wanted and got; then the counts.
func WriteText(w io.Writer, r *Report, verbose bool) error {
	for _, t := range r.Tests {
		if err := WriteResult(w, t, verbose); err != nil {
			return err
		}
	}
	return WriteSummary(w, r)
}

// WriteResult writes one test's result as WriteText does.
func WriteResult(w io.Writer, t *Result, verbose bool) error {
	if t.Passed && !verbose {
		return nil
	}
	var b strings.Builder
	status := "ok  "
	if !t.Passed {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "%s %s (%s:%d, %.0fms)\n", status, t.Name, t.File, t.Line, t.DurationMS)
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "     note: %s\n", n)
	}
	for i, f := range t.Failures {
		if i == 0 || f.Turn != t.Failures[i-1].Turn {
			fmt.Fprintf(&b, "     turn %d (%s:%d): %s\n", f.Turn, t.File, f.Line, f.Input)
		}
		fmt.Fprintf(&b, "       %s:\n", f.Field)
		for _, line := range diff(f.Want, f.Got) {
			fmt.Fprintf(&b, "         %s\n", line)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummary writes the counts of a report.
func WriteSummary(w io.Writer, r *Report) error {
	_, err := fmt.Fprintf(w, "%d passed, %d failed (%s)\n", r.Passed, r.Failed, r.Target)
	return err
}

// diff shows want and got line by line: "- " wanted only, "+ " got only,
// "  " both.
func diff(want, got any) []string {
	a, b := lines(want), lines(got)
	if len(a) == 1 && len(b) == 1 {
		return []string{"- want " + a[0], "+ got  " + b[0]}
	}
	// Longest common subsequence, on the few lines of a reply or session.
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, "  "+a[i])
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	return out
}

// lines is v as lines of text: a string as it is (quoted when it is one
// line), anything else as indented JSON.
func lines(v any) []string {
	if s, ok := v.(string); ok {
		if !strings.Contains(s, "\n") {
			return []string{fmt.Sprintf("%q", s)}
		}
		return strings.Split(s, "\n")
	}
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []string{fmt.Sprint(v)}
	}
	return strings.Split(string(raw), "\n")
}

// JUnit's XML, as CI systems read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr"`
	Line      int           `xml:"line,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: a test suite per test file.
func WriteJUnit(w io.Writer, r *Report) error {
	out := junitSuites{Tests: len(r.Tests), Failures: r.Failed}
	index := make(map[string]int)
	var ms []float64 // by suite
	for _, t := range r.Tests {
		i, ok := index[t.File]
		if !ok {
			i = len(out.Suites)
			index[t.File] = i
			out.Suites = append(out.Suites, junitSuite{Name: t.File})
			ms = append(ms, 0)
		}
		ms[i] += t.DurationMS
		s := &out.Suites[i]
		c := junitCase{Name: t.Name, Classname: t.File, File: t.File, Line: t.Line, Time: seconds(t.DurationMS)}
		if len(t.Notes) > 0 {
			c.SystemOut = "note: " + strings.Join(t.Notes, "\nnote: ")
		}
		if !t.Passed {
			s.Failures++
			var text strings.Builder
			for i, f := range t.Failures {
				if i == 0 || f.Turn != t.Failures[i-1].Turn {
					fmt.Fprintf(&text, "turn %d (%s:%d): %s\n", f.Turn, t.File, f.Line, f.Input)
				}
				fmt.Fprintf(&text, "%s:\n", f.Field)
				for _, line := range diff(f.Want, f.Got) {
					fmt.Fprintf(&text, "  %s\n", line)
				}
			}
			f := t.Failures[0]
			c.Failure = &junitFailure{Type: f.Field, Text: text.String(),
				Message: fmt.Sprintf("turn %d: %s does not match", f.Turn, f.Field)}
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	for i := range out.Suites {
		out.Suites[i].Time = seconds(ms[i])
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }
