package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/slack"
	"github.com/parleyhq/parley/channels/telegram"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

const (
	slackSecret    = "slack-signing-secret-0123"
	slackToken     = "xoxb-slack-bot-token-0123"
	telegramSecret = "telegram_secret-0123"
	telegramToken  = "123456:telegram-bot-token"
	echoHandler    = `function handle(event, session)
  session.n = (session.n or 0) + 1
  return {text = "echo: " .. event.text .. " #" .. session.n, options = {"Yes", "No"}}
end`
)

// fakePlatform is a chat platform's send API: it records each message sent
// and answers like the platform. A request its client gave up on before the
// answer (delay) is not counted, as a platform would not have posted it.
type fakePlatform struct {
	srv   *httptest.Server
	delay time.Duration

	mu     sync.Mutex
	posts  []map[string]any
	status int // when set, the answer's HTTP status
	body   string
	gate   chan struct{} // when set, requests wait until it is closed
}

// hold makes new requests wait until the returned function is called.
func (f *fakePlatform) hold() (release func()) {
	g := make(chan struct{})
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.gate = nil
		f.mu.Unlock()
		close(g)
	}
}

func newFakePlatform(t *testing.T) *fakePlatform {
	f := &fakePlatform{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		gate := f.gate
		f.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
			// A sender that gave up while held closed its connection
			// before the gate opened, but on a busy machine the server
			// may not have noticed yet: give it a generous moment, so an
			// abandoned send is never taken for an accepted one. (Held
			// sends that are still alive just arrive a second later.)
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			}
		}
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-r.Context().Done():
				return
			}
		}
		f.mu.Lock()
		status, body := f.status, f.body
		if status == 0 {
			var m map[string]any
			_ = json.Unmarshal(raw, &m) // a body that is not JSON is recorded empty
			m["path"] = r.URL.Path
			m["authorization"] = r.Header.Get("Authorization")
			f.posts = append(f.posts, m)
		}
		f.mu.Unlock()
		if status == 0 {
			status, body = http.StatusOK, `{"ok":true,"result":{}}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePlatform) fail(status int, body string) {
	f.mu.Lock()
	f.status, f.body = status, body
	f.mu.Unlock()
}

// texts are the texts posted, in order, with their paths' last element.
func (f *fakePlatform) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.posts {
		if t, ok := p["text"].(string); ok {
			out = append(out, t)
		}
	}
	return out
}

func (f *fakePlatform) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := f.texts()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the platform got %d messages, want %d: %q", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startChatApp starts an app on the test Redis with fast queue leases and polls.
func startChatApp(t *testing.T, redisURL, prefix string, drain time.Duration) *testApp {
	t.Helper()
	cfg := testConfig(t, appOptions{redisURL: redisURL, prefix: prefix})
	cfg.QueueLease, cfg.QueuePoll, cfg.QueuePartitions = time.Second, 10*time.Millisecond, 8
	if drain > 0 {
		cfg.ShutdownTimeout = drain
	}
	ta := serveApp(t, cfg, testLogger(t))
	return ta
}

func (ta *testApp) setupChatBot(t *testing.T, bot, channel string, settings map[string]string) {
	t.Helper()
	do(t, "PUT", ta.URL+"/v1/bots/"+bot, adminKey, map[string]any{}).must(t, http.StatusCreated)
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/channels/"+channel, adminKey, settings).must(t, http.StatusOK)
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/intents/fallback", adminKey, echoHandler).must(t, http.StatusCreated)
}

// postSlack posts a body signed as Slack signs it.
func postSlack(t *testing.T, url, contentType, body, secret string, retry int) response {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", slack.Signature(secret, ts, []byte(body)))
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return send(t, req)
}

func postTelegram(t *testing.T, url, body, secret string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(telegram.SecretHeader, secret)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the webhook took %s, over Slack's 3 s", d)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
}

func slackMessage(eventID, channel, user, text string) string {
	return fmt.Sprintf(`{"token":"x","team_id":"T1","api_app_id":"A1","event":{"type":"message","channel":%q,"user":%q,"text":%q,"ts":"1.%s","channel_type":"im"},"type":"event_callback","event_id":%q,"event_time":1700000000,"authorizations":[{"user_id":"UBOT","is_bot":true}]}`,
		channel, user, text, eventID, eventID)
}

// TestSlackEndToEnd: handshake, verification, a message answered through
// chat.postMessage, a retried delivery answered once, a button click.
func TestSlackEndToEnd(t *testing.T) {
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	ta.setupChatBot(t, "sbot", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	hook := ta.URL + "/hooks/sbot/slack"

	r := postSlack(t, hook, "application/json", `{"token":"x","challenge":"chal-123","type":"url_verification"}`, slackSecret, 0)
	if r.Status != 200 || r.Raw != "chal-123" {
		t.Fatalf("url_verification: %d %q", r.Status, r.Raw)
	}
	if r := postSlack(t, hook, "application/json", slackMessage("Ev1", "D1", "U1", "hello"), "wrong-secret", 0); r.Status != 401 {
		t.Fatalf("bad signature: %d %s", r.Status, r.Raw)
	}

	// The same delivery three times (Slack's retries) runs the handler once.
	for retry := range 3 {
		if r := postSlack(t, hook, "application/json", slackMessage("Ev1", "D1", "U1", "hello"), slackSecret, retry); r.Status != 200 {
			t.Fatalf("delivery %d: %d %s", retry, r.Status, r.Raw)
		}
	}
	got := fake.waitFor(t, 1)
	fake.mu.Lock()
	post := fake.posts[0]
	fake.mu.Unlock()
	if got[0] != "echo: hello #1" || post["channel"] != "D1" || post["path"] != "/api/chat.postMessage" ||
		post["authorization"] != "Bearer "+slackToken || post["blocks"] == nil {
		t.Fatalf("posted %v", post)
	}

	// A click on a button comes back as the option's text.
	payload := `{"type":"block_actions","user":{"id":"U1"},"trigger_id":"trig-1","channel":{"id":"D1"},"container":{"channel_id":"D1"},"actions":[{"action_id":"parley_option_0","value":"Yes","type":"button"}]}`
	if r := postSlack(t, hook, "application/x-www-form-urlencoded", "payload="+urlQueryEscape(payload), slackSecret, 0); r.Status != 200 {
		t.Fatalf("click: %d %s", r.Status, r.Raw)
	}
	fake.waitFor(t, 2)
	time.Sleep(100 * time.Millisecond)
	if got = fake.texts(); len(got) != 2 || got[1] != "echo: Yes #2" {
		t.Fatalf("posted %q (the retries must not run the handler again)", got)
	}

	// The bot's own message never triggers it.
	own := `{"token":"x","team_id":"T1","event":{"type":"message","channel":"D1","user":"UBOT","bot_id":"B1","text":"echo: Yes #2","ts":"9.9","channel_type":"im"},"type":"event_callback","event_id":"EvOwn","event_time":1700000000}`
	postSlack(t, hook, "application/json", own, slackSecret, 0).must(t, 200)

	// Secrets are never returned by the API.
	info := do(t, "GET", ta.URL+"/v1/bots/sbot/channels/slack", adminKey, nil).must(t, 200)
	if strings.Contains(info.Raw, slackToken) || strings.Contains(info.Raw, slackSecret) {
		t.Fatalf("the API shows a secret: %s", info.Raw)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(fake.texts()); n != 2 {
		t.Fatalf("%d posts, want 2", n)
	}
}

func urlQueryEscape(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "+", "%2B", "=", "%3D", " ", "%20", "#", "%23").Replace(s)
}

// TestTelegramEndToEnd: verification, a message answered with sendMessage
// and an inline keyboard, a repeated update answered once, a click answered.
func TestTelegramEndToEnd(t *testing.T) {
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	ta.setupChatBot(t, "tbot", "telegram", map[string]string{"secret_token": telegramSecret, "bot_token": telegramToken,
		"api_base_url": fake.srv.URL})
	hook := ta.URL + "/hooks/tbot/telegram"
	msg := `{"update_id":500,"message":{"message_id":1,"from":{"id":42,"is_bot":false,"first_name":"A"},"chat":{"id":42,"type":"private"},"date":1700000000,"text":"hello"}}`

	if r := postTelegram(t, hook, msg, ""); r.Status != 401 {
		t.Fatalf("missing secret: %d", r.Status)
	}
	if r := postTelegram(t, hook, msg, "wrong"); r.Status != 401 {
		t.Fatalf("wrong secret: %d", r.Status)
	}
	for range 3 {
		postTelegram(t, hook, msg, telegramSecret).must(t, 200)
	}
	fake.waitFor(t, 1)
	click := `{"update_id":501,"callback_query":{"id":"cq1","from":{"id":42,"is_bot":false},"message":{"message_id":2,"chat":{"id":42,"type":"private"},"date":1700000001,"text":"echo"},"data":"Yes"}}`
	postTelegram(t, hook, click, telegramSecret).must(t, 200)
	edited := `{"update_id":502,"edited_message":{"message_id":1,"from":{"id":42,"is_bot":false},"chat":{"id":42,"type":"private"},"date":1700000000,"text":"hello!"}}`
	postTelegram(t, hook, edited, telegramSecret).must(t, 200)

	fake.waitFor(t, 2)
	time.Sleep(100 * time.Millisecond)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	var paths []string
	for _, p := range fake.posts {
		paths = append(paths, strings.Replace(p["path"].(string), telegramToken, "TOKEN", 1))
	}
	want := []string{"/botTOKEN/sendMessage", "/botTOKEN/answerCallbackQuery", "/botTOKEN/sendMessage"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("calls %v, want %v", paths, want)
	}
	if got := fake.textsLocked(); len(got) != 2 || got[0] != "echo: hello #1" || got[1] != "echo: Yes #2" {
		t.Fatalf("sent %q", got)
	}
	if kb, _ := fake.posts[0]["reply_markup"].(map[string]any); kb["inline_keyboard"] == nil {
		t.Fatalf("no inline keyboard in %v", fake.posts[0])
	}
}

func (f *fakePlatform) textsLocked() []string {
	var out []string
	for _, p := range f.posts {
		if t, ok := p["text"].(string); ok {
			out = append(out, t)
		}
	}
	return out
}

// TestDeadLettersAPI: a send the platform refuses for good goes to the dead
// letters; the API lists it, replays it once the platform accepts, and
// deletes.
func TestDeadLettersAPI(t *testing.T) {
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	ta.setupChatBot(t, "dbot", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	hook := ta.URL + "/hooks/dbot/slack"
	list := ta.URL + "/v1/bots/dbot/deadletters"

	fake.fail(http.StatusOK, `{"ok":false,"error":"not_in_channel"}`)
	postSlack(t, hook, "application/json", slackMessage("EvD", "C9", "U1", "hi"), slackSecret, 0).must(t, 200)
	var dl []any
	deadline := time.Now().Add(10 * time.Second)
	for len(dl) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		dl, _ = do(t, "GET", list, adminKey, nil).must(t, 200).Body["deadletters"].([]any)
	}
	if len(dl) != 1 {
		t.Fatalf("dead letters: %v", dl)
	}
	d := dl[0].(map[string]any)
	if d["stage"] != "send" || !strings.Contains(d["error"].(string), "not_in_channel") {
		t.Fatalf("dead letter %v", d)
	}
	id := d["id"].(string)

	fake.fail(0, "")
	do(t, "POST", list+"/"+id+"/replay", adminKey, nil).must(t, http.StatusAccepted)
	if got := fake.waitFor(t, 1); got[0] != "echo: hi #1" {
		t.Fatalf("replayed %q (the turn must not run twice)", got)
	}
	if dl, _ = do(t, "GET", list, adminKey, nil).must(t, 200).Body["deadletters"].([]any); len(dl) != 0 {
		t.Fatalf("still dead: %v", dl)
	}
	do(t, "POST", list+"/"+id+"/replay", adminKey, nil).must(t, http.StatusNotFound)
	do(t, "DELETE", list+"/"+id, adminKey, nil).must(t, http.StatusNotFound)
	do(t, "DELETE", list+"/bogus", adminKey, nil).must(t, http.StatusNotFound)
	do(t, "GET", ta.URL+"/v1/bots/nobot/deadletters", adminKey, nil).must(t, http.StatusNotFound)
	do(t, "GET", list, "", nil).must(t, http.StatusUnauthorized)

	// Erasing a user removes the user's dead letters too.
	fake.fail(http.StatusOK, `{"ok":false,"error":"not_in_channel"}`)
	postSlack(t, hook, "application/json", slackMessage("EvE", "C8", "U2", "call me at 555-0100"), slackSecret, 0).must(t, 200)
	for deadline := time.Now().Add(10 * time.Second); len(dl) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		dl, _ = do(t, "GET", list, adminKey, nil).must(t, 200).Body["deadletters"].([]any)
	}
	if len(dl) != 1 {
		t.Fatalf("dead letters before the erasure: %v", dl)
	}
	er := do(t, "DELETE", ta.URL+"/v1/bots/dbot/users/U2", adminKey, nil).must(t, http.StatusOK).Body
	if removed, _ := er["removed"].(map[string]any); removed["dead_letters"] != float64(1) {
		t.Errorf("erasure %v, want one dead letter removed", er)
	}
	if dl, _ = do(t, "GET", list, adminKey, nil).must(t, 200).Body["deadletters"].([]any); len(dl) != 0 {
		t.Fatalf("dead letters after the erasure: %v", dl)
	}
}

// partition cuts a replica off Redis, as if its process died: every command
// fails from the moment it is set.
type partition struct{ dead atomic.Bool }

var errKilled = errors.New("replica killed")

func (p *partition) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *partition) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if p.dead.Load() {
			cmd.SetErr(errKilled)
			return errKilled
		}
		return next(ctx, cmd)
	}
}
func (p *partition) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if p.dead.Load() {
			for _, c := range cmds {
				c.SetErr(errKilled)
			}
			return errKilled
		}
		return next(ctx, cmds)
	}
}

// TestReplicaKilledMidTurnLosesNothing: two replicas share Redis; one is
// killed (cut off Redis, its workers stopped without acknowledging anything)
// while messages are in flight. Every message is answered exactly once at the
// platform, in order per conversation.
func TestReplicaKilledMidTurnLosesNothing(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startChatApp(t, url, prefix, time.Millisecond) // abandons in-flight work at once when stopped
	b := startChatApp(t, url, prefix, 0)
	fake := newFakePlatform(t)
	fake.delay = 15 * time.Millisecond
	a.setupChatBot(t, "kbot", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	cut := &partition{}
	a.store.Client().AddHook(cut)
	a.queueConn.Client().AddHook(cut)
	// Let the replicas settle on four partitions each before the traffic.
	rdb := b.store.Client()
	deadline := time.Now().Add(10 * time.Second)
	for {
		owners := map[string]int{}
		for p := range 8 {
			owners[rdb.Get(context.Background(), fmt.Sprintf("%sq:{p%d}:lease", prefix, p)).Val()]++
		}
		if len(owners) == 2 && owners[""] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions never split between the replicas: %v", owners)
		}
		time.Sleep(20 * time.Millisecond)
	}

	const convs, per = 8, 10
	msg := func(c, i int) string {
		return slackMessage(fmt.Sprintf("E%d-%d", c, i), fmt.Sprintf("D%d", c), "U1", fmt.Sprintf("m%d", i))
	}
	// Half the messages, through both replicas.
	for i := range per / 2 {
		for c := range convs {
			target := a
			if (c+i)%2 == 1 {
				target = b
			}
			postSlack(t, target.URL+"/hooks/kbot/slack", "application/json", msg(c, i), slackSecret, 0).must(t, 200)
		}
	}
	fake.waitFor(t, 5) // work is under way on both replicas
	// Kill A while its sends are in flight and not yet accepted by the
	// platform: hold new sends at the platform, let those already accepted
	// finish, then cut A off Redis and stop its workers. A acknowledges
	// nothing more; its held sends are abandoned.
	release := fake.hold()
	time.Sleep(100 * time.Millisecond)
	cut.dead.Store(true)
	a.cutOff = true
	a.stop()
	release()
	// The rest (and a Slack-style retry of every earlier delivery) through the survivor.
	for i := range per {
		for c := range convs {
			postSlack(t, b.URL+"/hooks/kbot/slack", "application/json", msg(c, i), slackSecret, 1).must(t, 200)
		}
	}
	fake.waitFor(t, convs*per)
	time.Sleep(300 * time.Millisecond)
	fake.mu.Lock()
	byConv := map[string][]string{}
	for _, p := range fake.posts {
		byConv[p["channel"].(string)] = append(byConv[p["channel"].(string)], p["text"].(string))
	}
	fake.mu.Unlock()
	for c := range convs {
		texts := byConv[fmt.Sprintf("D%d", c)]
		if len(texts) != per {
			t.Errorf("conversation D%d got %d answers, want %d: %q", c, len(texts), per, texts)
			continue
		}
		for i, txt := range texts {
			if want := fmt.Sprintf("echo: m%d #%d", i, i+1); txt != want {
				t.Errorf("conversation D%d answer %d = %q, want %q (all: %q)", c, i, txt, want, texts)
				break
			}
		}
	}
}

// benchApp starts one replica with the production queue settings.
func benchApp(b *testing.B) (*testApp, *fakePlatform, chan string) {
	url := testredis.URL(b)
	cfg, err := loadBenchConfig(url, testredis.Prefix(b), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ta := serveApp(b, cfg, testLoggerB())

	got := make(chan string, 1<<16)
	fake := &fakePlatform{}
	fake.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m) // a body that is not JSON is recorded empty
		txt, _ := m["text"].(string)
		got <- txt
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(fake.srv.Close)
	return ta, fake, got
}

func testLoggerB() *slog.Logger { return slog.New(slog.DiscardHandler) }

func loadBenchConfig(redisURL, prefix, dir string) (config.Config, error) {
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=" + adminKey, secretKeyEnv, "PARLEY_SNAPSHOT_INTERVAL=1h"})
	cfg.RedisURL, cfg.KeyPrefix, cfg.DataDir = redisURL, prefix, dir
	return cfg, err
}

func benchBot(b *testing.B, ta *testApp, fake *fakePlatform) {
	put := func(path string, body any, status int) {
		raw, _ := json.Marshal(body)
		if s, ok := body.(string); ok {
			raw = []byte(s)
		}
		req, _ := http.NewRequest("PUT", ta.URL+path, strings.NewReader(string(raw)))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != status {
			b.Fatalf("PUT %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	put("/v1/bots/bench", map[string]any{}, http.StatusCreated)
	put("/v1/bots/bench/channels/slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"}, http.StatusOK)
	put("/v1/bots/bench/channels/web", map[string]string{"token": webToken}, http.StatusOK)
	put("/v1/bots/bench/intents/fallback", echoHandler, http.StatusCreated)
}

func postSlackB(b *testing.B, url, body string) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", slack.Signature(slackSecret, ts, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("webhook: %d", resp.StatusCode)
	}
}

// BenchmarkAsyncTurnLatency: one message at a time, from the Slack webhook
// to the reply arriving at the (fake) platform, through the queue.
func BenchmarkAsyncTurnLatency(b *testing.B) {
	ta, fake, got := benchApp(b)
	benchBot(b, ta, fake)
	hook := ta.URL + "/hooks/bench/slack"
	postSlackB(b, hook, slackMessage("warm", "D0", "U1", "warm"))
	<-got
	b.ResetTimer()
	for i := range b.N {
		postSlackB(b, hook, slackMessage(fmt.Sprint("L", i), "D1", "U1", "hi"))
		<-got
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/turn")
}

// BenchmarkSyncWebTurnLatency: the same handler over the web channel, which
// answers in the response: the baseline for the queue's added latency.
func BenchmarkSyncWebTurnLatency(b *testing.B) {
	ta, fake, _ := benchApp(b)
	benchBot(b, ta, fake)
	hook := ta.URL + "/hooks/bench/web"
	post := func(id string) {
		req, _ := http.NewRequest("POST", hook, strings.NewReader(`{"user":"u1","text":"hi","id":"`+id+`"}`))
		req.Header.Set("Authorization", "Bearer "+webToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("web turn: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	post("warm")
	b.ResetTimer()
	for i := range b.N {
		post(fmt.Sprint("W", i))
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/turn")
}

// BenchmarkAsyncTurnThroughput: 16 clients post Slack messages in 64
// conversations; the figure is replies arriving at the platform per second.
func BenchmarkAsyncTurnThroughput(b *testing.B) {
	ta, fake, got := benchApp(b)
	benchBot(b, ta, fake)
	hook := ta.URL + "/hooks/bench/slack"
	postSlackB(b, hook, slackMessage("warm", "D0", "U1", "warm"))
	<-got
	var n atomic.Int64
	b.SetParallelism(8) // 8 x GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			postSlackB(b, hook, slackMessage(fmt.Sprint("T", i), fmt.Sprint("D", i%64), "U1", "hi"))
		}
	})
	for range b.N {
		<-got
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
}
