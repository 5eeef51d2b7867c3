package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleCopy copies the example bot into a temporary directory.
func exampleCopy(t *testing.T) string {
	t.Helper()
	from, to := filepath.Join("..", "..", "examples", "pizzabot"), t.TempDir()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		writeFile(t, filepath.Join(to, rel), string(raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// TestTestCommandExitCodes: 0 when every test passes, 1 when one fails, 2
// when the tests cannot run.
func TestTestCommandExitCodes(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "test", filepath.Join("..", "..", "examples", "pizzabot"))
	if code != 0 || !strings.HasSuffix(out, "5 passed, 0 failed (in-process)\n") || errOut != "" {
		t.Fatalf("example: exit %d\n%s%s", code, out, errOut)
	}

	dir := exampleCopy(t)
	writeFile(t, filepath.Join(dir, "tests", "wrong.yaml"), "name: wrong hours\nturns:\n  - say: when are you open\n    reply: Closed.\n")
	junit := filepath.Join(t.TempDir(), "report.xml")
	code, out, _ = runCLI(t, nil, "test", dir, "--junit", junit)
	if code != 1 || !strings.Contains(out, "FAIL wrong hours") || !strings.Contains(out, `- want "Closed."`) ||
		!strings.HasSuffix(out, "5 passed, 1 failed (in-process)\n") {
		t.Errorf("a failing test: exit %d\n%s", code, out)
	}
	raw, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(raw, &suites); err != nil || suites.Tests != 6 || suites.Failures != 1 {
		t.Errorf("junit %+v %v:\n%s", suites, err, raw)
	}

	code, out, _ = runCLI(t, nil, "test", dir, "--json", "--run", "hours")
	var rep struct {
		Passed, Failed int
		Tests          []struct {
			Name     string
			Failures []struct{ Field string }
		}
	}
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Passed != 1 || rep.Failed != 1 || rep.Tests[1].Failures[0].Field != "reply" {
		t.Errorf("--json: exit %d\n%s", code, out)
	}

	writeFile(t, filepath.Join(dir, "tests", "wrong.yaml"), "name: typo\nturns:\n  - say: hi\n    repyl: x\n")
	code, out, errOut = runCLI(t, nil, "test", dir)
	if code != 2 || !strings.Contains(errOut, filepath.Join(dir, "tests", "wrong.yaml")+`:4: unknown key "repyl"`) || out != "" ||
		strings.Contains(errOut, "Usage:") {
		t.Errorf("a typo: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "tests", "wrong.yaml"), "name: ok\nturns: [{say: hi}]\n")
	writeFile(t, filepath.Join(dir, "intents", "Hours.lua"), "function handle()\n  return 'x'\n\nlocal = 5\nend\n")
	code, _, errOut = runCLI(t, nil, "test", dir)
	if code != 2 || !strings.Contains(errOut, filepath.Join(dir, "intents", "Hours.lua")+":4: syntax error") {
		t.Errorf("a broken handler: exit %d, stderr %q", code, errOut)
	}

	for _, args := range [][]string{{"test"}, {"test", "a", "b"}, {"test", dir, "--run", "("}, {"test", dir, "--canary"}, {"test", "--record", "bot"}} {
		if code, _, errOut := runCLI(t, nil, args...); code != 2 || !strings.Contains(errOut, "Usage:") {
			t.Errorf("parley %v: exit %d, stderr %q; want a usage error", args, code, errOut)
		}
	}
}

// TestTestCommandAgainstAndRecord: --against runs the tests on a server,
// --record writes a test from one of its conversations.
func TestTestCommandAgainstAndRecord(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "PIZZABOT_WEB_TOKEN=pizza-web-token-123"}
	example := filepath.Join("..", "..", "examples", "pizzabot")
	if code, out, errOut := runCLI(t, env, "deploy", example); code != 0 {
		t.Fatalf("deploy: %d %s %s", code, out, errOut)
	}
	// The order number comes from the clock, which a test can only freeze in
	// process: against the server that one test fails, and says why.
	code, out, errOut := runCLI(t, env, "test", example, "--against", url, "-v")
	if code != 1 || !strings.Contains(out, "FAIL order a large pizza") || !strings.Contains(out, "note: now does not apply against a server") ||
		!strings.HasSuffix(out, "4 passed, 1 failed ("+url+")\n") {
		t.Errorf("--against: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, []string{"PARLEY_URL=" + url}, "test", example, "--against", url); code != 2 || !strings.Contains(errOut, "no admin key") {
		t.Errorf("--against without a key: exit %d %q", code, errOut)
	}

	for _, text := range []string{"hello", "what are your opening hours"} {
		if code, out, errOut := runCLI(t, env, "invoke", "pizzabot", text, "--user", "dana"); code != 0 {
			t.Fatalf("invoke: %d %s %s", code, out, errOut)
		}
	}
	file := filepath.Join(t.TempDir(), "dana.yaml")
	for range 200 {
		if code, _, _ = runCLI(t, env, "test", "--record", "pizzabot", "web:dana", "--out", file); code == 0 {
			raw, _ := os.ReadFile(file)
			if strings.Count(string(raw), "- say:") == 2 {
				break
			}
		}
		waitABit()
	}
	raw, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(raw), "say: what are your opening hours") || !strings.Contains(string(raw), "intent: Hours") {
		t.Fatalf("recorded %v:\n%s", err, raw)
	}
	dir := exampleCopy(t)
	if err := os.RemoveAll(filepath.Join(dir, "tests")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tests", "dana.yaml"), string(raw))
	if code, out, errOut := runCLI(t, nil, "test", dir); code != 0 {
		t.Errorf("the recorded test: exit %d\n%s%s\n%s", code, out, errOut, raw)
	}
}

// waitABit lets the server's analytics write the transcript (every second).
func waitABit() { time.Sleep(100 * time.Millisecond) }

// TestTestCommandProgress: on a terminal, parley test names each test on a
// progress line of stderr, cleared before the results; with --json or
// without a terminal, stderr stays empty.
func TestTestCommandProgress(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "pizzabot")
	run := func(terminal bool, extra ...string) (code int, stdout, stderr string) {
		var out, errOut bytes.Buffer
		c := newCLI(nil, &out, &errOut)
		c.isTerminal = func(io.Writer) bool { return terminal }
		code = execute(context.Background(), c, append([]string{"test", dir}, extra...))
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run(true)
	if code != 0 || !strings.Contains(errOut, "[1/5] order a large pizza") || !strings.Contains(errOut, "[5/5] fallback") ||
		!strings.HasSuffix(errOut, "\r\x1b[K") || strings.Contains(out, "\r") {
		t.Errorf("on a terminal: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if code, out, errOut := run(true, "--json"); code != 0 || errOut != "" || !json.Valid([]byte(out)) {
		t.Errorf("--json on a terminal: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(false); code != 0 || errOut != "" {
		t.Errorf("without a terminal: exit %d, stderr %q", code, errOut)
	}
}
