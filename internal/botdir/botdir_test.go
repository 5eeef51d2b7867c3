package botdir

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadExample(t *testing.T) {
	opts := Options{Env: EnvOf([]string{"PIZZABOT_WEB_TOKEN=token-0123456789"}), Secrets: app.ChannelSecrets()}
	b, err := Read("../../examples/pizzabot", opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "pizzabot" || b.Channels["web"]["token"] != "token-0123456789" || len(b.Handlers) != 7 ||
		b.Handlers[0].Intent != "ChooseSize" || len(b.NLU.Intents) != 3 {
		t.Errorf("read %+v", b)
	}
	opts.Env = nil
	if _, err := Read("../../examples/pizzabot", opts); err == nil || !strings.Contains(err.Error(), "bot.yaml:12: channel web setting \"token\": environment variable PIZZABOT_WEB_TOKEN is not set") {
		t.Errorf("unset variable: %v", err)
	}
}

func TestReadReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: broken\n")
	writeFile(t, filepath.Join(dir, "intents", "Good.lua"), "function handle() return 'ok' end\n")
	writeFile(t, filepath.Join(dir, "intents", "Bad.lua"), "function handle()\n  return 'ok'\n\nlocal = 5\nend\n")
	_, err := Read(dir, Options{Secrets: app.ChannelSecrets()})
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "intents", "Bad.lua")+":4: ") {
		t.Errorf("got %v, want Bad.lua:4", err)
	}
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: broken\nsetings: {}\n")
	if _, err := Read(dir, Options{}); err == nil || err.Error() != filepath.Join(dir, "bot.yaml")+`:2: unknown field "setings" (known: name, settings, channels, nlu, schedules)` {
		t.Errorf("got %v", err)
	}
}

// TestDeployPrevious: a deploy after another sends only what changed and
// deletes the intents whose files are gone.
func TestDeployPrevious(t *testing.T) {
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=botdir-test-key-0123", "PARLEY_DATA_DIR=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	}()
	c := apiclient.InProcess(a.Handler(), a.AdminKey())
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: prev\nsettings:\n  timeout_ms: 500\nnlu:\n  A: [hello]\n  B: [bye]\n")
	writeFile(t, filepath.Join(dir, "intents", "A.lua"), "function handle() return 'a' end\n")
	writeFile(t, filepath.Join(dir, "intents", "B.lua"), "function handle() return 'b' end\n")
	ctx := context.Background()
	first, err := Read(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := Deploy(ctx, c, first, DeployOptions{Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bot prev: settings saved", "nlu: 2 intents", "intent A: version 1", "intent B: version 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("first deploy lacks %q:\n%s", want, out.String())
		}
	}
	writeFile(t, filepath.Join(dir, "intents", "A.lua"), "function handle() return 'a2' end\n")
	if err := os.Remove(filepath.Join(dir, "intents", "B.lua")); err != nil {
		t.Fatal(err)
	}
	second, err := Read(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	res, err := Deploy(ctx, c, second, DeployOptions{Out: &out, Previous: first})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "intent A: version 2 sha256 ") || !strings.HasSuffix(got, "\nintent B: deleted (its file is gone)\n") {
		t.Errorf("second deploy:\n%s", got)
	}
	if len(res.Intents) != 1 || res.Intents[0].Intent != "A" || res.Intents[0].Version != 2 || len(res.Deleted) != 1 || res.Settings != "unchanged" {
		t.Errorf("result %+v", res)
	}
	var list struct{ Intents []map[string]any }
	if err := c.Do(ctx, "GET", "/v1/bots/prev/intents", nil, &list); err != nil || len(list.Intents) != 1 || list.Intents[0]["intent"] != "A" {
		t.Errorf("intents %v %v", list, err)
	}
}
