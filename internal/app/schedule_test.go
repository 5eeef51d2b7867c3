package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// TestSchedulesRunOnceAcrossReplicas lets a every-second schedule fire for a
// few seconds on two replicas sharing Redis: every fire time runs exactly
// once, each run is a turn of the schedule's own conversation, and each is
// in the invocation log.
func TestSchedulesRunOnceAcrossReplicas(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "b", nil, map[string]string{"Count": counterHandler})

	do(t, "PUT", a.URL+"/v1/bots/b/schedules/tick", adminKey, map[string]any{"cron": "@every 1s", "intent": "Count"}).must(t, http.StatusOK)
	do(t, "PUT", a.URL+"/v1/bots/b/schedules/bad", adminKey, map[string]any{"cron": "every second", "intent": "Count"}).must(t, http.StatusBadRequest)
	do(t, "PUT", a.URL+"/v1/bots/ghost/schedules/tick", adminKey, map[string]any{"cron": "@daily", "intent": "Count"}).must(t, http.StatusNotFound)
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"cron": "TZ=0", "intent": "Count"}, `give the time zone in \"timezone\"`},
		{map[string]any{"cron": "CRON_TZ=Europe/Berlin 0 9 * * *", "intent": "Count"}, `give the time zone in \"timezone\"`},
		{map[string]any{"cron": "@daily", "timezone": "Mars/Olympus", "intent": "Count"}, `unknown timezone \"Mars/Olympus\"`},
		{map[string]any{"cron": "@daily", "intent": "Nope"}, `bot b has no handler for intent \"Nope\"`},
		{map[string]any{"cron": "@every 500ms", "intent": "Count"}, `must be at least 1s`},
	} {
		r := do(t, "PUT", a.URL+"/v1/bots/b/schedules/bad", adminKey, tc.body).must(t, http.StatusBadRequest)
		if !strings.Contains(r.Raw, tc.want) {
			t.Errorf("PUT %v: %s; want %s", tc.body, r.Raw, tc.want)
		}
	}
	if r := do(t, "GET", a.URL+"/v1/bots/b/schedules/tick", adminKey, nil).must(t, http.StatusOK); r.Body["schedule"].(map[string]any)["next_run"] == nil {
		t.Errorf("no next_run: %s", r.Raw)
	}

	deadline := time.Now().Add(15 * time.Second)
	var runs []any
	for time.Now().Before(deadline) {
		r := do(t, "GET", b.URL+"/v1/bots/b/schedules", adminKey, nil).must(t, http.StatusOK)
		runs, _ = r.Body["runs"].([]any)
		if len(runs) >= 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	do(t, "DELETE", a.URL+"/v1/bots/b/schedules/tick", adminKey, nil).must(t, http.StatusNoContent)
	time.Sleep(1500 * time.Millisecond) // runs already claimed finish

	r := do(t, "GET", b.URL+"/v1/bots/b/schedules", adminKey, nil).must(t, http.StatusOK)
	runs, _ = r.Body["runs"].([]any)
	if len(runs) < 3 {
		t.Fatalf("only %d schedule runs in 15s: %s", len(runs), r.Raw)
	}
	fires := map[string]bool{}
	for _, run := range runs {
		fire := run.(map[string]any)["fire"].(string)
		if fires[fire] {
			t.Fatalf("fire time %s ran twice: %s", fire, r.Raw)
		}
		fires[fire] = true
	}
	conv := do(t, "GET", a.URL+"/v1/bots/b/conversations/schedule/schedule:tick", adminKey, nil).must(t, http.StatusOK)
	count := conv.Body["state"].(map[string]any)["data"].(map[string]any)["count"]
	if count != float64(len(runs)) {
		t.Fatalf("handler ran %v times for %d recorded runs", count, len(runs))
	}
	// Each run is in the invocation log, under the schedule's conversation.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := do(t, "GET", b.URL+"/v1/bots/b/logs?intent=Count&limit=100", adminKey, nil).must(t, http.StatusOK)
		logged := 0
		invs, _ := r.Body["invocations"].([]any)
		for _, inv := range invs {
			if e := inv.(map[string]any); e["conversation"] == "schedule:tick" && e["outcome"] == "ok" {
				logged++
			}
		}
		if logged == len(runs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scheduled runs in the invocation log, want %d: %s", logged, len(runs), r.Raw)
		}
	}
}

// TestScheduledSMSPush: a schedule targeting a Twilio SMS conversation runs
// the handler in that conversation and pushes its reply through the
// Messages API (a local fake), from the configured number.
func TestScheduledSMSPush(t *testing.T) {
	type message struct{ path, user, to, from, body string }
	got := make(chan message, 16)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		_ = r.ParseForm() // a malformed form is recorded empty
		got <- message{r.URL.Path, user, r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM00000000000000000000000000000000"}`)
	}))
	defer api.Close()

	ta := startRedisApp(t)
	ta.setupBot(t, "remind", nil, map[string]string{"Remind": `function handle(e, s)
  s.n = (s.n or 0) + 1
  return "Reminder #" .. s.n .. " for " .. e.user
end`})
	const sid = "AC0123456789abcdef0123456789abcdef"
	ta.connectChat(t, "remind", "twilio", map[string]string{"auth_token": "0123456789abcdef0123456789abcdef",
		"account_sid": sid, "from": "+15005550006", "api_base_url": api.URL})
	do(t, "PUT", ta.URL+"/v1/bots/remind/schedules/daily", adminKey, map[string]any{"cron": "@every 1s", "intent": "Remind",
		"targets": []map[string]string{{"channel": "twilio", "conversation": "+14155551234"}}}).must(t, http.StatusOK)
	defer do(t, "DELETE", ta.URL+"/v1/bots/remind/schedules/daily", adminKey, nil)

	select {
	case m := <-got:
		want := message{"/2010-04-01/Accounts/" + sid + "/Messages.json", sid, "+14155551234", "+15005550006", "Reminder #1 for +14155551234"}
		if m != want {
			t.Fatalf("pushed %+v, want %+v", m, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message pushed within 10 s")
	}
}

// TestScheduledDiscordPush: a schedule whose target is a Discord channel
// posts the handler's reply there with the bot token.
func TestScheduledDiscordPush(t *testing.T) {
	type message struct{ path, auth, body string }
	got := make(chan message, 16)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- message{r.URL.Path, r.Header.Get("Authorization"), string(b)}
		_, _ = io.WriteString(w, `{"id":"1400000000000000004"}`)
	}))
	defer api.Close()

	ta := startRedisApp(t)
	ta.setupBot(t, "remind", nil, map[string]string{"Remind": `function handle(e, s)
  return {text = "Standup in 5 minutes", options = {"Join"}}
end`})
	ta.connectChat(t, "remind", "discord", map[string]string{
		"public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
		"bot_token":  "MTIz.secret.token", "api_base_url": api.URL + "/api/v10"})
	r := do(t, "GET", ta.URL+"/v1/bots/remind/channels/discord", adminKey, nil).must(t, http.StatusOK)
	if settings, _ := r.Body["settings"].(map[string]any); settings["bot_token"] != "***" {
		t.Errorf("the channel's settings are shown as %v", r.Body["settings"])
	}
	do(t, "PUT", ta.URL+"/v1/bots/remind/schedules/standup", adminKey, map[string]any{"cron": "@every 1s", "intent": "Remind",
		"targets": []map[string]string{{"channel": "discord", "conversation": "1100000000000000001"}}}).must(t, http.StatusOK)
	defer do(t, "DELETE", ta.URL+"/v1/bots/remind/schedules/standup", adminKey, nil)

	select {
	case m := <-got:
		if m.path != "/api/v10/channels/1100000000000000001/messages" || m.auth != "Bot MTIz.secret.token" {
			t.Fatalf("pushed to %s with %q", m.path, m.auth)
		}
		var body struct {
			Content    string `json:"content"`
			Components []struct {
				Type       int `json:"type"`
				Components []struct {
					Type     int    `json:"type"`
					Label    string `json:"label"`
					CustomID string `json:"custom_id"`
				} `json:"components"`
			} `json:"components"`
			Nonce        string `json:"nonce"`
			EnforceNonce bool   `json:"enforce_nonce"`
		}
		if err := json.Unmarshal([]byte(m.body), &body); err != nil {
			t.Fatal(err)
		}
		if body.Content != "Standup in 5 minutes" || len(body.Components) != 1 || len(body.Components[0].Components) != 1 ||
			body.Components[0].Components[0].Label != "Join" || body.Nonce == "" || !body.EnforceNonce {
			t.Fatalf("pushed %s", m.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message pushed within 10 s")
	}
}
