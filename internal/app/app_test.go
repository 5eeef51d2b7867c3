package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

const counterHandler = `
function handle(event, session)
  session.count = (session.count or 0) + 1
  return "count " .. session.count
end`

func TestWebConversationKeepsSession(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	for i := 1; i <= 3; i++ {
		r := ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
		if got, want := firstReply(t, r), fmt.Sprintf("count %d", i); got != want {
			t.Fatalf("turn %d: reply %q, want %q", i, got, want)
		}
		if r.Body["conversation"] != "alice" || r.Body["intent"] != "Count" || r.Body["end_conversation"] != false {
			t.Fatalf("answer = %s", r.Raw)
		}
	}
	// Another user has a separate conversation.
	r := ta.say(t, "counter", map[string]any{"user": "bob", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 1" {
		t.Fatalf("bob's first turn = %q", got)
	}
	// The conversation can be inspected through the management API.
	conv := do(t, "GET", ta.URL+"/v1/bots/counter/conversations/web/alice", adminKey, nil).must(t, http.StatusOK)
	state := conv.Body["state"].(map[string]any)
	if state["turns"] != float64(3) || state["data"].(map[string]any)["count"] != float64(3) {
		t.Fatalf("conversation = %s", conv.Raw)
	}
	if hist := conv.Body["history"].([]any); len(hist) != 3 {
		t.Fatalf("history has %d turns, want 3", len(hist))
	}
}

// TestConcurrentTurnsAcrossTwoGateways sends 50 concurrent messages to one
// conversation through two gateway instances sharing one Redis.
func TestConcurrentTurnsAcrossTwoGateways(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})

	const n = 50
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		gw := a
		if i%2 == 1 {
			gw = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := gw.say(t, "counter", map[string]any{"user": "u", "conversation": "shared", "intent": "Count"})
			if r.Status != http.StatusOK {
				errs <- r.Raw
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("failed turn: %s", e)
	}
	conv := do(t, "GET", b.URL+"/v1/bots/counter/conversations/web/shared", adminKey, nil).must(t, http.StatusOK)
	state := conv.Body["state"].(map[string]any)
	if got := state["data"].(map[string]any)["count"]; got != float64(n) {
		t.Fatalf("counter = %v after %d concurrent turns, want %d", got, n, n)
	}
}

func TestRetriedMessageRunsOnce(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	msg := map[string]any{"user": "alice", "intent": "Count", "id": "msg-42"}
	first := ta.say(t, "counter", msg).must(t, http.StatusOK)
	second := ta.say(t, "counter", msg).must(t, http.StatusOK)
	if first.Raw != second.Raw {
		t.Fatalf("retry answered differently:\n%s\n%s", first.Raw, second.Raw)
	}
	third := ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count", "id": "msg-43"}).must(t, http.StatusOK)
	if got := firstReply(t, third); got != "count 2" {
		t.Fatalf("next message = %q, want count 2 (the retry must not have run the handler)", got)
	}
}

func TestRoutingThroughNLUExpectAndFallback(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "shop", map[string]any{"fallback_reply": "No idea."}, map[string]string{
		"Ask":    `function handle(e, s) return {text = "Which colour?", expect = "Colour", options = {"red", "blue"}} end`,
		"Colour": `function handle(e, s) s.colour = e.text return "Noted: " .. e.text .. " via " .. e.source end`,
	})
	do(t, "PUT", ta.URL+"/v1/bots/shop/nlu", adminKey, map[string]any{
		"intents": map[string][]string{"Ask": {"I want a shirt", "buy a shirt"}},
	}).must(t, http.StatusOK)

	r := ta.say(t, "shop", map[string]any{"user": "u", "text": "I want a shirt!"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "Which colour?" || r.Body["intent"] != "Ask" {
		t.Fatalf("classifier turn = %s", r.Raw)
	}
	opts := r.Body["replies"].([]any)[0].(map[string]any)["options"].([]any)
	if len(opts) != 2 || opts[0] != "red" {
		t.Fatalf("options = %v", opts)
	}
	r = ta.say(t, "shop", map[string]any{"user": "u", "text": "red"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "Noted: red via expect" {
		t.Fatalf("expect turn = %q", got)
	}
	// expect is one-shot: the next unmatched text falls back to the built-in reply.
	r = ta.say(t, "shop", map[string]any{"user": "u", "text": "green"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "No idea." || r.Body["intent"] != "" {
		t.Fatalf("fallback turn = %s", r.Raw)
	}
	// With a fallback handler, it answers instead, with the near misses.
	do(t, "PUT", ta.URL+"/v1/bots/shop/intents/fallback", adminKey,
		`function handle(e, s) return "fallback; candidates " .. #(e.candidates or {}) end`).must(t, http.StatusCreated)
	r = ta.say(t, "shop", map[string]any{"user": "u", "text": "a shirt maybe with sleeves"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "fallback; candidates 1" {
		t.Fatalf("fallback handler turn = %q", got)
	}
}

func TestEndConversationClearsSession(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "b", nil, map[string]string{
		"Count": counterHandler,
		"Bye":   `function handle(e, s) return {text = "bye after " .. (s.count or 0), end_conversation = true} end`,
	})
	ta.say(t, "b", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK)
	r := ta.say(t, "b", map[string]any{"user": "u", "intent": "Bye"}).must(t, http.StatusOK)
	if firstReply(t, r) != "bye after 1" || r.Body["end_conversation"] != true {
		t.Fatalf("bye = %s", r.Raw)
	}
	r = ta.say(t, "b", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 1" {
		t.Fatalf("after end: %q, want a fresh session", got)
	}
}

func TestFailedTurnsChangeNothing(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "b", map[string]any{"timeout_ms": 100, "error_reply": "Oops."}, map[string]string{
		"Count": counterHandler,
		"Crash": "function handle(e, s)\n  s.count = 999\n  error('kaboom')\nend",
		"Spin":  "function handle(e, s)\n  s.count = 999\n  while true do end\nend",
		"Bad":   "function handle(e, s)\n  s.count = 999\n  s.fn = function() end\n  return 'ok'\nend",
	})
	ta.say(t, "b", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK)

	for _, tc := range []struct{ intent, outcome, msg string }{
		{"Crash", "error", "Crash.lua:3: kaboom"},
		{"Spin", "timeout", ""},
		{"Bad", "error", "function"},
	} {
		start := time.Now()
		r := ta.say(t, "b", map[string]any{"user": "u", "intent": tc.intent}).must(t, http.StatusOK)
		if got := firstReply(t, r); got != "Oops." {
			t.Errorf("%s: user got %q, want the bot's error reply", tc.intent, got)
		}
		if tc.intent == "Spin" && time.Since(start) > 5*time.Second {
			t.Errorf("timeout took %v", time.Since(start))
		}
		inv := do(t, "POST", ta.URL+"/v1/bots/b/invoke", adminKey, map[string]any{"user": "u", "intent": tc.intent}).must(t, http.StatusOK)
		e, _ := inv.Body["error"].(map[string]any)
		if inv.Body["outcome"] != tc.outcome || e == nil || !strings.Contains(fmt.Sprint(e["message"]), tc.msg) {
			t.Errorf("%s: invoke = %s, want outcome %s and error mentioning %q", tc.intent, inv.Raw, tc.outcome, tc.msg)
		}
	}
	r := ta.say(t, "b", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 2" {
		t.Fatalf("after failed turns the counter says %q, want count 2", got)
	}
}

func TestHotRedeployAndRollback(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "b", nil, nil)
	up := func(src string) float64 {
		r := do(t, "PUT", ta.URL+"/v1/bots/b/intents/Hello", adminKey, src)
		if r.Status != http.StatusCreated && r.Status != http.StatusOK {
			t.Fatalf("upload: %s", r.Raw)
		}
		return r.Body["version"].(float64)
	}
	hello := func() string {
		return firstReply(t, ta.say(t, "b", map[string]any{"user": "u", "intent": "Hello"}).must(t, http.StatusOK))
	}
	v1 := up(`function handle() return "v1" end`)
	if got := hello(); got != "v1" {
		t.Fatalf("v1 answered %q", got)
	}
	v2 := up(`function handle() return "v2" end`)
	if v1 != 1 || v2 != 2 {
		t.Fatalf("versions %v, %v", v1, v2)
	}
	if got := hello(); got != "v2" {
		t.Fatalf("after redeploy answered %q, want v2 without a restart", got)
	}
	// Uploading the same source again is not a new version.
	r := do(t, "PUT", ta.URL+"/v1/bots/b/intents/Hello", adminKey, `function handle() return "v2" end`).must(t, http.StatusOK)
	if r.Body["unchanged"] != true || r.Body["version"] != float64(2) {
		t.Fatalf("re-upload = %s", r.Raw)
	}
	do(t, "POST", ta.URL+"/v1/bots/b/intents/Hello/rollback", adminKey, map[string]int{"version": 1}).must(t, http.StatusOK)
	if got := hello(); got != "v1" {
		t.Fatalf("after rollback answered %q", got)
	}
	info := do(t, "GET", ta.URL+"/v1/bots/b/intents/Hello", adminKey, nil).must(t, http.StatusOK)
	if info.Body["version"] != float64(1) || len(info.Body["versions"].([]any)) != 2 ||
		!strings.Contains(info.Body["source"].(string), `"v1"`) {
		t.Fatalf("intent info = %s", info.Raw)
	}
	do(t, "POST", ta.URL+"/v1/bots/b/intents/Hello/rollback", adminKey, map[string]int{"version": 7}).must(t, http.StatusNotFound)
}

// TestInFlightTurnFinishesOnOldVersion uploads a new version while a slow
// turn of the old one is running.
func TestInFlightTurnFinishesOnOldVersion(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "b", map[string]any{"timeout_ms": 5000}, map[string]string{
		"Slow": `function handle(e, s)
  local deadline = os.clock() + 0.3
  while os.clock() < deadline do end
  return "old"
end`,
	})
	done := make(chan string, 1)
	go func() {
		r := ta.say(t, "b", map[string]any{"user": "slow", "intent": "Slow"})
		done <- r.Raw
	}()
	time.Sleep(100 * time.Millisecond)
	do(t, "PUT", ta.URL+"/v1/bots/b/intents/Slow", adminKey, `function handle() return "new" end`).must(t, http.StatusCreated)
	r := ta.say(t, "b", map[string]any{"user": "other", "intent": "Slow"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "new" {
		t.Fatalf("turn after upload answered %q, want new", got)
	}
	if raw := <-done; !strings.Contains(raw, `"old"`) {
		t.Fatalf("in-flight turn answered %s, want the old version's reply", raw)
	}
}

func TestChangesReachOtherReplicas(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "b", nil, map[string]string{"Hello": `function handle() return "v1" end`})
	if got := firstReply(t, b.say(t, "b", map[string]any{"user": "u", "intent": "Hello"}).must(t, http.StatusOK)); got != "v1" {
		t.Fatalf("replica b answered %q", got)
	}
	do(t, "PUT", a.URL+"/v1/bots/b/intents/Hello", adminKey, `function handle() return "v2" end`).must(t, http.StatusCreated)
	deadline := time.Now().Add(time.Second)
	for {
		got := firstReply(t, b.say(t, "b", map[string]any{"user": "u", "intent": "Hello"}).must(t, http.StatusOK))
		if got == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b still answers %q 1s after the upload on replica a", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStoreUnavailableAtStart(t *testing.T) {
	cfg := testConfig(t, appOptions{redisURL: "redis://127.0.0.1:1/0"})
	start := time.Now()
	_, err := New(context.Background(), cfg, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want a clear unreachable error", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %v to give up", time.Since(start))
	}
}
