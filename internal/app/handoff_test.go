package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

const (
	// handoffFallback hands the conversation over when asked for a person,
	// and echoes otherwise.
	handoffFallback = `function handle(event, session)
  if event.text == "agent please" then
    return {text = "Connecting you", handoff = {queue = "support", reason = "asked for a person"}}
  end
  return "echo: " .. event.text
end`
	handbackHandler = `function handle(event, session) return "I'm back" end`
	handoffNotice   = "An agent will be with you shortly."
)

// telegramText is a Telegram update with a text message of chat 42.
func telegramText(update int, text string) string {
	return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"from":{"id":42,"is_bot":false,"first_name":"A"},"chat":{"id":42,"type":"private"},"date":1700000000,"text":%q}}`,
		update, update, text)
}

// handoffApp is an app with bot hbot on Telegram (its send API the fake
// platform), whose fallback hands over on "agent please", with a handback
// handler and a notice.
func handoffApp(t *testing.T, settings map[string]any) (*testApp, *fakePlatform) {
	t.Helper()
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	if settings == nil {
		settings = map[string]any{}
	}
	settings["handoff_notice"] = handoffNotice
	do(t, "PUT", ta.URL+"/v1/bots/hbot", adminKey, settings).must(t, http.StatusCreated)
	do(t, "PUT", ta.URL+"/v1/bots/hbot/channels/telegram", adminKey, map[string]string{"secret_token": telegramSecret,
		"bot_token": telegramToken, "api_base_url": fake.srv.URL}).must(t, http.StatusOK)
	do(t, "PUT", ta.URL+"/v1/bots/hbot/intents/fallback", adminKey, handoffFallback).must(t, http.StatusCreated)
	do(t, "PUT", ta.URL+"/v1/bots/hbot/intents/handback", adminKey, handbackHandler).must(t, http.StatusCreated)
	return ta, fake
}

// handoffs lists hbot's handed-off conversations.
func handoffs(t *testing.T, ta *testApp, query string) []map[string]any {
	t.Helper()
	r := do(t, "GET", ta.URL+"/v1/bots/hbot/handoffs"+query, adminKey, nil).must(t, http.StatusOK)
	var out []map[string]any
	for _, h := range r.Body["handoffs"].([]any) {
		out = append(out, h.(map[string]any))
	}
	return out
}

// waitHandoff waits until the handed-off conversation's last message is text.
func waitHandoff(t *testing.T, ta *testApp, text string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		list := handoffs(t, ta, "")
		if len(list) == 1 {
			if last, _ := list[0]["last_message"].(map[string]any); last != nil && last["text"] == text {
				return list[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no handoff with last message %q: %v", text, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandoffEndToEnd: a handler hands the conversation over; the user's
// next message runs no handler and gets the notice once; the conversation
// is listed; an agent's message reaches the platform and the transcript;
// the release runs the handback intent, and the bot answers again.
func TestHandoffEndToEnd(t *testing.T) {
	ta, fake := handoffApp(t, nil)
	hook := ta.URL + "/hooks/hbot/telegram"
	conv := ta.URL + "/v1/bots/hbot/channels/telegram/conversations/42"

	postTelegram(t, hook, telegramText(1, "hello"), telegramSecret).must(t, 200)
	fake.waitFor(t, 1)
	postTelegram(t, hook, telegramText(2, "agent please"), telegramSecret).must(t, 200)
	fake.waitFor(t, 2)
	list := handoffs(t, ta, "")
	if len(list) != 1 {
		t.Fatalf("handoffs %v, want one", list)
	}
	h := list[0]
	if h["channel"] != "telegram" || h["conversation"] != "42" || h["user"] != "42" || h["queue"] != "support" ||
		h["reason"] != "asked for a person" || h["status"] != "waiting" || h["since"] == nil || h["intent"] != "fallback" {
		t.Fatalf("handoff %v", h)
	}
	if len(handoffs(t, ta, "?queue=support")) != 1 || len(handoffs(t, ta, "?queue=billing")) != 0 {
		t.Fatal("the queue filter does not filter")
	}

	// Held: the first message gets the notice, the next none.
	postTelegram(t, hook, telegramText(3, "is anyone there?"), telegramSecret).must(t, 200)
	fake.waitFor(t, 3)
	postTelegram(t, hook, telegramText(4, "hello?"), telegramSecret).must(t, 200)
	h = waitHandoff(t, ta, "hello?")
	if last := h["last_message"].(map[string]any); last["from"] != "user" || last["time"] == nil {
		t.Fatalf("last message %v", last)
	}
	time.Sleep(300 * time.Millisecond)
	if got := fake.texts(); len(got) != 3 || got[1] != "Connecting you" || got[2] != handoffNotice {
		t.Fatalf("sent %q; want the echo, the handoff reply and the notice once", got)
	}

	// The agent writes; the first message claims the conversation.
	r := do(t, "POST", conv+"/messages", adminKey, map[string]string{"text": "Hi, Dana here", "agent": "dana"}).must(t, http.StatusOK)
	if r.Body["status"] != "active" || r.Body["agent"] != "dana" {
		t.Fatalf("after the agent's message: %s", r.Raw)
	}
	if got := fake.waitFor(t, 4); got[3] != "Hi, Dana here" {
		t.Fatalf("sent %q", got)
	}
	fake.mu.Lock()
	chat := fake.posts[len(fake.posts)-1]["chat_id"]
	fake.mu.Unlock()
	if chat != float64(42) {
		t.Fatalf("agent's message sent to chat %v", chat)
	}
	if h = handoffs(t, ta, "")[0]; h["status"] != "active" || h["agent"] != "dana" {
		t.Fatalf("listed as %v", h)
	}
	// Another agent cannot write until they claim it.
	r = do(t, "POST", conv+"/messages", adminKey, map[string]string{"text": "me too", "agent": "eve"}).must(t, http.StatusConflict)
	if r.errCode() != "claimed" {
		t.Fatalf("another agent's message: %s", r.Raw)
	}
	do(t, "POST", conv+"/claim", adminKey, map[string]string{"agent": "eve"}).must(t, http.StatusOK)
	do(t, "POST", conv+"/claim", adminKey, map[string]string{"agent": "dana"}).must(t, http.StatusOK)

	// The transcript has the held messages and the agent's.
	waitTranscript(t, ta, func(entries []any) bool {
		var held, agent bool
		for _, e := range entries {
			m := e.(map[string]any)
			held = held || (m["text"] == "hello?" && m["outcome"] == "human")
			agent = agent || (m["agent"] == "dana" && m["reply"] == "Hi, Dana here")
		}
		return held && agent
	})

	// Release: the handback intent answers, and the bot is back.
	r = do(t, "POST", conv+"/release", adminKey, nil).must(t, http.StatusOK)
	if r.Body["handback"] != "sent" || r.Body["agent"] != "dana" {
		t.Fatalf("release: %s", r.Raw)
	}
	if got := fake.waitFor(t, 5); got[4] != "I'm back" {
		t.Fatalf("sent %q", got)
	}
	if list := handoffs(t, ta, ""); len(list) != 0 {
		t.Fatalf("still listed: %v", list)
	}
	postTelegram(t, hook, telegramText(5, "hello again"), telegramSecret).must(t, 200)
	if got := fake.waitFor(t, 6); got[5] != "echo: hello again" {
		t.Fatalf("sent %q", got)
	}
	do(t, "POST", conv+"/release", adminKey, nil).must(t, http.StatusConflict)

	// Analytics count the handoff under its intent, and the release.
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := do(t, "GET", ta.URL+"/v1/bots/hbot/analytics?group_by=intent", adminKey, nil).must(t, http.StatusOK)
		totals, _ := r.Body["totals"].(map[string]any)
		var byIntent float64
		for _, g := range r.Body["groups"].([]any) {
			g := g.(map[string]any)
			if g["group"].(map[string]any)["intent"] == "fallback" {
				byIntent = g["handoffs"].(float64)
			}
		}
		if totals["handoffs"] == float64(1) && totals["releases"] == float64(1) && byIntent == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("analytics: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTranscript waits until hbot's Telegram conversation 42 has a
// transcript that ok accepts.
func waitTranscript(t *testing.T, ta *testApp, ok func(entries []any) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := do(t, "GET", ta.URL+"/v1/bots/hbot/conversations/telegram/42", adminKey, nil).must(t, http.StatusOK)
		entries, _ := r.Body["transcript"].([]any)
		if ok(entries) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transcript: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHandoffAPIRefusals: bad input and callers without the admin key.
func TestHandoffAPIRefusals(t *testing.T) {
	ta, fake := handoffApp(t, nil)
	hook := ta.URL + "/hooks/hbot/telegram"
	conv := ta.URL + "/v1/bots/hbot/channels/telegram/conversations/42"
	postTelegram(t, hook, telegramText(1, "hello"), telegramSecret).must(t, 200)
	fake.waitFor(t, 1)

	for _, tc := range []struct {
		method, path string
		token        string
		body         any
		status       int
		code         string
	}{
		{"POST", conv + "/messages", adminKey, map[string]string{"text": "hi", "agent": "dana"}, 409, "not_handed_off"},
		{"POST", conv + "/claim", adminKey, map[string]string{"agent": "dana"}, 409, "not_handed_off"},
		{"POST", conv + "/release", adminKey, nil, 409, "not_handed_off"},
		{"POST", conv + "/handoff", adminKey, map[string]string{"queue": "Support!"}, 400, "invalid"},
		{"POST", conv + "/handoff", adminKey, map[string]string{"reason": strings.Repeat("r", 501)}, 400, "invalid"},
		{"POST", conv + "/handoff", adminKey, map[string]string{"team": "x"}, 400, "bad_json"},
		{"POST", ta.URL + "/v1/bots/hbot/channels/telegram/conversations/999/handoff", adminKey, nil, 404, "conversation_not_found"},
		{"POST", ta.URL + "/v1/bots/hbot/channels/slack/conversations/42/handoff", adminKey, nil, 404, "channel_not_found"},
		{"POST", ta.URL + "/v1/bots/ghost/channels/telegram/conversations/42/handoff", adminKey, nil, 404, "bot_not_found"},
		{"GET", ta.URL + "/v1/bots/hbot/handoffs?queue=A", adminKey, nil, 400, "invalid"},
		{"GET", ta.URL + "/v1/bots/hbot/handoffs?limit=0", adminKey, nil, 400, "invalid"},
		{"GET", ta.URL + "/v1/bots/hbot/handoffs", "", nil, 401, "unauthorized"},
		{"GET", ta.URL + "/v1/bots/hbot/handoffs", telegramSecret, nil, 401, "unauthorized"},
		{"POST", conv + "/handoff", webToken, nil, 401, "unauthorized"},
		{"POST", conv + "/messages", "", map[string]string{"text": "hi", "agent": "dana"}, 401, "unauthorized"},
		{"POST", conv + "/release", telegramToken, nil, 401, "unauthorized"},
	} {
		r := do(t, tc.method, tc.path, tc.token, tc.body)
		if r.Status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s %s %v: %d %s, want %d %s", tc.method, tc.path, tc.body, r.Status, r.Raw, tc.status, tc.code)
		}
	}

	// Handed off by the API: listed, then bad agent input.
	r := do(t, "POST", conv+"/handoff", adminKey, map[string]string{"queue": "billing", "reason": "refund", "user": "42"}).must(t, http.StatusOK)
	if r.Body["queue"] != "billing" || r.Body["status"] != "waiting" {
		t.Fatalf("handoff: %s", r.Raw)
	}
	do(t, "POST", conv+"/handoff", adminKey, nil).must(t, http.StatusConflict)
	if list := handoffs(t, ta, "?queue=billing"); len(list) != 1 || list[0]["intent"] != nil {
		t.Fatalf("listed %v", list)
	}
	for _, tc := range []struct {
		body map[string]string
		want string
	}{
		{map[string]string{"text": strings.Repeat("é", 4097), "agent": "dana"}, "text is longer than 4096 characters"},
		{map[string]string{"text": "", "agent": "dana"}, "text is required"},
		{map[string]string{"text": "hi", "agent": ""}, "agent must be"},
		{map[string]string{"text": "hi", "agent": "a\nb"}, "agent must be"},
		{map[string]string{"text": "hi", "agent": strings.Repeat("a", 65)}, "agent must be"},
	} {
		r := do(t, "POST", conv+"/messages", adminKey, tc.body).must(t, http.StatusBadRequest)
		if !strings.Contains(r.Raw, tc.want) {
			t.Errorf("%v: %s, want %q", tc.body, r.Raw, tc.want)
		}
	}
	// A text of 4096 characters goes out.
	do(t, "POST", conv+"/messages", adminKey, map[string]string{"text": strings.Repeat("é", 4096), "agent": "dana"}).must(t, http.StatusOK)

	// A channel that cannot push: its agents cannot write.
	do(t, "PUT", ta.URL+"/v1/bots/hbot/channels/alexa", adminKey, map[string]string{"skill_id": "amzn1.ask.skill.test"}).must(t, http.StatusOK)
	r = do(t, "POST", ta.URL+"/v1/bots/hbot/channels/alexa/conversations/"+url.PathEscape("amzn1.ask.session.1")+"/messages", adminKey,
		map[string]string{"text": "hi", "agent": "dana"}).must(t, http.StatusConflict)
	if r.errCode() != "cannot_push" {
		t.Fatalf("voice channel: %s", r.Raw)
	}
}

// TestHandoffIdleReleasedOnce: with two replicas on one Redis, a
// handed-off conversation that stays silent is released once, and its
// handback reply sent once.
func TestHandoffIdleReleasedOnce(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startChatApp(t, url, prefix, 0)
	b := startChatApp(t, url, prefix, 0)
	fake := newFakePlatform(t)
	do(t, "PUT", a.URL+"/v1/bots/hbot", adminKey, map[string]any{"handoff_idle_timeout": "2s"}).must(t, http.StatusCreated)
	do(t, "PUT", a.URL+"/v1/bots/hbot/channels/telegram", adminKey, map[string]string{"secret_token": telegramSecret,
		"bot_token": telegramToken, "api_base_url": fake.srv.URL}).must(t, http.StatusOK)
	do(t, "PUT", a.URL+"/v1/bots/hbot/intents/fallback", adminKey, handoffFallback).must(t, http.StatusCreated)
	do(t, "PUT", a.URL+"/v1/bots/hbot/intents/handback", adminKey, handbackHandler).must(t, http.StatusCreated)

	postTelegram(t, a.URL+"/hooks/hbot/telegram", telegramText(1, "agent please"), telegramSecret).must(t, 200)
	fake.waitFor(t, 1)
	if len(handoffs(t, b, "")) != 1 {
		t.Fatal("the other replica does not list the handoff")
	}
	// A message keeps it alive for another idle timeout.
	postTelegram(t, b.URL+"/hooks/hbot/telegram", telegramText(2, "still there?"), telegramSecret).must(t, 200)
	waitHandoff(t, a, "still there?")

	got := fake.waitFor(t, 2)
	if got[1] != "I'm back" {
		t.Fatalf("sent %q", got)
	}
	if list := handoffs(t, a, ""); len(list) != 0 {
		t.Fatalf("still handed off: %v", list)
	}
	time.Sleep(3 * time.Second) // both replicas swept a few more times
	if got := fake.texts(); len(got) != 2 {
		t.Fatalf("sent %q; want the handback reply once", got)
	}
	postTelegram(t, b.URL+"/hooks/hbot/telegram", telegramText(3, "hi"), telegramSecret).must(t, 200)
	if got := fake.waitFor(t, 3); got[2] != "echo: hi" {
		t.Fatalf("sent %q", got)
	}
}

// webhookReceiver records the handoff webhook's requests whose signature
// verifies with secret, as docs/handoff.md says to verify them.
type webhookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	bad    int
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	w := &webhookReceiver{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Parley-Timestamp")
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(body)))
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		sec, err := strconv.ParseInt(ts, 10, 64)
		fresh := err == nil && math.Abs(float64(time.Now().Unix()-sec)) < 300
		w.mu.Lock()
		defer w.mu.Unlock()
		if !hmac.Equal([]byte(r.Header.Get("X-Parley-Signature")), []byte(want)) || !fresh {
			w.bad++
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		w.events = append(w.events, ev)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhookReceiver) wait(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		w.mu.Lock()
		got, bad := append([]map[string]any(nil), w.events...), w.bad
		w.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d webhook requests with a bad signature", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook got %d events, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandoffWebhook: handoffs and releases are posted, signed; a webhook
// on a private address the bot does not allow-list is never reached, and
// does not break the turn.
func TestHandoffWebhook(t *testing.T) {
	const secret = "whsec-0123456789abcdef"
	recv := newWebhookReceiver(t, secret)
	port := recv.srv.URL[strings.LastIndex(recv.srv.URL, ":")+1:]
	ta, fake := handoffApp(t, map[string]any{"handoff_webhook_url": recv.srv.URL + "/parley?team=1",
		"handoff_webhook_secret": "HANDOFF_HOOK", "http_allow": []string{"127.0.0.1:" + port}})
	do(t, "PUT", ta.URL+"/v1/bots/hbot/secrets/HANDOFF_HOOK", adminKey, map[string]any{"value": secret}).must(t, http.StatusCreated)
	// Bad settings are refused.
	for _, bad := range []map[string]any{
		{"handoff_webhook_url": "ftp://example.com/x", "handoff_webhook_secret": "HOOK"},
		{"handoff_webhook_url": "https://u:p@example.com/x", "handoff_webhook_secret": "HOOK"},
		{"handoff_webhook_url": "https://example.com/x"},
		{"handoff_webhook_secret": "lower"},
		{"handoff_idle_timeout": "0s"},
		{"handoff_idle_timeout": "ten minutes"},
		{"handoff_notice": strings.Repeat("n", 4097)},
	} {
		do(t, "PUT", ta.URL+"/v1/bots/badbot", adminKey, bad).must(t, http.StatusBadRequest)
	}

	postTelegram(t, ta.URL+"/hooks/hbot/telegram", telegramText(1, "agent please"), telegramSecret).must(t, 200)
	fake.waitFor(t, 1)
	do(t, "POST", ta.URL+"/v1/bots/hbot/channels/telegram/conversations/42/claim", adminKey, map[string]string{"agent": "dana"}).must(t, http.StatusOK)
	do(t, "POST", ta.URL+"/v1/bots/hbot/channels/telegram/conversations/42/release", adminKey, nil).must(t, http.StatusOK)
	events := recv.wait(t, 2)
	if len(events) != 2 {
		t.Fatalf("events %v", events)
	}
	byKind := map[string]map[string]any{}
	for _, e := range events {
		byKind[e["event"].(string)] = e
	}
	h, r := byKind["handoff"], byKind["release"]
	if h == nil || h["bot"] != "hbot" || h["channel"] != "telegram" || h["conversation"] != "42" || h["user"] != "42" ||
		h["queue"] != "support" || h["reason"] != "asked for a person" || h["agent"] != "" || h["time"] == nil {
		t.Fatalf("handoff event %v", h)
	}
	if r == nil || r["agent"] != "dana" || r["queue"] != "support" {
		t.Fatalf("release event %v", r)
	}

	// Not allow-listed: the webhook is refused by the egress rules (for
	// 127.0.0.1 and for a name that resolves to it); the turn answers.
	for _, host := range []string{"127.0.0.1", "localhost"} {
		do(t, "PUT", ta.URL+"/v1/bots/hbot", adminKey, map[string]any{"handoff_notice": handoffNotice,
			"handoff_webhook_url": "http://" + host + ":" + port + "/parley", "handoff_webhook_secret": "HANDOFF_HOOK"}).must(t, http.StatusOK)
		waitSetting(t, ta, "hbot", "handoff_webhook_url", "http://"+host+":"+port+"/parley")
		n := len(fake.texts())
		postTelegram(t, ta.URL+"/hooks/hbot/telegram", telegramText(10+n, "agent please"), telegramSecret).must(t, 200)
		if got := fake.waitFor(t, n+1); got[n] != "Connecting you" {
			t.Fatalf("sent %q", got)
		}
		do(t, "POST", ta.URL+"/v1/bots/hbot/channels/telegram/conversations/42/release", adminKey, nil).must(t, http.StatusOK)
		fake.waitFor(t, n+2) // the handback reply
	}
	time.Sleep(time.Second)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.events) != 2 || recv.bad != 0 {
		t.Fatalf("the webhook on a private address was reached: %v", recv.events)
	}
}

// waitSetting waits until the catalog serves a bot's setting.
func waitSetting(t *testing.T, ta *testApp, bot, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := ta.catalog.Bot(context.Background(), bot)
		if err == nil {
			raw, _ := json.Marshal(b.Settings)
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			if m[name] == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("setting %s of %s never became %q", name, bot, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandoffStaysInItsBot: a handler hands over its own conversation
// only: not another bot's with the same id, and not through a key a reply
// does not have.
func TestHandoffStaysInItsBot(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "alpha", map[string]any{"handoff_notice": handoffNotice}, map[string]string{"fallback": `function handle(e, s)
  if e.text == "steal" then return {text = "x", handoff = {queue = "q", bot = "beta"}} end
  if e.text == "agent please" then return {text = "Connecting you", handoff = {queue = "q"}} end
  return "alpha: " .. e.text
end`})
	ta.setupBot(t, "beta", nil, map[string]string{"fallback": `function handle(e, s) return "beta: " .. e.text end`})
	say := func(bot, text string) response {
		return ta.say(t, bot, map[string]any{"user": "u1", "conversation": "c1", "text": text}).must(t, http.StatusOK)
	}
	if r := say("alpha", "steal"); r.Body["outcome"] == "handled" || !strings.Contains(r.Raw, "Sorry") {
		t.Fatalf("a reply with handoff.bot: %s", r.Raw)
	}
	if got := firstReply(t, say("alpha", "agent please")); got != "Connecting you" {
		t.Fatalf("alpha answered %q", got)
	}
	if r := say("alpha", "hello"); firstReply(t, r) != handoffNotice {
		t.Fatalf("held message: %s", r.Raw)
	}
	if r := say("alpha", "hello"); len(r.Body["replies"].([]any)) != 0 {
		t.Fatalf("second held message answered: %s", r.Raw)
	}
	if got := firstReply(t, say("beta", "hello")); got != "beta: hello" {
		t.Fatalf("beta answered %q", got)
	}
	r := do(t, "GET", ta.URL+"/v1/bots/beta/handoffs", adminKey, nil).must(t, http.StatusOK)
	if r.Body["total"] != float64(0) {
		t.Fatalf("beta's handoffs: %s", r.Raw)
	}
	r = do(t, "GET", ta.URL+"/v1/bots/alpha/handoffs", adminKey, nil).must(t, http.StatusOK)
	if r.Body["total"] != float64(1) {
		t.Fatalf("alpha's handoffs: %s", r.Raw)
	}
}

// TestHandoffHoldsSchedules: a schedule's runs to a handed-off
// conversation push nothing and do not count as the user's messages.
func TestHandoffHoldsSchedules(t *testing.T) {
	ta, fake := handoffApp(t, nil)
	do(t, "PUT", ta.URL+"/v1/bots/hbot/intents/Ping", adminKey, `function handle(e, s) return "ping" end`).must(t, http.StatusCreated)
	postTelegram(t, ta.URL+"/hooks/hbot/telegram", telegramText(1, "agent please"), telegramSecret).must(t, 200)
	fake.waitFor(t, 1)
	postTelegram(t, ta.URL+"/hooks/hbot/telegram", telegramText(2, "waiting"), telegramSecret).must(t, 200)
	waitHandoff(t, ta, "waiting")
	fake.waitFor(t, 2) // the notice

	do(t, "PUT", ta.URL+"/v1/bots/hbot/schedules/ping", adminKey, map[string]any{"cron": "@every 1s", "intent": "Ping",
		"targets": []map[string]string{{"channel": "telegram", "conversation": "42"}}}).must(t, http.StatusOK)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := do(t, "GET", ta.URL+"/v1/bots/hbot/schedules", adminKey, nil).must(t, http.StatusOK)
		if runs, _ := r.Body["runs"].([]any); len(runs) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedule did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	do(t, "DELETE", ta.URL+"/v1/bots/hbot/schedules/ping", adminKey, nil).must(t, http.StatusNoContent)
	if got := fake.texts(); len(got) != 2 {
		t.Fatalf("sent %q; the schedule pushed while a person owns the conversation", got)
	}
	if h := handoffs(t, ta, ""); len(h) != 1 || h[0]["last_message"].(map[string]any)["text"] != "waiting" {
		t.Fatalf("handoff %v", h)
	}
}

// TestHandoffWebEndToEnd: on the web channel, the agent's message and the
// handback reply reach the conversation's outbox, which the user's live
// connections read.
func TestHandoffWebEndToEnd(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "wbot", map[string]any{"handoff_notice": handoffNotice},
		map[string]string{"fallback": handoffFallback, "handback": handbackHandler})
	say := func(text string) response {
		return ta.say(t, "wbot", map[string]any{"user": "u1", "conversation": "c1", "text": text}).must(t, http.StatusOK)
	}
	if got := firstReply(t, say("agent please")); got != "Connecting you" {
		t.Fatalf("answered %q", got)
	}
	if got := firstReply(t, say("hello")); got != handoffNotice {
		t.Fatalf("answered %q", got)
	}
	if r := say("still there?"); len(r.Body["replies"].([]any)) != 0 || r.Body["intent"] != nil && r.Body["intent"] != "" {
		t.Fatalf("held message answered: %s", r.Raw)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := ta.outbox.Follow(ctx, "wbot", "c1", "0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next := func() string {
		t.Helper()
		entries, err := f.Next(ctx)
		if err != nil || len(entries) != 1 {
			t.Fatalf("outbox: %d entries, %v", len(entries), err)
		}
		var ans struct {
			Replies []struct {
				Text string `json:"text"`
			} `json:"replies"`
		}
		if err := json.Unmarshal(entries[0].Data, &ans); err != nil || len(ans.Replies) != 1 {
			t.Fatalf("outbox entry %s: %v", entries[0].Data, err)
		}
		return ans.Replies[0].Text
	}
	conv := ta.URL + "/v1/bots/wbot/channels/web/conversations/c1"
	do(t, "POST", conv+"/messages", adminKey, map[string]string{"text": "Hi, Dana here", "agent": "dana"}).must(t, http.StatusOK)
	if got := next(); got != "Hi, Dana here" {
		t.Fatalf("pushed %q", got)
	}
	if r := do(t, "POST", conv+"/release", adminKey, nil).must(t, http.StatusOK); r.Body["handback"] != "sent" {
		t.Fatalf("release: %s", r.Raw)
	}
	if got := next(); got != "I'm back" {
		t.Fatalf("pushed %q", got)
	}
	if got := firstReply(t, say("hello again")); got != "echo: hello again" {
		t.Fatalf("answered %q", got)
	}
}
