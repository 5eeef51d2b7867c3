package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
)

const testKey = "cli-test-admin-key-0123"

// startServer runs a Parley with the embedded store behind an httptest server.
func startServer(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=" + testKey, "PARLEY_DATA_DIR=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := a.StartBackground(ctx)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := wait(); err != nil {
			t.Errorf("background services: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv.URL
}

func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestExampleBotEndToEnd deploys examples/pizzabot with the CLI and orders a
// pizza through the whole multi-turn flow.
func TestExampleBotEndToEnd(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "PIZZABOT_WEB_TOKEN=pizza-web-token-123"}

	code, out, errOut := runCLI(t, env, "deploy", "../../examples/pizzabot")
	if code != 0 {
		t.Fatalf("deploy exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"bot pizzabot: settings saved", "channel web: connected", "intent OrderPizza: version 1", "intent fallback: version 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	// Deploying again changes nothing.
	if _, out, _ := runCLI(t, env, "deploy", "../../examples/pizzabot"); !strings.Contains(out, "version 1 (unchanged)") {
		t.Errorf("second deploy:\n%s", out)
	}

	conversation := []struct{ say, want string }{
		{"hello", "Hi! I'm Pizza Bot"},
		{"I want a pizza", "What size would you like?"},
		{"extra huge", "we have small, medium and large"},
		{"large please", "A large pizza. Which toppings?"},
		{"mushrooms and olives", "So that's a large pizza with mushrooms, olives. Shall I place the order?"},
		{"yes", "Done! Order #"},
		{"what are your opening hours?", "We're open every day"},
		{"sing me a song", "I can take pizza orders"},
	}
	for _, turn := range conversation {
		code, out, errOut := runCLI(t, env, "invoke", "pizzabot", turn.say, "--user", "alice")
		if code != 0 || !strings.Contains(out, turn.want) {
			t.Fatalf("invoke %q: exit %d, output:\n%s%s\nwant it to contain %q", turn.say, code, out, errOut, turn.want)
		}
	}
}

func TestDeployReportsLuaErrorWithFileAndLine(t *testing.T) {
	url := startServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: broken\n")
	writeFile(t, filepath.Join(dir, "intents", "Good.lua"), "function handle() return 'ok' end\n")
	writeFile(t, filepath.Join(dir, "intents", "Bad.lua"), "function handle()\n  return 'ok'\n\nlocal = 5\nend\n")
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}
	code, out, errOut := runCLI(t, env, "deploy", dir)
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "intents", "Bad.lua")+":4:") {
		t.Fatalf("exit %d, stderr %q, stdout %q; want exit 1 naming Bad.lua:4", code, errOut, out)
	}
	if strings.Contains(out, "settings saved") {
		t.Fatalf("deploy uploaded something before failing: %s", out)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"deploy"}, {"invoke", "bot"}, {"invoke", "bot", "hi", "--colour", "red"}} {
		if code, _, errOut := runCLI(t, nil, args...); code != 2 || errOut == "" {
			t.Errorf("parley %v: exit %d, stderr %q; want 2 with usage", args, code, errOut)
		}
	}
	code, _, errOut := runCLI(t, []string{"PARLEY_URL=http://127.0.0.1:1"}, "invoke", "bot", "hi")
	if code != 1 || !strings.Contains(errOut, "PARLEY_ADMIN_KEY") {
		t.Errorf("invoke without key: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCLI(t, []string{"PARLEY_URL=http://127.0.0.1:1", "PARLEY_ADMIN_KEY=" + testKey}, "invoke", "bot", "hi")
	if code != 1 || !strings.Contains(errOut, "cannot reach parley") {
		t.Errorf("invoke against nothing: exit %d, %q", code, errOut)
	}
}

// TestDeployFullNLUForm: bot.yaml's nlu section in the API's shape, with
// slot types and a threshold, reaches the classifier: a message is routed by
// meaning and its slot comes back as the canonical value of a synonym.
func TestDeployFullNLUForm(t *testing.T) {
	url := startServer(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), `name: slots
nlu:
  threshold: 0.1
  intents:
    OrderPizza:
      - I want a [large](size) pizza
      - a [small](size) pizza please
      - order a pizza
      - can I get a [big](size:large) pizza
    Hours:
      - when are you open
      - what are your opening hours
  slots:
    size:
      values:
        large: [big, huge]
        small: [tiny]
`)
	writeFile(t, filepath.Join(dir, "intents", "OrderPizza.lua"), "function handle(e) return 'size=' .. tostring(e.slots.size) end\n")
	writeFile(t, filepath.Join(dir, "intents", "Hours.lua"), "function handle() return 'open 9-5' end\n")
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}
	code, out, errOut := runCLI(t, env, "deploy", dir)
	if code != 0 || !strings.Contains(out, "nlu: 2 intents, 1 slot types") {
		t.Fatalf("deploy exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "invoke", "slots", "I want a huge pizza", "--user", "bob")
	if code != 0 || !strings.Contains(out, "size=large") {
		t.Fatalf("invoke: exit %d, output:\n%s%s\nwant size=large", code, out, errOut)
	}
}
