package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// TestWebhookRefusalsLookAlike: an outsider cannot tell an unknown bot from
// a bot without the channel, from an unknown channel, or from a request that
// failed verification; the admin key shows which it was.
func TestWebhookRefusalsLookAlike(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "shop", nil, map[string]string{"Hi": `function handle() return "hi" end`})
	do(t, "PUT", ta.URL+"/v1/bots/shop/channels/twilio", adminKey,
		map[string]string{"auth_token": "0123456789abcdef0123456789abcdef"}).must(t, http.StatusOK)
	msg := map[string]any{"user": "u", "text": "hi"}

	cases := []struct {
		name, method, path, token, adminCode string
		body                                 any
	}{
		{"unknown bot", "POST", "/hooks/nobody/web", webToken, "bot_not_found", msg},
		{"channel not configured", "POST", "/hooks/shop/slack", "", "channel_not_configured", msg},
		{"unknown channel", "POST", "/hooks/shop/pigeon", webToken, "channel_not_found", msg},
		{"wrong token", "POST", "/hooks/shop/web", "wrong-token-0123456789", "unauthorized", msg},
		{"a method the channel does not take", "GET", "/hooks/shop/web", "", "method_not_allowed", nil},
		{"an unsigned body that is not a form", "POST", "/hooks/shop/twilio", "", "unauthorized", "%zz"},
	}
	var first response
	for i, c := range cases {
		r := do(t, c.method, ta.URL+c.path, c.token, c.body)
		if i == 0 {
			first = r
		}
		if r.Status != http.StatusUnauthorized || r.Raw != first.Raw {
			t.Errorf("%s: %d %s; want the same answer as for an unknown bot: %d %s", c.name, r.Status, r.Raw, first.Status, first.Raw)
		}
		if strings.Contains(r.Raw, "shop") || strings.Contains(r.Raw, "nobody") {
			t.Errorf("%s: the answer names the bot: %s", c.name, r.Raw)
		}
		if c.token == webToken || c.token == "" {
			// With the admin key instead, the detail.
			r = do(t, c.method, ta.URL+c.path, adminKey, c.body)
			if r.errCode() != c.adminCode {
				t.Errorf("%s with the admin key: %d %s, want code %s", c.name, r.Status, r.Raw, c.adminCode)
			}
		}
	}
	// The bot still answers its own channel.
	ta.say(t, "shop", msg).must(t, http.StatusOK)
}

// TestReadinessHidesTheStoreAddress: /readyz says only "unavailable" to an
// outsider, the admin key shows why, and a turn's 503 names no address.
func TestReadinessHidesTheStoreAddress(t *testing.T) {
	srv := testredis.StartServer(t)
	ta := startApp(t, appOptions{redisURL: srv.URL(), prefix: "parley:"})
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	srv.Stop()
	addr := strings.TrimPrefix(strings.TrimSuffix(srv.URL(), "/0"), "redis://")
	_, port, _ := strings.Cut(addr, ":")

	r := do(t, "GET", ta.URL+"/readyz", "", nil).must(t, http.StatusServiceUnavailable)
	if strings.Contains(r.Raw, port) || strings.Contains(r.Raw, "dial") || r.Body["status"] != "unavailable" {
		t.Errorf("/readyz without the key: %s", r.Raw)
	}
	r = do(t, "GET", ta.URL+"/readyz", adminKey, nil).must(t, http.StatusServiceUnavailable)
	if e, _ := r.Body["error"].(string); e == "" {
		t.Errorf("/readyz with the admin key has no detail: %s", r.Raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"})
		if r.Status == http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.Status != http.StatusServiceUnavailable || strings.Contains(r.Raw, port) || strings.Contains(r.Raw, "dial") {
		t.Errorf("turn during the outage: %d %s", r.Status, r.Raw)
	}
}
