package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployCanaryAndPromote rolls a handler out with deploy --canary and
// the canary command, on the embedded store.
func TestDeployCanaryAndPromote(t *testing.T) {
	url := startServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: rollout\n")
	write := func(v string) {
		writeFile(t, filepath.Join(dir, "intents", "Hello.lua"), "function handle() return '"+v+"' end\n")
	}
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}
	cli := func(wantCode int, want string, args ...string) {
		t.Helper()
		code, out, errOut := runCLI(t, env, args...)
		if code != wantCode || !strings.Contains(out+errOut, want) {
			t.Fatalf("parley %v: exit %d, output:\n%s%s\nwant exit %d and %q", args, code, out, errOut, wantCode, want)
		}
	}
	write("v1")
	cli(0, "intent Hello: version 1 sha256", "deploy", dir)
	write("v2")
	cli(2, "--canary takes a percentage", "deploy", dir, "--canary", "120")
	cli(0, "intent Hello: version 2 canary at 25% sha256", "deploy", dir, "--canary", "25")
	cli(0, "version 2 (unchanged)", "deploy", dir) // the canary's own code: nothing changes
	write("v3")
	cli(1, "has canary version 2 at 25%", "deploy", dir)
	cli(0, "stable version 1, canary version 2 at 50%", "canary", "rollout", "Hello", "50")
	cli(0, "stable version 2, previous version 1 kept for its conversations", "canary", "rollout", "Hello", "promote")
	cli(1, "no canary", "canary", "rollout", "Hello", "abort")
	cli(2, "not a percentage", "canary", "rollout", "Hello", "most")
}
