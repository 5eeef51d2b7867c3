package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpNeverRuns: --help on every command prints its help and exits 0;
// serve --help starts nothing (no admin key is written, no store opened).
func TestHelpNeverRuns(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{"PARLEY_DATA_DIR=" + dataDir, "PARLEY_ADDR=127.0.0.1:1"}
	root := newRootCmd(newCLI(nil, nil, nil))
	var paths [][]string
	var walk func(prefix []string, cmds []*cobra.Command)
	walk = func(prefix []string, cmds []*cobra.Command) {
		for _, cmd := range cmds {
			p := append(append([]string(nil), prefix...), cmd.Name())
			paths = append(paths, p)
			walk(p, cmd.Commands())
		}
	}
	walk(nil, root.Commands())
	if len(paths) < 7 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		code, out, errOut := runCLI(t, env, append(p, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("parley %s --help: exit %d, stdout %q, stderr %q", strings.Join(p, " "), code, out, errOut)
		}
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("--help wrote into the data dir: %v", entries)
	}
}

// TestEveryCommandTakesJSON: every command that does something takes
// --json, except those that serve, write a script or show help, and the
// groups that only list their commands.
func TestEveryCommandTakesJSON(t *testing.T) {
	root := newRootCmd(newCLI(nil, nil, nil))
	exempt := map[string]bool{"serve": true, "dev": true, "completion": true, "help": true}
	var walk func(prefix string, cmds []*cobra.Command)
	n := 0
	walk = func(prefix string, cmds []*cobra.Command) {
		for _, cmd := range cmds {
			name := strings.TrimSpace(prefix + " " + cmd.Name())
			if exempt[strings.Fields(name)[0]] {
				continue
			}
			walk(name, cmd.Commands())
			if !cmd.Runnable() || cmd.HasSubCommands() && cmd.Use == cmd.Name() {
				continue // a group of commands, which only lists them
			}
			n++
			if cmd.Flags().Lookup("json") == nil {
				t.Errorf("parley %s has no --json", name)
			}
		}
	}
	walk("", root.Commands())
	if n < 20 {
		t.Errorf("only %d commands checked", n)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"invoke", "pizzabot", "hello", "-user", "bob"}, "unknown shorthand flag"},
		{[]string{"deploy", "--frob", "dir"}, "unknown flag: --frob"},
		{[]string{"deploy", "a", "b"}, "deploy takes one bot directory"},
		{[]string{"nlu"}, "nlu takes a subcommand: eval"},
		{[]string{"nlu", "train"}, `unknown subcommand "train"`},
		{[]string{"nlu", "eval", "x.json", "--holdout", "1.5"}, "--holdout must be a fraction"},
		{[]string{"serve", "extra"}, "serve takes no arguments"},
	} {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "Usage:") {
			t.Errorf("parley %v: exit %d, stderr %q; want 2 with %q and the usage", tc.args, code, errOut, tc.want)
		}
	}
}

// TestFlagsAnywhereAndDoubleDash: flags go before or after the arguments,
// and "--" ends them, so a message may start with "-".
func TestFlagsAnywhereAndDoubleDash(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=http://127.0.0.1:1", "PARLEY_ADMIN_KEY=wrong"}
	env = append(env, "PIZZABOT_WEB_TOKEN=pizza-web-token-123")
	if code, out, errOut := runCLI(t, env, "deploy", "../../examples/pizzabot", "--url="+url, "--key", testKey); code != 0 {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, env, "invoke", "--url", url, "--key", testKey, "pizzabot", "--user", "dash", "--json", "--", "-", "hello")
	if code != 0 {
		t.Fatalf("invoke: exit %d: %s %s", code, out, errOut)
	}
	var ans struct {
		Answer struct {
			Replies []struct{ Text string } `json:"replies"`
		} `json:"answer"`
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil || len(ans.Answer.Replies) == 0 {
		t.Fatalf("invoke --json: %v\n%s", err, out)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version", "--json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Version == "" || v.GoVersion == "" {
		t.Errorf("version --json: exit %d, %q", code, out)
	}
	if code, out, _ := runCLI(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "parley ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCLI(t, nil, "completion", shell)
		if code != 0 || !strings.Contains(out, "parley") || len(out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), errOut)
		}
	}
}

// TestProgressOnlyOnATerminal: deploy shows its steps on stderr when stderr
// is a terminal, and nothing there with --json or without a terminal.
func TestProgressOnlyOnATerminal(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "PIZZABOT_WEB_TOKEN=pizza-web-token-123"}
	deploy := func(terminal bool, extra ...string) (code int, stdout, stderr string) {
		var out, errOut bytes.Buffer
		c := newCLI(env, &out, &errOut)
		c.isTerminal = func(io.Writer) bool { return terminal }
		code = execute(context.Background(), c, append([]string{"deploy", "../../examples/pizzabot"}, extra...))
		return code, out.String(), errOut.String()
	}
	code, out, errOut := deploy(true)
	if code != 0 || !strings.Contains(errOut, "[1/") {
		t.Fatalf("deploy on a terminal: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(errOut, "intents/OrderPizza.lua") || strings.Contains(out, "\r") {
		t.Errorf("progress: stderr %q, stdout %q", errOut, out)
	}
	if code, out, errOut := deploy(true, "--json"); code != 0 || errOut != "" || !json.Valid([]byte(out)) {
		t.Errorf("deploy --json on a terminal: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if code, _, errOut := deploy(false); code != 0 || errOut != "" {
		t.Errorf("deploy without a terminal: exit %d, stderr %q", code, errOut)
	}
}
