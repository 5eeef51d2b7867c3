package convtest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/botdir"
	"github.com/parleyhq/parley/internal/config"
)

// startServer runs a Parley behind an HTTP test server, as parley serve
// would, and returns its API client.
func startServer(t *testing.T) *apiclient.Client {
	t.Helper()
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=convtest-admin-key-0123", "PARLEY_DATA_DIR=" + t.TempDir(),
		"PARLEY_ANALYTICS_FLUSH_INTERVAL=100ms"})
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
	return apiclient.New(srv.URL, a.AdminKey())
}

// TestRunAgainst runs tests on a server through its invoke endpoint, with
// notes for what cannot apply there, and checks a canary before promotion.
func TestRunAgainst(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	dir := writeDir(t, testBot, map[string]string{"tests/remote.yaml": `tests:
  - name: order with a slot
    user: alice
    turns:
      - say: I want a big pizza
        intent: Order
        reply: A large pizza. Toppings?
        options: [mushrooms, olives]
        slots: {size: large}
        session: {count: 1, size: large}
      - say: olives
        reply: Added olives.
        end_conversation: true
        session: {count: null}
  - name: what does not apply
    channel: telegram
    now: 2026-12-01T10:00:00Z
    mocks:
      http:
        - {url: "https://api.example.com/menu", body: "{}"}
    turns:
      - {say: when are you open, reply: Open 11 to 23.}
  - name: stable hours
    turns:
      - {say: what are your opening hours, reply: Open 11 to 23.}
  - name: a button press
    turns:
      - {postback: BTN_42, intent: fallback, reply: pressed BTN_42}
`})
	s, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := botdir.Deploy(ctx, c, s.Bot, botdir.DeployOptions{SkipChannels: true}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	r, err := RunAgainst(ctx, c, s, RemoteOptions{RunOptions: RunOptions{OnResult: func(r *Result) { seen = append(seen, r.Name) }}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 || r.Passed != 4 || r.Target != c.Base() || len(seen) != 4 {
		t.Fatalf("against the server:\n%s", report(t, r))
	}
	notes := strings.Join(resultOf(t, r, "what does not apply").Notes, "\n")
	for _, want := range []string{"mocks do not apply", "now does not apply", "channel telegram does not apply"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}

	// A canary of Hours: --canary runs every test in it.
	if _, err := RunAgainst(ctx, c, s, RemoteOptions{Canary: true}); err == nil || !strings.Contains(err.Error(), "testbot has no canary") {
		t.Errorf("--canary without a canary: %v", err)
	}
	canary := strings.Replace(testBot["intents/Hours.lua"], "Open 11 to 23.", "Canary hours.", 1)
	if err := c.Do(ctx, "PUT", "/v1/bots/testbot/intents/Hours?canary=20", canary, nil); err != nil {
		t.Fatal(err)
	}
	r, err = RunAgainst(ctx, c, s, RemoteOptions{Canary: true})
	if err != nil {
		t.Fatal(err)
	}
	res := resultOf(t, r, "stable hours")
	if res.Passed || res.Failures[0].Got != "Canary hours." || !strings.Contains(strings.Join(res.Notes, " "), "in the canaries of Hours v2") {
		t.Errorf("in the canary:\n%s", report(t, r))
	}
	if !resultOf(t, r, "order with a slot").Passed {
		t.Errorf("the intents without a canary answer as before:\n%s", report(t, r))
	}
}

// TestRecord writes a test from a stored conversation; the test passes
// against the server it was recorded on.
func TestRecord(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	dir := writeDir(t, testBot)
	bot, err := readBot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := botdir.Deploy(ctx, c, bot, botdir.DeployOptions{SkipChannels: true}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"hello there", "I want a huge pizza", "mushrooms", "boom"} {
		if err := c.Do(ctx, "POST", "/v1/bots/testbot/invoke", map[string]string{"user": "carol", "text": text}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var raw []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err = Record(ctx, c, "testbot", "web:carol")
		if err == nil && strings.Count(string(raw), "- say:") == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("recorded.yaml", raw)
	if err != nil {
		t.Fatalf("the recorded file does not parse: %v\n%s", err, raw)
	}
	rec := f.Tests[0]
	if rec.Name != "recorded web:carol" || rec.User != "carol" || rec.Now.IsZero() || len(rec.Turns) != 4 {
		t.Fatalf("recorded:\n%s", raw)
	}
	if turn := rec.Turns[1]; *turn.Intent != "Order" || *turn.Reply.Exact != "A large pizza. Toppings?" {
		t.Errorf("turn 2: %+v\n%s", turn, raw)
	}
	if turn := rec.Turns[2]; !*turn.EndConversation {
		t.Errorf("turn 3 ended the conversation:\n%s", raw)
	}
	if turn := rec.Turns[3]; *turn.Outcome != "error" {
		t.Errorf("turn 4 failed:\n%s", raw)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests", "recorded.yaml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := RunAgainst(ctx, c, s, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 0 {
		t.Errorf("the recorded test fails against the server:\n%s\n%s", report(t, r), raw)
	}
	// And offline, where its clock is frozen at the first turn.
	if r := runDir(t, dir); r.Failed != 0 {
		t.Errorf("the recorded test fails in process:\n%s", report(t, r))
	}
	if _, err := Record(ctx, c, "testbot", "web:nobody"); err == nil || !strings.Contains(err.Error(), "has no recorded turns") {
		t.Errorf("an empty conversation: %v", err)
	}
}
