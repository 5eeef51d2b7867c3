package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

const slowDown = "Slow down, please."

// mustRateLimited checks a 429 answer of the web channel or the API for a
// rate limit: Retry-After in whole seconds and the bot's busy reply.
func mustRateLimited(t *testing.T, r response) {
	t.Helper()
	r.must(t, http.StatusTooManyRequests)
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 || r.errCode() != "rate_limited" {
		t.Fatalf("Retry-After %q, code %q; body %s", r.Header.Get("Retry-After"), r.errCode(), r.Raw)
	}
	if msg, _ := r.Body["error"].(map[string]any)["message"].(string); msg != slowDown {
		t.Fatalf("message %q, want the bot's busy_reply", msg)
	}
}

// TestRateLimitAcrossReplicas: two replicas sharing one Redis enforce one
// rate_limit_per_bot between them; over it, the web channel and the API get
// 429 with Retry-After and the bot's busy reply.
func TestRateLimitAcrossReplicas(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "rbot", map[string]any{"rate_limit_per_bot": "6/h", "busy_reply": slowDown},
		map[string]string{"Count": counterHandler})
	// b learns of the bot from the catalog.
	deadline := time.Now().Add(10 * time.Second)
	for do(t, "GET", b.URL+"/v1/bots/rbot/intents/Count", adminKey, nil).Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("replica b never saw the bot")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 6 {
		replica := a
		if i%2 == 1 {
			replica = b
		}
		replica.say(t, "rbot", map[string]any{"user": fmt.Sprintf("u%d", i), "intent": "Count"}).must(t, http.StatusOK)
	}
	mustRateLimited(t, b.say(t, "rbot", map[string]any{"user": "u9", "intent": "Count"}))
	mustRateLimited(t, a.say(t, "rbot", map[string]any{"user": "u0", "intent": "Count"}))
	mustRateLimited(t, do(t, "POST", a.URL+"/v1/bots/rbot/invoke", adminKey, map[string]any{"user": "u1", "intent": "Count"}))
}

// TestRateLimitPerUserEmbedded: rate_limit_per_user on the embedded store;
// a refused turn changes nothing in its conversation, and other
// conversations go on.
func TestRateLimitPerUserEmbedded(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "ubot", map[string]any{"rate_limit_per_user": "2/h", "busy_reply": slowDown},
		map[string]string{"Count": counterHandler})
	for i := 1; i <= 2; i++ {
		ta.say(t, "ubot", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
	}
	mustRateLimited(t, ta.say(t, "ubot", map[string]any{"user": "alice", "intent": "Count"}))
	r := ta.say(t, "ubot", map[string]any{"user": "bob", "intent": "Count"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 1" {
		t.Fatalf("bob: %q", got)
	}
	conv := do(t, "GET", ta.URL+"/v1/bots/ubot/conversations/web/alice", adminKey, nil).must(t, http.StatusOK)
	if !strings.Contains(conv.Raw, `"turns":2`) {
		t.Fatalf("alice after a refused turn: %s", conv.Raw)
	}
}

// TestRateLimitIgnoresRetries: a platform's retry of an answered message
// gets the remembered answer even when the user is over the limit, and
// does not use up the limit.
func TestRateLimitIgnoresRetries(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "rbot", map[string]any{"rate_limit_per_user": "2/h", "busy_reply": slowDown},
		map[string]string{"Count": counterHandler})
	first := map[string]any{"user": "alice", "intent": "Count", "id": "m1"}
	ta.say(t, "rbot", first).must(t, http.StatusOK)
	for range 3 { // retries: neither refused nor counted
		if got := firstReply(t, ta.say(t, "rbot", first).must(t, http.StatusOK)); got != "count 1" {
			t.Fatalf("retry answered %q, want the remembered count 1", got)
		}
	}
	r := ta.say(t, "rbot", map[string]any{"user": "alice", "intent": "Count", "id": "m2"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "count 2" {
		t.Fatalf("second message: %q", got)
	}
	mustRateLimited(t, ta.say(t, "rbot", map[string]any{"user": "alice", "intent": "Count", "id": "m3"}))
	if got := firstReply(t, ta.say(t, "rbot", first).must(t, http.StatusOK)); got != "count 1" {
		t.Fatalf("retry over the limit answered %q, want the remembered count 1", got)
	}
}

// TestRateLimitSettingsValidated: a malformed rate is refused with a clear error.
func TestRateLimitSettingsValidated(t *testing.T) {
	ta := startApp(t, appOptions{})
	r := do(t, "PUT", ta.URL+"/v1/bots/vbot", adminKey, map[string]any{"rate_limit_per_bot": "100 per second"})
	r.must(t, http.StatusBadRequest)
	if msg, _ := r.Body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "rate_limit_per_bot") ||
		!strings.Contains(msg, `"100/s"`) {
		t.Fatalf("error %s", r.Raw)
	}
}

// TestRateLimitTwilioSMS: a sync channel over the limit gets the bot's busy
// reply as TwiML (HTTP 200), not an HTTP error the sender never sees.
func TestRateLimitTwilioSMS(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "sbot", map[string]any{"rate_limit_per_user": "1/h", "busy_reply": slowDown},
		map[string]string{"fallback": chatCounter})
	const token = "0123456789abcdef0123456789abcdef"
	webhook := ta.URL + "/hooks/sbot/twilio"
	ta.connectChat(t, "sbot", "twilio", map[string]string{"auth_token": token,
		"account_sid": "AC00000000000000000000000000000000", "webhook_url": webhook})
	sms := func(sid, text string) response {
		form := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "SmsStatus": {"received"},
			"AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+14155551234"}, "To": {"+15005550006"},
			"Body": {text}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"}}
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		h.Set(twilio.SignatureHeader, twilio.Signature(token, webhook, form))
		return chatPost(t, http.MethodPost, webhook, h, []byte(form.Encode())).must(t, http.StatusOK)
	}
	if r := sms("SM11111111111111111111111111111111", "hi"); !strings.Contains(r.Raw, "heard hi #1") {
		t.Fatalf("first message: %s", r.Raw)
	}
	const want = `<?xml version="1.0" encoding="UTF-8"?><Response><Message>` + slowDown + `</Message></Response>`
	if r := sms("SM22222222222222222222222222222222", "again"); r.Raw != want {
		t.Fatalf("over the limit: %s, want %s", r.Raw, want)
	}
}

// TestRateLimitSlackDelayed: on an async channel a message over the limit is
// not a failure: the queue retries it after Retry-After, and every message
// is answered exactly once, in order, with nothing dead-lettered.
func TestRateLimitSlackDelayed(t *testing.T) {
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	do(t, "PUT", ta.URL+"/v1/bots/lbot", adminKey, map[string]any{"rate_limit_per_user": "1/s"}).must(t, http.StatusCreated)
	ta.connectChat(t, "lbot", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	do(t, "PUT", ta.URL+"/v1/bots/lbot/intents/fallback", adminKey, echoHandler).must(t, http.StatusCreated)
	hook := ta.URL + "/hooks/lbot/slack"
	for i, text := range []string{"a", "b", "c"} {
		postSlack(t, hook, "application/json", slackMessage(fmt.Sprintf("EvL%d", i), "D1", "U1", text), slackSecret, 0).must(t, 200)
	}
	got := fake.waitFor(t, 3)
	if want := []string{"echo: a #1", "echo: b #2", "echo: c #3"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", got, want)
	}
	dl, _ := do(t, "GET", ta.URL+"/v1/bots/lbot/deadletters", adminKey, nil).must(t, 200).Body["deadletters"].([]any)
	if len(dl) != 0 {
		t.Fatalf("dead letters: %v", dl)
	}
}

// limiterOutage makes every command on a rate limit key fail as if Redis
// were unreachable, while the rest of the store works.
type limiterOutage struct{ refused atomic.Int64 }

func (o *limiterOutage) DialHook(next redis.DialHook) redis.DialHook { return next }
func (o *limiterOutage) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, arg := range cmd.Args() {
			if s, ok := arg.(string); ok && strings.Contains(s, "rl:{") {
				o.refused.Add(1)
				err := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}
func (o *limiterOutage) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRateLimitFailsOpen: when Redis cannot answer the limiter, turns run
// (fail open) instead of being refused or failing.
func TestRateLimitFailsOpen(t *testing.T) {
	for _, backend := range []struct {
		name string
		opt  func(t *testing.T) appOptions
	}{
		{"redis", func(t *testing.T) appOptions {
			return appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)}
		}},
		{"embedded", func(*testing.T) appOptions { return appOptions{} }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ta := startApp(t, backend.opt(t))
			ta.setupBot(t, "obot", map[string]any{"rate_limit_per_bot": "1/h", "busy_reply": slowDown},
				map[string]string{"Count": counterHandler})
			ta.say(t, "obot", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
			mustRateLimited(t, ta.say(t, "obot", map[string]any{"user": "alice", "intent": "Count"}))

			outage := &limiterOutage{}
			ta.store.Client().AddHook(outage)
			for i := 2; i <= 4; i++ {
				r := ta.say(t, "obot", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
				if got := firstReply(t, r); got != fmt.Sprintf("count %d", i) {
					t.Fatalf("turn %d during the limiter outage: %q", i, got)
				}
			}
			if outage.refused.Load() < 3 {
				t.Fatalf("the limiter was asked %d times during the outage", outage.refused.Load())
			}
		})
	}
}

// TestRateLimitedBotDuringRedisOutage: with Redis down, a rate-limited bot's
// turns fail as every turn does (503, nothing written), never as 429 or a
// crash, and are served again once Redis is back.
func TestRateLimitedBotDuringRedisOutage(t *testing.T) {
	srv := testredis.StartServer(t)
	ta := startApp(t, appOptions{redisURL: srv.URL(), prefix: "parley:"})
	ta.setupBot(t, "counter", map[string]any{"rate_limit_per_user": "100/s"}, map[string]string{"Count": counterHandler})
	ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"}).must(t, http.StatusOK)
	srv.Stop()
	r := ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"})
	if r.Status != http.StatusServiceUnavailable || r.errCode() != "unavailable" {
		t.Fatalf("turn during the outage: %d %s", r.Status, r.Raw)
	}
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = ta.say(t, "counter", map[string]any{"user": "alice", "intent": "Count"})
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after Redis came back: %d %s", r.Status, r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := firstReply(t, r); got != "count 2" {
		t.Fatalf("after the outage: %q, want count 2", got)
	}
}
