package main

import (
	"strings"
	"testing"
	"time"
)

func TestAnalyticsCommand(t *testing.T) {
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "PIZZABOT_WEB_TOKEN=pizza-web-token-123"}
	if code, out, errOut := runCLI(t, env, "deploy", "../../examples/pizzabot"); code != 0 {
		t.Fatalf("deploy exit %d: %s %s", code, out, errOut)
	}
	for _, text := range []string{"I want a pizza", "large", "blah blah", "hello"} {
		if code, out, errOut := runCLI(t, env, "invoke", "pizzabot", text, "--user", "ann"); code != 0 {
			t.Fatalf("invoke exit %d: %s %s", code, out, errOut)
		}
	}
	// Turns are written within a second; wait for all four.
	var out string
	var totals []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, o, errOut := runCLI(t, env, "analytics", "pizzabot", "--from", "-1h", "--by", "intent", "--series", "--fallbacks", "3")
		if code != 0 {
			t.Fatalf("analytics exit %d: %s %s", code, o, errOut)
		}
		out = o
		if lines := strings.Split(out, "\n"); len(lines) > 3 {
			totals = strings.Fields(lines[3])
		}
		if len(totals) > 0 && totals[0] == "4" || time.Now().After(deadline) {
			break
		}
	}
	if first := strings.SplitN(out, "\n", 2)[0]; !strings.HasPrefix(first, "pizzabot, ") || !strings.Contains(first, "by minute") {
		t.Errorf("first line %q", first)
	}
	// turns, conversations, users, new users, ...
	if len(totals) < 4 || totals[0] != "4" || totals[2] != "1" || totals[3] != "1" {
		t.Errorf("totals %q, want 4 turns of 1 new user:\n%s", totals, out)
	}
	for _, want := range []string{"by intent", "OrderPizza", "series", "most frequent unmatched messages"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := runCLI(t, env, "analytics"); code != 2 || !strings.Contains(errOut, "one bot") {
		t.Errorf("analytics without a bot: exit %d, %s", code, errOut)
	}
}
