package devloop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a buffer that dev writes while the test reads it.
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

// copyDir copies the example bot into a temporary directory.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// users numbers the users of say: each message starts a conversation.
var users atomic.Int64

// say posts a message of a new user to the web channel and returns the
// first reply.
func say(t *testing.T, info Info, text string) string {
	t.Helper()
	user := "dev-test-" + strconv.FormatInt(users.Add(1), 10)
	body := strings.NewReader(`{"user": "` + user + `", "text": "` + text + `"}`)
	req, _ := http.NewRequest("POST", info.WebURL(), body)
	req.Header.Set("Authorization", "Bearer "+info.WebToken)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans struct {
		Replies []struct{ Text string }
	}
	if err := json.Unmarshal(raw, &ans); err != nil || len(ans.Replies) == 0 {
		t.Fatalf("web answer %d %s: %v", resp.StatusCode, raw, err)
	}
	return ans.Replies[0].Text
}

// eventually polls cond for up to a wide margin.
func eventually(t *testing.T, what string, out *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s; dev printed:\n%s", what, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDev: dev serves the bot, redeploys an edited handler, reports a broken
// one with its file and line while the previous version keeps serving,
// reruns the tests on every change, and stops on cancel.
func TestDev(t *testing.T) {
	dir := copyDir(t, "../../examples/pizzabot")
	out := &syncBuffer{}
	ready := make(chan Info, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Dir: dir, Addr: "127.0.0.1:0", Test: true, Out: out, Environ: []string{"PATH=/usr/bin"},
			Ready: func(i Info) { ready <- i }})
	}()
	var info Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("dev stopped: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dev not ready in 60s:\n%s", out.String())
	}
	if info.Bot != "pizzabot" || !strings.HasPrefix(info.WebToken, generatedPrefix) || !strings.HasPrefix(info.AdminKey, "pk_dev_") {
		t.Errorf("info %+v", info)
	}
	for _, want := range []string{info.Console(), info.AdminKey, info.WebURL(), info.WebToken, "PIZZABOT_WEB_TOKEN is not set"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dev did not print %q:\n%s", want, out.String())
		}
	}
	eventually(t, "the first test run", out, func() bool { return strings.Contains(out.String(), "tests: 5 passed, 0 failed") })
	if got := say(t, info, "hello"); !strings.HasPrefix(got, "Hi! I'm Pizza Bot") {
		t.Fatalf("first reply %q", got)
	}

	// An edited handler is served within seconds.
	greet := filepath.Join(dir, "intents", "Greet.lua")
	src, err := os.ReadFile(greet)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "Hi! I'm Pizza Bot.", "Welcome to Pizza Bot.", 1)
	if err := os.WriteFile(greet, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edited reply", out, func() bool { return strings.HasPrefix(say(t, info, "hello"), "Welcome to Pizza Bot.") })
	if !strings.Contains(out.String(), "intent Greet: version 2") {
		t.Errorf("dev did not say it redeployed Greet:\n%s", out.String())
	}
	eventually(t, "the failing test", out, func() bool { return strings.Contains(out.String(), "FAIL greet twice") })

	// A broken handler is reported with its file and line; version 2 keeps serving.
	if err := os.WriteFile(greet, []byte("function handle()\n  return 'x'\n\nlocal = 5\nend\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the compile error", out, func() bool {
		return strings.Contains(out.String(), greet+":4: syntax error near 'local'")
	})
	if !strings.Contains(out.String(), "the previous version keeps serving") {
		t.Errorf("dev did not say the previous version serves:\n%s", out.String())
	}
	if got := say(t, info, "hello"); !strings.HasPrefix(got, "Welcome to Pizza Bot.") {
		t.Errorf("after the broken edit: %q", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev stopped with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not stop within 60s of its context's end")
	}
	if !strings.HasSuffix(out.String(), "parley dev: stopped\n") {
		t.Errorf("dev did not say it stopped:\n%s", out.String())
	}
	if resp, err := http.Get(info.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the server still answers after dev stopped")
	}
}
