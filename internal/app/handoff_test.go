package app

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
