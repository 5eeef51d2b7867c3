package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	info := do(t, "GET", second.URL+"/v1/bots/counter/intents/Count", adminKey, nil).must(t, http.StatusOK)
	if info.Body["version"] != float64(1) {
		t.Fatalf("intent after restart = %s", info.Raw)
	}
	r := second.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 3" {
		t.Fatalf("after restart: %q, want count 3 (handler, channel and session restored); turn %s", got, r.Raw)
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

// TestRedisRestartUnderLoad restarts Redis while several users talk to the
// bot without pause. Each user retries a failed message with the same id, as
// a platform retries a webhook. Outcomes: while Redis is down every turn fails
// with 503 (never a 500 or a hang); afterwards every user's count goes on
// from where it was, so no turn was lost, applied twice, or half-written.
func TestRedisRestartUnderLoad(t *testing.T) {
	srv := testredis.StartServer(t)
	ta := startApp(t, appOptions{redisURL: srv.URL(), prefix: "parley:"})
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})

	const users = 6
	type tally struct {
		ok, unavailable int
		wrong           []string // unexpected answers or statuses
	}
	var restarted atomic.Bool
	stop := make(chan struct{})
	results := make([]tally, users)
	var afterRestart [users]atomic.Int64 // answered turns since the restart, per user
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[u]
			user := fmt.Sprintf("user-%d", u)
			for n := 1; ; {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"id":"%s-msg-%d","user":%q,"intent":"Count"}`, user, n, user)
				req, _ := http.NewRequest(http.MethodPost, ta.URL+"/hooks/counter/web", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+webToken)
				resp, err := client.Do(req)
				if err != nil {
					res.wrong = append(res.wrong, "transport: "+err.Error())
					return
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					var answer struct {
						Replies []struct{ Text string } `json:"replies"`
					}
					if err := json.Unmarshal(raw, &answer); err != nil || len(answer.Replies) != 1 ||
						answer.Replies[0].Text != fmt.Sprintf("count %d", n) {
						res.wrong = append(res.wrong, fmt.Sprintf("message %d answered %s", n, raw))
						return
					}
					res.ok++
					if restarted.Load() {
						afterRestart[u].Add(1)
					}
					n++
				case http.StatusServiceUnavailable, http.StatusTooManyRequests:
					if resp.Header.Get("Retry-After") == "" {
						res.wrong = append(res.wrong, fmt.Sprintf("%d without Retry-After: %s", resp.StatusCode, raw))
						return
					}
					res.unavailable++
					time.Sleep(20 * time.Millisecond) // then retry the same message
				default:
					res.wrong = append(res.wrong, fmt.Sprintf("status %d: %s", resp.StatusCode, raw))
					return
				}
			}
		}()
	}

	time.Sleep(300 * time.Millisecond) // steady load before the outage
	srv.Stop()
	// Turns fail or wait meanwhile; the probe shows that the outage
	// happened while the users kept talking.
	sawDown := false
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if do(t, "GET", ta.URL+"/readyz", "", nil).Status == http.StatusServiceUnavailable {
			sawDown = true
		}
	}
	srv.Start()
	restarted.Store(true)
	for deadline := time.Now().Add(30 * time.Second); do(t, "GET", ta.URL+"/readyz", "", nil).Status != http.StatusOK; {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatal("not ready 30 s after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every user carries on. A turn that held a conversation when Redis went
	// away keeps it until its lease ends, so a user may wait a few seconds.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		progressed := 0
		for u := range users {
			if afterRestart[u].Load() >= 5 {
				progressed++
			}
		}
		if progressed == users {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("30 s after the restart only %d of %d users had 5 more turns answered", progressed, users)
			break
		}
	}
	close(stop)
	wg.Wait()

	total := 0
	for u, res := range results {
		if len(res.wrong) > 0 {
			t.Errorf("user-%d: %v", u, res.wrong)
		}
		total += res.unavailable
		t.Logf("user-%d: %d turns answered (%d after the restart), %d refused (503 or 429, then retried)",
			u, res.ok, afterRestart[u].Load(), res.unavailable)
	}
	// Whether a turn failed (503) or waited for Redis to come back depends
	// on where the outage caught it and on the machine's speed; either is
	// right. That the outage happened under load is what /readyz showed.
	if !sawDown {
		t.Error("/readyz never reported the outage: it did not happen under load")
	}
	t.Logf("%d turns refused during the outage (the others waited for Redis)", total)
}
