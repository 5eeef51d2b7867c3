package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsCommand(t *testing.T) {
	r := newCLIRunner(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bot.yaml"), "name: logged\n")
	writeFile(t, filepath.Join(dir, "intents", "fallback.lua"),
		"function handle(e) log.info('heard ' .. e.text) if e.text == 'boom' then error('kaboom') end return 'ok' end\n")
	r.want(0, nil, "deploy", dir)
	r.want(0, nil, "invoke", "logged", "first", "--user", "ann")
	r.want(1, []string{"kaboom"}, "invoke", "logged", "boom", "--user", "ann")

	// Entries are written within a second or so.
	var out string
	for deadline := time.Now().Add(15 * time.Second); strings.Count(out, "fallback v1") < 2; time.Sleep(200 * time.Millisecond) {
		out = r.want(0, nil, "logs", "logged")
		if time.Now().After(deadline) {
			t.Fatalf("logs never showed both turns:\n%s", out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "fallback v1  ok") || !strings.Contains(lines[1], "heard first") ||
		!strings.Contains(lines[2], "error") || !strings.Contains(lines[2], "kaboom") || !strings.Contains(lines[2], "web/ann") {
		t.Fatalf("logs (oldest first, with log lines):\n%s", out)
	}
	out = r.want(0, nil, "logs", "logged", "--outcome", "error", "--since", "10m", "--json")
	var e logEntry
	if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &e) != nil || e.Outcome != "error" || e.ID == "" {
		t.Fatalf("logs --outcome error --json:\n%s", out)
	}
	r.want(2, []string{"--since takes a duration"}, "logs", "logged", "--since", "yesterday")
	r.want(1, []string{"HTTP 400"}, "logs", "logged", "--outcome", "fine")

	// --follow prints the recorded entries, then new ones as they happen.
	var stdout, stderr syncBuffer
	c := newCLI(r.env, &stdout, &stderr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, c, []string{"logs", "logged", "-f", "--intent", "fallback", "--limit", "1"})
	}()
	waitFor := func(what string, n int) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); strings.Count(stdout.String(), what) < n; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q (x%d) within 20s:\n%s%s", what, n, stdout.String(), stderr.String())
			}
		}
	}
	waitFor("kaboom", 1) // the newest recorded entry
	r.want(0, nil, "invoke", "logged", "third", "--user", "bob")
	waitFor("heard third", 1)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("logs --follow: exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("logs --follow did not stop when interrupted")
	}
	if strings.Contains(stdout.String(), "heard first") || strings.Count(stdout.String(), "kaboom") != 1 {
		t.Fatalf("follow printed more than the newest entry and the new one:\n%s", stdout.String())
	}
}
