package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/botdir"
)

// runCLIInput is runCLI with input on standard input; code is 0, 1 or 2
// as run answers it.
func runCLIInput(t *testing.T, env []string, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := newCLI(env, &out, &errOut)
	root := newRootCmd(c)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(input))
	_, err := root.ExecuteContextC(context.Background())
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		code = 2
		errOut.WriteString(err.Error())
	default:
		code = 1
		errOut.WriteString(err.Error())
	}
	return code, out.String(), errOut.String()
}

func TestSecretCommands(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}
	const value = "sk-live-SECRETVALUE-0123456789"
	dir := botDir(t, "name: keyed\nsettings:\n  secrets: [API_KEY]\n")

	// The settings name a secret that is not set: deploy warns.
	code, out, errOut := runCLI(t, env, "deploy", dir)
	if code != 0 || !strings.Contains(errOut, "warning: secret API_KEY is not set") || !strings.Contains(errOut, "parley secret set keyed API_KEY") {
		t.Fatalf("deploy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, env, "deploy", dir, "--json")
	var rep botdir.Result
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Warnings) != 1 {
		t.Fatalf("deploy --json: exit %d, %s", code, out)
	}

	code, out, errOut = runCLIInput(t, env, value+"\n", "secret", "set", "keyed", "API_KEY")
	if code != 0 || out != "secret API_KEY of keyed: created\n" {
		t.Fatalf("set: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLIInput(t, env, value+"\r\n", "secret", "set", "keyed", "API_KEY")
	if code != 0 || out != "secret API_KEY of keyed: replaced\n" {
		t.Fatalf("set again: exit %d, %q", code, out)
	}
	code, _, errOut = runCLI(t, env, "deploy", dir)
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("deploy with the secret set: exit %d, stderr %q", code, errOut)
	}
	// The same warning for a bot.yaml without settings, which keeps them.
	runCLI(t, env, "secret", "delete", "keyed", "API_KEY")
	code, _, errOut = runCLI(t, env, "deploy", botDir(t, "name: keyed\n"))
	if code != 0 || !strings.Contains(errOut, "warning: secret API_KEY is not set") {
		t.Fatalf("deploy keeping the settings: exit %d, stderr %q", code, errOut)
	}
	runCLIInput(t, env, value, "secret", "set", "keyed", "API_KEY")

	code, out, _ = runCLI(t, env, "secret", "list", "keyed")
	if code != 0 || !strings.HasPrefix(out, "API_KEY  updated 20") || strings.Contains(out, value) {
		t.Fatalf("list: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, env, "secret", "list", "keyed", "--json")
	var list struct {
		Secrets []secretInfo `json:"secrets"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Secrets) != 1 || list.Secrets[0].Name != "API_KEY" ||
		strings.Contains(out, value) {
		t.Fatalf("list --json: exit %d, %q", code, out)
	}

	// The value never comes from an argument.
	code, _, errOut = runCLIInput(t, env, "", "secret", "set", "keyed", "API_KEY", value)
	if code != 2 || !strings.Contains(errOut, "set takes BOT and NAME (the value comes from standard input)") {
		t.Fatalf("a value as an argument: exit %d, %q", code, errOut)
	}
	for _, tc := range []struct{ input, want string }{
		{"", "no value on standard input"},
		{"\n", "no value on standard input"},
		{strings.Repeat("x", 20000), "larger than 16384 bytes"},
		{strings.Repeat("x", 9000), "limited to 8192 bytes"},
	} {
		code, _, errOut = runCLIInput(t, env, tc.input, "secret", "set", "keyed", "API_KEY")
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("input of %d bytes: exit %d, %q", len(tc.input), code, errOut)
		}
	}
	code, _, errOut = runCLIInput(t, env, value, "secret", "set", "keyed", "lower")
	if code != 2 || !strings.Contains(errOut, "upper-case") {
		t.Fatalf("a bad name: exit %d, %q", code, errOut)
	}

	code, out, _ = runCLI(t, env, "secret", "delete", "keyed", "API_KEY")
	if code != 0 || out != "secret API_KEY of keyed: deleted\n" {
		t.Fatalf("delete: exit %d, %q", code, out)
	}
	runCLIInput(t, env, value, "secret", "set", "keyed", "OTHER_KEY")
	code, out, _ = runCLI(t, env, "secret", "delete", "keyed", "OTHER_KEY", "--json")
	var deleted struct {
		Bot, Name string
		Deleted   bool
	}
	if code != 0 || json.Unmarshal([]byte(out), &deleted) != nil || deleted != (struct {
		Bot, Name string
		Deleted   bool
	}{"keyed", "OTHER_KEY", true}) {
		t.Fatalf("delete --json: exit %d, %q", code, out)
	}
	code, _, errOut = runCLI(t, env, "secret", "delete", "keyed", "API_KEY")
	if code != 1 || !strings.Contains(errOut, "secret_not_found") {
		t.Fatalf("delete again: exit %d, %q", code, errOut)
	}
	code, out, _ = runCLI(t, env, "secret", "list", "keyed")
	if code != 0 || out != "keyed has no secrets\n" {
		t.Fatalf("empty list: exit %d, %q", code, out)
	}
	code, _, errOut = runCLI(t, env, "secret")
	if code != 2 || !strings.Contains(errOut, "secret takes a subcommand: delete, list, set") {
		t.Fatalf("secret alone: exit %d, %q", code, errOut)
	}
}
