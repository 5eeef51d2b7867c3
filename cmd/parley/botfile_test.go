package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// botDir writes a bot directory with one handler and the given bot.yaml.
func botDir(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "intents"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bot.yaml"), yaml)
	writeFile(t, filepath.Join(dir, "intents", "Hi.lua"), "function handle() return 'hi' end\n")
	return dir
}

// botSettings reads a deployed bot's settings through the API.
func botSettings(t *testing.T, url, bot string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/bots/"+bot, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Settings map[string]any `json:"settings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info.Settings
}

// TestDeployRefusesUnknownFields: a misspelt key anywhere in bot.yaml fails
// the deploy with the file and line, before anything is uploaded.
func TestDeployRefusesUnknownFields(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "TOK=web-token-0123456789"}
	for _, tc := range []struct{ yaml, want string }{
		{"name: typo\n# the bot's tunables\nsetings:\n  timeout_ms: 500\n", `bot.yaml:3: unknown field "setings"`},
		{"name: typo\nsettings:\n  timeout_ms: 500\n  time_out: 5\n", `bot.yaml:4: unknown setting "time_out"`},
		{"name: typo\nschedules:\n  daily:\n    cron: \"@daily\"\n    intent: Hi\n    timezon: UTC\n", `bot.yaml:6: unknown field "timezon"`},
		{"name: typo\nschedules:\n  daily:\n    cron: \"@daily\"\n    intent: Hi\n    targets:\n      - channel: web\n        convo: x\n", `bot.yaml:8: unknown field "convo"`},
		{"name: typo\nnlu:\n  intents:\n    Hi: [hello]\n  slot:\n    size: {}\n", `bot.yaml:5: unknown field "slot"`},
		{"name: typo\nchannels:\n  wbe:\n    token: x\n", `bot.yaml:3: unknown channel "wbe"`},
		{"name: typo\nname: again\n", `bot.yaml:2: "name" is given twice`},
		{"name: typo\nsettings:\n  timeout_ms: abc\n", `bot.yaml:3: setting "timeout_ms": want a number, got "abc"`},
		{"name: typo\nsettings:\n  timeout_ms: 99999\n", `bot.yaml:3: settings: timeout_ms must be between 1 and 30000`},
	} {
		dir := botDir(t, tc.yaml)
		code, out, errOut := runCLI(t, env, "deploy", dir)
		if code != 1 || !strings.Contains(errOut, filepath.Join(dir, tc.want)) || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit 1 with %q and nothing uploaded", tc.yaml, code, errOut, out, tc.want)
		}
	}
}

// TestDeployWithoutSettingsKeepsThem: a bot.yaml without a settings section
// leaves a deployed bot's settings alone; a new bot gets the defaults.
func TestDeployWithoutSettingsKeepsThem(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}
	code, out, errOut := runCLI(t, env, "deploy", botDir(t, "name: keep\nsettings:\n  timeout_ms: 700\n  display_name: 2048\n"))
	if code != 0 || !strings.Contains(out, "bot keep: settings saved") {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
	}
	if s := botSettings(t, url, "keep"); s["timeout_ms"] != float64(700) || s["display_name"] != "2048" {
		t.Fatalf("settings = %v", s)
	}
	code, out, errOut = runCLI(t, env, "deploy", botDir(t, "name: keep\n"))
	if code != 0 || !strings.Contains(out, "bot keep: settings left as they are") {
		t.Fatalf("deploy without settings: exit %d: %s %s", code, out, errOut)
	}
	if s := botSettings(t, url, "keep"); s["timeout_ms"] != float64(700) {
		t.Fatalf("settings after a deploy without them = %v; want them kept", s)
	}
	code, out, errOut = runCLI(t, env, "deploy", botDir(t, "name: fresh\n"))
	if code != 0 || !strings.Contains(out, "bot fresh: created with the default settings") {
		t.Fatalf("deploy of a new bot without settings: exit %d: %s %s", code, out, errOut)
	}
}

// TestDeployChannelSettingTypes: YAML booleans and numbers reach channels
// whose settings mean them.
func TestDeployChannelSettingTypes(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}
	code, out, errOut := runCLI(t, env, "deploy", botDir(t, "name: skill\nchannels:\n  alexa:\n    skill_id: amzn1.ask.skill.0123\n    verify_signature: false\n"))
	if code != 0 || !strings.Contains(out, "channel alexa: connected") {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errOut)
	}
}

// TestDeployExpandsOnlySecrets: ${VAR} is read from the environment into
// secret channel settings only, never from PARLEY_* variables; anywhere
// else it is an error naming the file, line and variable.
func TestDeployExpandsOnlySecrets(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "TOK=web-token-0123456789", "HOST=evil.example"}
	code, out, errOut := runCLI(t, env, "deploy", botDir(t, "name: env\nchannels:\n  web:\n    token: ${TOK}\n"))
	if code != 0 || !strings.Contains(out, "channel web: connected") {
		t.Fatalf("deploy with a secret from the environment: exit %d: %s %s", code, out, errOut)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"name: env\nchannels:\n  telegram:\n    secret_token: abc\n    bot_token: ${TOK}\n    api_base_url: https://${PARLEY_ADMIN_KEY}.example\n",
			`bot.yaml:6: channel telegram setting "api_base_url": ${PARLEY_ADMIN_KEY} is not expanded`},
		{"name: env\nchannels:\n  telegram:\n    secret_token: abc\n    bot_token: ${TOK}\n    api_base_url: https://${HOST}\n",
			`bot.yaml:6: channel telegram setting "api_base_url": ${HOST} is not expanded`},
		{"name: env\nchannels:\n  web:\n    token: ${PARLEY_ADMIN_KEY}\n", `bot.yaml:4: channel web setting "token": ${PARLEY_ADMIN_KEY} is not expanded: Parley's own`},
		{"name: env\nchannels:\n  web:\n    token: ${NOPE}\n", `bot.yaml:4: channel web setting "token": environment variable NOPE is not set`},
		{"name: env\nsettings:\n  display_name: ${TOK}\n", `bot.yaml:3: ${TOK} is not expanded`},
		{"name: env\nschedules:\n  s:\n    cron: \"@daily\"\n    intent: ${TOK}\n", `bot.yaml:5: ${TOK} is not expanded`},
	} {
		dir := botDir(t, tc.yaml)
		code, out, errOut := runCLI(t, env, "deploy", dir)
		if code != 1 || !strings.Contains(errOut, filepath.Join(dir, tc.want)) || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit 1 with %q", tc.yaml, code, errOut, out, tc.want)
		}
		if strings.Contains(errOut, testKey) {
			t.Errorf("the error shows the admin key: %s", errOut)
		}
	}
}

// writeFile writes content to path, creating its directory.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
