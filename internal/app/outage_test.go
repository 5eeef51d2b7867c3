package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

func TestEmbeddedStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := startApp(t, appOptions{dataDir: dir})
	first.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	for i := 0; i < 2; i++ {
		first.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
	}
	first.Close()

	second := startApp(t, appOptions{dataDir: dir})
	r := second.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 3" {
		t.Fatalf("after restart: %q, want count 3 (handler, channel and session restored)", got)
	}
	info := do(t, "GET", second.URL+"/v1/bots/counter/intents/Count", adminKey, nil).must(t, http.StatusOK)
	if info.Body["version"] != float64(1) {
		t.Fatalf("intent after restart = %s", info.Raw)
	}
}

func TestGeneratedAdminKeyIsKept(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, appOptions{dataDir: dir})
	cfg.AdminKey = ""
	a, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	key := a.AdminKey()
	a.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil || strings.TrimSpace(string(raw)) != key || len(key) < 32 {
		t.Fatalf("admin key file %q (%v), key %q", raw, err, key)
	}
	st, _ := os.Stat(filepath.Join(dir, "admin.key"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin key file mode %v, want 0600", st.Mode().Perm())
	}
	b, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.AdminKey() != key {
		t.Fatalf("second start generated a new key")
	}
}

// TestRedisOutageMidRun stops Redis under a running gateway: turns fail with
// a clear 503 and change nothing, readiness reports it, and service resumes
// when Redis is back.
func TestRedisOutageMidRun(t *testing.T) {
	srv := testredis.StartServer(t)
	ta := startApp(t, appOptions{redisURL: srv.URL(), prefix: "parley:"})
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)

	srv.Stop()
	r := ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"})
	if r.Status != http.StatusServiceUnavailable || r.errCode() != "unavailable" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("turn during outage: %d %s", r.Status, r.Raw)
	}
	do(t, "GET", ta.URL+"/readyz", "", nil).must(t, http.StatusServiceUnavailable)
	do(t, "GET", ta.URL+"/v1/bots", adminKey, nil).must(t, http.StatusServiceUnavailable)

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for do(t, "GET", ta.URL+"/readyz", "", nil).Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready 10s after Redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r = ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 2" {
		t.Fatalf("after the outage: %q, want count 2 (the failed turn must not count)", got)
	}
}
