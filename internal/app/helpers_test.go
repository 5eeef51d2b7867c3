package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testredis"
)

const (
	adminKey = "test-admin-key-0123456789"
	webToken = "web-token-0123456789"
	// secretKeyEnv seals secrets at rest, which a real Redis needs a key for.
	secretKeyEnv = "PARLEY_SECRET_KEY=c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OWE="
)

// testApp is a running Parley behind an httptest server.
type testApp struct {
	*App
	URL  string
	srv  *httptest.Server
	stop context.CancelFunc
	wait func() error
	t    testing.TB
	// cutOff is set by a test that cut the app off its store: failing to
	// write what it holds at shutdown is then expected.
	cutOff bool
}

type appOptions struct {
	redisURL string // empty: embedded
	dataDir  string
	prefix   string
	refresh  string // catalog refresh interval, default 200ms
}

func testConfig(t testing.TB, o appOptions) config.Config {
	if o.refresh == "" {
		o.refresh = "200ms"
	}
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=" + adminKey, secretKeyEnv, "PARLEY_CATALOG_REFRESH=" + o.refresh,
		"PARLEY_SNAPSHOT_INTERVAL=1h", "PARLEY_REDIS_CONNECT_TIMEOUT=2s",
		"PARLEY_SCHEDULE_MIN_INTERVAL=1s"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL, cfg.DataDir, cfg.KeyPrefix = o.redisURL, o.dataDir, o.prefix
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "parley:"
	}
	return cfg
}

func startApp(t *testing.T, o appOptions) *testApp {
	t.Helper()
	return serveApp(t, testConfig(t, o), testLogger(t))
}

// serveApp starts an app with cfg, its background work and an HTTP test
// server in front of it, all stopped at cleanup.
func serveApp(t testing.TB, cfg config.Config, log *slog.Logger) *testApp {
	t.Helper()
	return serveAppHooks(t, cfg, log, Hooks{})
}

// serveAppHooks is serveApp with parts replaced (see Hooks).
func serveAppHooks(t testing.TB, cfg config.Config, log *slog.Logger, hooks Hooks) *testApp {
	t.Helper()
	a, err := NewWithHooks(context.Background(), cfg, log, hooks)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{App: a, stop: cancel, t: t}
	ta.wait = a.StartBackground(ctx)
	ta.srv = httptest.NewServer(a.Handler())
	ta.URL = ta.srv.URL
	t.Cleanup(ta.Close)
	return ta
}

// Close stops the app; safe to call twice.
func (ta *testApp) Close() {
	if ta.srv == nil {
		return
	}
	ta.srv.Close()
	ta.stop()
	if err := ta.wait(); err != nil && !ta.cutOff {
		ta.t.Errorf("background services: %v", err)
	}
	if err := ta.App.Close(); err != nil && !ta.cutOff {
		ta.t.Errorf("close: %v", err)
	}
	ta.srv = nil
}

// startRedisApp starts an app on the real test Redis with a key prefix of its own.
func startRedisApp(t *testing.T) *testApp {
	return startApp(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PARLEY_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// response is a decoded JSON answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r response) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// do sends a request with the admin or channel token and any further
// header name/value pairs; body may be a string (sent as is) or a value
// (JSON). A JSON answer is decoded.
func do(t testing.TB, method, url, token string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, url, raw)
		}
	}
	return out
}

// must fails the test unless the answer has the wanted status.
func (r response) must(t testing.TB, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Raw)
	}
	return r
}

// setupBot creates a bot with the web channel and the given handlers.
func (ta *testApp) setupBot(t testing.TB, bot string, settings map[string]any, handlers map[string]string) {
	t.Helper()
	if settings == nil {
		settings = map[string]any{}
	}
	do(t, "PUT", ta.URL+"/v1/bots/"+bot, adminKey, settings).must(t, http.StatusCreated)
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/channels/web", adminKey, map[string]string{"token": webToken}).must(t, http.StatusOK)
	for intent, src := range handlers {
		do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/intents/"+intent, adminKey, src).must(t, http.StatusCreated)
	}
}

// say posts a web message and returns the decoded answer.
func (ta *testApp) say(t testing.TB, bot string, msg map[string]any) response {
	t.Helper()
	return do(t, "POST", ta.URL+"/hooks/"+bot+"/web", webToken, msg)
}

// firstReply is the text of the first reply in a web answer.
func firstReply(t *testing.T, r response) string {
	t.Helper()
	replies, _ := r.Body["replies"].([]any)
	if len(replies) == 0 {
		t.Fatalf("no replies in %s", r.Raw)
	}
	text, _ := replies[0].(map[string]any)["text"].(string)
	return text
}
