package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// cliRunner runs parley against one server and checks exit codes and output.
type cliRunner struct {
	t   *testing.T
	env []string
}

func newCLIRunner(t *testing.T, extraEnv ...string) *cliRunner {
	t.Helper()
	url := startServer(t)
	return &cliRunner{t: t, env: append([]string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey}, extraEnv...)}
}

// want runs args and fails unless the exit code is code and the output
// (stdout and stderr) holds every string of want. It returns stdout.
func (r *cliRunner) want(code int, want []string, args ...string) string {
	r.t.Helper()
	got, out, errOut := runCLI(r.t, r.env, args...)
	if got != code {
		r.t.Fatalf("parley %v: exit %d, want %d; output:\n%s%s", args, got, code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out+errOut, w) {
			r.t.Fatalf("parley %v: output lacks %q:\n%s%s", args, w, out, errOut)
		}
	}
	return out
}

// json runs args with --json, wants exit 0, and decodes stdout into v.
func (r *cliRunner) json(v any, args ...string) {
	r.t.Helper()
	out := r.want(0, nil, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("parley %v --json: %v\n%s", args, err, out)
	}
}

func TestVersionsRollbackAndCanaryStatus(t *testing.T) {
	r := newCLIRunner(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: rb\n")
	writeFile(t, filepath.Join(dir, "intents", "Other.lua"), "function handle() return 'other' end\n")
	for _, v := range []string{"v1", "v2", "v3"} {
		writeFile(t, filepath.Join(dir, "intents", "Hello.lua"), "function handle() return '"+v+"' end\n")
		r.want(0, nil, "deploy", dir)
	}
	out := r.want(0, []string{"VERSION", "SHA256"}, "versions", "rb", "Hello")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasSuffix(lines[3], "stable") {
		t.Fatalf("versions:\n%s", out)
	}
	r.want(0, []string{"intent Hello: version 2 serves now (was 3)"}, "rollback", "rb", "Hello")
	var served struct{ Version int }
	r.json(&served, "versions", "rb", "Hello")
	if served.Version != 2 {
		t.Fatalf("after rollback the stable version is %d, want 2", served.Version)
	}
	var rolled struct{ Version int }
	r.json(&rolled, "rollback", "rb", "Hello", "--to", "1")
	if rolled.Version != 1 {
		t.Fatalf("rollback --to 1 --json = %+v", rolled)
	}
	r.want(1, []string{"version 1 is the first one"}, "rollback", "rb", "Hello")
	r.want(1, []string{"HTTP 404"}, "rollback", "rb", "Hello", "--to", "9")
	r.want(2, []string{"--to takes a version number"}, "rollback", "rb", "Hello", "--to", "0")
	var versions struct {
		Version  int `json:"version"`
		Versions []struct {
			Version int `json:"version"`
		} `json:"versions"`
	}
	r.json(&versions, "versions", "rb", "Hello")
	if versions.Version != 1 || len(versions.Versions) != 3 {
		t.Fatalf("versions --json = %+v", versions)
	}

	r.want(0, []string{"rb: no canary running"}, "canary", "status", "rb")
	writeFile(t, filepath.Join(dir, "intents", "Hello.lua"), "function handle() return 'v4' end\n")
	r.want(0, []string{"canary at 25%"}, "deploy", dir, "--canary=25%")
	out = r.want(0, []string{"INTENT", "Hello"}, "canary", "status", "rb")
	if fields := strings.Fields(strings.Split(out, "\n")[1]); strings.Join(fields, " ") != "Hello 1 4 25% -" {
		t.Fatalf("canary status:\n%s", out)
	}
	if out := r.want(0, nil, "canary", "status", "rb", "--all"); !strings.Contains(out, "Other") {
		t.Fatalf("canary status --all lacks the intent without a canary:\n%s", out)
	}
	var status struct {
		Intents []struct {
			Intent string `json:"intent"`
			Canary *struct {
				Version, Percent int
			} `json:"canary"`
		} `json:"intents"`
	}
	r.json(&status, "canary", "status", "rb", "Hello")
	if len(status.Intents) != 1 || status.Intents[0].Canary == nil || status.Intents[0].Canary.Percent != 25 {
		t.Fatalf("canary status --json = %+v", status)
	}
	r.want(1, []string{"HTTP 404"}, "canary", "status", "nobot")
}

func TestChannelsCommands(t *testing.T) {
	r := newCLIRunner(t)
	r.want(0, nil, "deploy", botDir(t, "name: ch\n"))
	r.want(0, []string{"ch: no channel connected", "available: ", "telegram"}, "channels", "list", "ch")
	r.want(0, []string{"channel web: connected at /hooks/ch/web", "token: ***"},
		"channels", "connect", "ch", "web", "--set", "token=web-token-0123456789")
	settings := filepath.Join(t.TempDir(), "alexa.yaml")
	writeFile(t, settings, "skill_id: amzn1.ask.skill.0123\nverify_signature: false\n")
	var connected struct {
		Channel string `json:"channel"`
		Webhook string `json:"webhook"`
	}
	r.json(&connected, "channels", "connect", "ch", "alexa", "--file", settings)
	if connected.Channel != "alexa" || connected.Webhook != "/hooks/ch/alexa" {
		t.Fatalf("connect --json = %+v", connected)
	}
	var list struct {
		Channels []string `json:"channels"`
	}
	r.json(&list, "channels", "list", "ch")
	if strings.Join(list.Channels, ",") != "alexa,web" {
		t.Fatalf("channels list --json = %+v", list)
	}
	r.want(1, []string{"HTTP 400"}, "channels", "connect", "ch", "web", "--set", "token=short")
	r.want(2, []string{"--set takes key=value"}, "channels", "connect", "ch", "web", "--set", "token")
	r.want(2, []string{"connect needs the channel's settings"}, "channels", "connect", "ch", "web")
	r.want(0, []string{"channel web: disconnected"}, "channels", "disconnect", "ch", "web")
	r.want(1, []string{"channel_not_configured"}, "channels", "disconnect", "ch", "web")
	r.want(0, []string{"alexa\t/hooks/ch/alexa"}, "channels", "ls", "ch")
	r.want(2, []string{"channels takes a subcommand: connect, disconnect, list"}, "channels")
}

func TestSchedulesCommands(t *testing.T) {
	r := newCLIRunner(t)
	r.want(0, nil, "deploy", botDir(t, "name: sch\n"))
	r.want(0, []string{"sch: no schedules"}, "schedules", "list", "sch")
	r.want(0, []string{"schedule morning: 30 8 * * MON-FRI, next run 20"},
		"schedules", "set", "sch", "morning", "--cron", "30 8 * * MON-FRI", "--timezone", "Europe/Berlin", "--intent", "Hi")
	file := filepath.Join(t.TempDir(), "nightly.yaml")
	writeFile(t, file, "cron: \"@daily\"\nintent: Hi\nmissed: skip\ntargets:\n  - {channel: web, conversation: c1}\n")
	r.want(0, nil, "channels", "connect", "sch", "web", "--set", "token=web-token-0123456789")
	r.want(0, []string{"schedule nightly: @daily, paused"}, "schedules", "create", "sch", "nightly", "--file", file, "--disabled")
	out := r.want(0, []string{"NAME", "morning", "Europe/Berlin", "nightly", "paused"}, "schedules", "list", "sch")
	if !strings.Contains(out, "nightly  @daily") {
		t.Fatalf("schedules list:\n%s", out)
	}
	var list struct {
		Schedules map[string]struct {
			Cron     string `json:"cron"`
			Missed   string `json:"missed"`
			Disabled bool   `json:"disabled"`
			Targets  []struct {
				Channel, Conversation string
			} `json:"targets"`
		} `json:"schedules"`
	}
	list.Schedules = nil
	r.json(&list, "schedules", "list", "sch")
	if n := list.Schedules["nightly"]; n.Cron != "@daily" || n.Missed != "skip" || !n.Disabled || len(n.Targets) != 1 {
		t.Fatalf("schedules list --json = %+v", list)
	}
	r.want(0, []string{"next run"}, "schedules", "update", "sch", "nightly", "--file", file, "--enabled", "--target", "web:c2:u2", "--target", "web:c3")
	list.Schedules = nil
	r.json(&list, "schedules", "list", "sch")
	if n := list.Schedules["nightly"]; n.Disabled || len(n.Targets) != 2 || n.Targets[0].Conversation != "c2" {
		t.Fatalf("after update: %+v", list)
	}
	r.want(2, []string{"needs a cron expression and an intent"}, "schedules", "set", "sch", "x", "--cron", "@daily")
	r.want(2, []string{"--target takes CHANNEL:CONVERSATION"}, "schedules", "set", "sch", "x", "--cron", "@daily", "--intent", "Hi", "--target", "web")
	r.want(1, []string{"HTTP 400"}, "schedules", "set", "sch", "x", "--cron", "@every 5s", "--intent", "Hi")
	r.want(0, []string{"schedule morning: deleted"}, "schedules", "delete", "sch", "morning")
	list.Schedules = nil
	r.json(&list, "schedules", "list", "sch")
	if _, ok := list.Schedules["morning"]; ok || len(list.Schedules) != 1 {
		t.Fatalf("after delete: %+v", list)
	}
}

func TestUsersErase(t *testing.T) {
	r := newCLIRunner(t)
	r.want(0, nil, "deploy", botDir(t, "name: gdpr\n"))
	r.want(0, []string{"[intent"}, "invoke", "gdpr", "hello", "--user", "alice")
	r.want(0, []string{"user alice of gdpr erased: 1 conversations", "web alice", "sessions"}, "users", "erase", "gdpr", "alice")
	var receipt erasure
	r.json(&receipt, "users", "erase", "gdpr", "alice")
	if receipt.User != "alice" || len(receipt.Conversations) != 0 || len(receipt.Removed) == 0 {
		t.Fatalf("second erase --json = %+v", receipt)
	}
}

func TestNLUEvalReadsABotDirectory(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "nlu", "eval", "../../examples/pizzabot", "--holdout", "0.4")
	if code != 0 || !strings.Contains(out, "trained on") || !strings.Contains(out, "in-scope accuracy") {
		t.Fatalf("nlu eval of a bot directory: exit %d:\n%s%s", code, out, errOut)
	}
	var rep struct {
		Intents int `json:"intents"`
	}
	code, out, errOut = runCLI(t, nil, "nlu", "eval", "--json", "../../examples/pizzabot/bot.yaml", "--holdout=0.4")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Intents != 3 {
		t.Fatalf("nlu eval --json of bot.yaml: exit %d:\n%s%s", code, out, errOut)
	}
	data := filepath.Join(t.TempDir(), "data.json")
	writeFile(t, data, `{"intents": {"Greet": ["hi", "hello", "hey", "good morning", "hello there"], "Bye": ["bye", "goodbye", "see you", "later", "bye bye"]}}`)
	if code, out, errOut := runCLI(t, nil, "nlu", "eval", data, "--holdout", "0.4"); code != 0 || !strings.Contains(out, "trained on") {
		t.Fatalf("nlu eval of NLU data: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "nlu", "eval", botDir(t, "name: nonlu\n")); code != 1 || !strings.Contains(errOut, "has no nlu section") {
		t.Fatalf("nlu eval of a bot without nlu: exit %d: %s", code, errOut)
	}
}
