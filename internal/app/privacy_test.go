package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// rememberer answers with what the conversation heard last and keeps what
// it hears now (and who said it) in its session, so a turn that reached
// another conversation's session would show it.
const rememberer = `function handle(event, session)
  local before = session.last or "nothing"
  session.last = event.text
  session.who = event.user
  return {text = "before: " .. before}
end`

const (
	twilioToken   = "0123456789abcdef0123456789abcdef"
	twilioAccount = "AC00000000000000000000000000000000"
)

// postSMS posts a signed Twilio SMS webhook and returns the TwiML answer.
func postSMS(t *testing.T, webhook, sid, from, text string) response {
	t.Helper()
	form := url.Values{"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "SmsStatus": {"received"},
		"AccountSid": {twilioAccount}, "From": {from}, "To": {"+15005550006"}, "Body": {text}, "NumMedia": {"0"},
		"ApiVersion": {"2010-04-01"}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
		twilio.SignatureHeader: {twilio.Signature(twilioToken, webhook, form)}}
	return chatPost(t, http.MethodPost, webhook, h, []byte(form.Encode()))
}

// TestWebCannotReachAnotherChannelsConversation: a web caller naming an SMS
// conversation's id gets a conversation of its own, never the SMS session;
// the API shows each under its channel.
func TestWebCannotReachAnotherChannelsConversation(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "bank", nil, map[string]string{"fallback": rememberer})
	webhook := ta.URL + "/hooks/bank/twilio"
	ta.connectChat(t, "bank", "twilio", map[string]string{"auth_token": twilioToken, "account_sid": twilioAccount,
		"webhook_url": webhook})

	if r := postSMS(t, webhook, "SM00000000000000000000000000000001", "+15550077", "my bank PIN is 9999").must(t, 200); !strings.Contains(r.Raw, "before: nothing") {
		t.Fatalf("first SMS answered %s", r.Raw)
	}
	r := ta.say(t, "bank", map[string]any{"user": "mallory", "conversation": "+15550077", "text": "what did I say?"}).must(t, 200)
	if got := firstReply(t, r); got != "before: nothing" || strings.Contains(r.Raw, "9999") {
		t.Fatalf("the web caller reached the SMS conversation: %s", r.Raw)
	}
	if r.Body["conversation"] != "+15550077" {
		t.Errorf("the web answer names conversation %v, want the id as sent", r.Body["conversation"])
	}
	// The SMS conversation goes on where it was.
	if r := postSMS(t, webhook, "SM00000000000000000000000000000002", "+15550077", "and now?").must(t, 200); !strings.Contains(r.Raw, "before: my bank PIN is 9999") {
		t.Fatalf("the SMS conversation lost its state: %s", r.Raw)
	}

	// The API addresses a conversation by channel and platform id.
	sms := do(t, "GET", ta.URL+"/v1/bots/bank/conversations/twilio/%2B15550077", adminKey, nil).must(t, 200).Body
	web := do(t, "GET", ta.URL+"/v1/bots/bank/conversations/web/%2B15550077", adminKey, nil).must(t, 200).Body
	smsData, _ := path(sms, "state", "data").(map[string]any)
	webData, _ := path(web, "state", "data").(map[string]any)
	if sms["channel"] != "twilio" || sms["conversation"] != "+15550077" || smsData["last"] != "and now?" {
		t.Errorf("the SMS conversation %v", sms)
	}
	if web["channel"] != "web" || webData["last"] != "what did I say?" || webData["who"] != "mallory" {
		t.Errorf("the web conversation %v", web)
	}
	if r := do(t, "GET", ta.URL+"/v1/bots/bank/conversations/%2B15550077", adminKey, nil); r.Status != http.StatusBadRequest || r.errCode() != "channel_required" {
		t.Errorf("a conversation without its channel: %d %s", r.Status, r.Raw)
	}
}

// TestSensitiveAnswerRememberedBriefly: the answer of a turn a handler
// marked sensitive is remembered for a retry of its message for minutes,
// not a day; an ordinary answer for a day.
func TestSensitiveAnswerRememberedBriefly(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "vault", nil, map[string]string{"fallback": `function handle(event, session)
  if event.text == "pin" then return {text = "your PIN is 4321", sensitive = true} end
  return {text = "hello"}
end`})
	for _, m := range []struct{ id, text string }{{"msg-sensitive-1", "pin"}, {"msg-plain-1", "hi"}} {
		ta.say(t, "vault", map[string]any{"user": "u1", "id": m.id, "text": m.text}).must(t, 200)
	}
	// A retry within the window gets the same answer without running the handler.
	if r := ta.say(t, "vault", map[string]any{"user": "u1", "id": "msg-sensitive-1", "text": "pin"}).must(t, 200); firstReply(t, r) != "your PIN is 4321" {
		t.Fatalf("retry answered %s", r.Raw)
	}
	ctx := context.Background()
	rdb := ta.store.Client()
	ttl := func(id string) time.Duration {
		t.Helper()
		keys := testredis.Keys(t, rdb, ta.cfg.KeyPrefix+"*:msg:"+id)
		if len(keys) != 1 {
			t.Fatalf("marker of %s: %v", id, keys)
		}
		return rdb.PTTL(ctx, keys[0]).Val()
	}
	if d := ttl("msg-sensitive-1"); d <= 0 || d > 5*time.Minute {
		t.Errorf("the sensitive answer is remembered for %s, want at most 5 minutes", d)
	}
	if d := ttl("msg-plain-1"); d < 23*time.Hour {
		t.Errorf("an ordinary answer is remembered for %s, want a day", d)
	}
}

// TestIDsInPathsArePercentEncoded: user and conversation ids with "/",
// "%", spaces and non-ASCII letters are addressed percent-encoded; a
// trailing slash is not redirected to another id.
func TestIDsInPathsArePercentEncoded(t *testing.T) {
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.AnalyticsFlushInterval = 50 * time.Millisecond // erasures wait two of them for other replicas
	ta := serveApp(t, cfg, testLogger(t))
	ta.setupBot(t, "ids", nil, map[string]string{"fallback": rememberer})
	ids := []string{"abc", "abc/", "a/b", "100%", "with space", "ünï/😀", "x%2Fy"}
	for _, id := range ids {
		ta.say(t, "ids", map[string]any{"user": id, "text": "from " + id}).must(t, 200)
	}
	for _, id := range ids {
		r := do(t, "GET", ta.URL+"/v1/bots/ids/conversations/web/"+url.PathEscape(id), adminKey, nil).must(t, 200)
		if data, _ := path(r.Body, "state", "data").(map[string]any); data["who"] != id || r.Body["conversation"] != id {
			t.Errorf("conversation %q: %s", id, r.Raw)
		}
	}
	// Neither cleaned nor redirected: an unencoded slash is no route.
	for _, p := range []string{"/v1/bots/ids/users/abc/", "/v1/bots/ids/users//abc", "/v1/bots/ids/users/a/b"} {
		req, _ := http.NewRequest("DELETE", ta.URL+p, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if r := do(t, "GET", ta.URL+"/v1/bots/ids/conversations/web/abc", adminKey, nil).must(t, 200); r.Body["active"] != true {
		t.Fatalf("abc was touched: %s", r.Raw)
	}
	for _, id := range ids {
		er := do(t, "DELETE", ta.URL+"/v1/bots/ids/users/"+url.PathEscape(id), adminKey, nil).must(t, 200).Body
		convs, _ := er["conversations"].([]any)
		if er["user"] != id || len(convs) != 1 || path(convs, 0, "conversation") != id || path(er, "removed", "sessions") != float64(1) {
			t.Errorf("erasure of %q: %v", id, er)
		}
		if r := do(t, "GET", ta.URL+"/v1/bots/ids/conversations/web/"+url.PathEscape(id), adminKey, nil).must(t, 200); r.Body["active"] != false {
			t.Errorf("%q survived its erasure: %s", id, r.Raw)
		}
	}
}

// Ids of the erasure scenario: distinctive, so that finding one in the
// store means something of the user was kept.
const (
	eraseWebUser   = "carol-erase-7q"
	eraseTicket    = "support-ticket-9q7"
	erasePhone     = "+15550199477"
	eraseTgUser    = "4242424242"
	eraseTgGroup   = "-4242424243"
	eraseOtherUser = "dave-keeps-3z"
)

// TestErasureLeavesNothing: a user's data on the web channel (two
// conversations, one not named after the user), on Twilio SMS and on
// Telegram (answered, parked behind a rate limit, dead-lettered) is all
// gone after erasing each of the user's ids, with analytics on and off,
// on the embedded store and on Redis: no key or value in the store names
// the user, a conversation or what they said. Another user's data stays.
func TestErasureLeavesNothing(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		for _, analytics := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/analytics=%v", backend, analytics), func(t *testing.T) {
				cfg := testConfig(t, appOptions{})
				if backend == "redis" {
					cfg = testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
				}
				cfg.Analytics = analytics
				cfg.QueueLease, cfg.QueuePoll, cfg.QueuePartitions = time.Second, 10*time.Millisecond, 4
				cfg.AnalyticsFlushInterval = 100 * time.Millisecond
				eraseScenario(t, serveApp(t, cfg, testLogger(t)))
			})
		}
	}
}

func eraseScenario(t *testing.T, ta *testApp) {
	fake := newFakePlatform(t)
	ta.setupBot(t, "shop", map[string]any{"rate_limit_per_user": "1/m"}, map[string]string{"fallback": rememberer})
	sms := ta.URL + "/hooks/shop/twilio"
	ta.connectChat(t, "shop", "twilio", map[string]string{"auth_token": twilioToken, "account_sid": twilioAccount, "webhook_url": sms})
	ta.connectChat(t, "shop", "telegram", map[string]string{"secret_token": telegramSecret, "bot_token": telegramToken,
		"api_base_url": fake.srv.URL})
	tg := ta.URL + "/hooks/shop/telegram"
	tgMessage := func(update int, chat, text string) string {
		return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"from":{"id":%s,"is_bot":false,"first_name":"C"},"chat":{"id":%s,"type":"private"},"date":1700000000,"text":%q}}`,
			update, update, eraseTgUser, chat, text)
	}

	// Web: the user's own conversation and a support ticket; another user.
	ta.say(t, "shop", map[string]any{"user": eraseWebUser, "id": "web-msg-1", "text": "carol secret web text"}).must(t, 200)
	ta.say(t, "shop", map[string]any{"user": eraseWebUser, "conversation": eraseTicket, "id": "web-msg-2", "text": "carol ticket text"}).must(t, 200)
	ta.say(t, "shop", map[string]any{"user": eraseOtherUser, "text": "dave text"}).must(t, 200)
	// SMS.
	postSMS(t, sms, "SM00000000000000000000000000000077", erasePhone, "carol sms text").must(t, 200)
	// Telegram: a dead letter (the platform refuses the reply for good) in a group...
	fake.fail(http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
	postTelegram(t, tg, strings.Replace(tgMessage(9001, eraseTgGroup, "carol dead letter text"), `"private"`, `"group"`, 1), telegramSecret).must(t, 200)
	var dead []any
	for deadline := time.Now().Add(10 * time.Second); len(dead) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		dead, _ = do(t, "GET", ta.URL+"/v1/bots/shop/deadletters", adminKey, nil).must(t, 200).Body["deadletters"].([]any)
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters %v", dead)
	}
	fake.fail(0, "")
	// ...then the private chat: one answered, two parked behind the per-user limit.
	for i, text := range []string{"carol telegram text", "carol parked text 1", "carol parked text 2"} {
		postTelegram(t, tg, tgMessage(9100+i, eraseTgUser, text), telegramSecret).must(t, 200)
	}
	fake.waitFor(t, 1)
	var parked []any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		parked, _ = do(t, "GET", ta.URL+"/v1/bots/shop/parked", adminKey, nil).must(t, 200).Body["parked"].([]any)
		if len(parked) == 1 && path(parked, 0, "entries") == float64(2) {
			break
		}
	}
	if len(parked) != 1 || path(parked, 0, "entries") != float64(2) {
		t.Fatalf("parked %v", parked)
	}
	flush(t, ta)
	ta.invocations.Flush(context.Background())
	secrets := []string{eraseWebUser, eraseTicket, strings.TrimPrefix(erasePhone, "+"), eraseTgUser, strings.TrimPrefix(eraseTgGroup, "-"), "carol"}
	if found := storeMentions(t, ta, secrets); len(found) == 0 {
		t.Fatal("the scenario stored nothing of the user: the check below would prove nothing")
	}

	erase := func(user string) map[string]any {
		t.Helper()
		return do(t, "DELETE", ta.URL+"/v1/bots/shop/users/"+url.PathEscape(user), adminKey, nil).must(t, 200).Body
	}
	web := erase(eraseWebUser)
	if convs, _ := web["conversations"].([]any); len(convs) != 2 || path(web, "removed", "sessions") != float64(2) ||
		path(web, "removed", "histories") != float64(2) || path(web, "removed", "remembered_answers") != float64(2) {
		t.Errorf("web erasure %v, want 2 conversations, sessions, histories and answers", web)
	}
	phone := erase(erasePhone)
	if convs, _ := phone["conversations"].([]any); len(convs) != 1 || path(convs, 0, "channel") != "twilio" ||
		path(phone, "removed", "sessions") != float64(1) || path(phone, "removed", "remembered_answers") != float64(1) {
		t.Errorf("SMS erasure %v", phone)
	}
	tgr := erase(eraseTgUser)
	// The group's turn ran (its reply failed) and the private chat's.
	if path(tgr, "removed", "parked") != float64(2) || path(tgr, "removed", "dead_letters") != float64(1) ||
		path(tgr, "removed", "sessions") != float64(2) {
		t.Errorf("Telegram erasure %v, want 2 parked, 1 dead letter, 2 sessions", tgr)
	}
	if analyticsOn := ta.cfg.Analytics; analyticsOn {
		if path(web, "removed", "transcripts") != float64(2) {
			t.Errorf("web erasure %v, want 2 transcripts", web)
		}
	}
	for _, er := range []map[string]any{web, phone, tgr} {
		removed, _ := er["removed"].(map[string]any)
		for _, kind := range []string{"sessions", "histories", "remembered_answers", "transcripts", "conversation_records",
			"fallback_utterances", "user_indexes", "parked", "dead_letters", "invocation_logs"} {
			if _, ok := removed[kind]; !ok {
				t.Errorf("the receipt %v does not count %s", er, kind)
			}
		}
	}

	// Nothing of the user is left, and nothing comes back: the parked
	// messages never run, and no reply goes out after the erasure.
	time.Sleep(300 * time.Millisecond)
	flush(t, ta)
	ta.invocations.Flush(context.Background())
	if found := storeMentions(t, ta, secrets); len(found) > 0 {
		t.Errorf("after the erasure the store still names the user:\n%s", strings.Join(found, "\n"))
	}
	if got := fake.texts(); len(got) != 1 {
		t.Errorf("the platform got %q, want only the answer before the erasure", got)
	}
	if r := do(t, "GET", ta.URL+"/v1/bots/shop/conversations/web/"+eraseOtherUser, adminKey, nil).must(t, 200); r.Body["active"] != true {
		t.Errorf("another user's conversation was erased: %s", r.Raw)
	}
	// The user is welcome back: a new message starts afresh (in a new
	// conversation: the old one's rate limit, which names no one, holds).
	if r := ta.say(t, "shop", map[string]any{"user": eraseWebUser, "conversation": "fresh", "text": "hello again"}).must(t, 200); firstReply(t, r) != "before: nothing" {
		t.Errorf("after the erasure: %s", r.Raw)
	}
}

// storeMentions lists the keys under the app's prefix whose name or value
// contains one of the needles. HyperLogLogs (unique-user estimates) are
// not read: they keep registers, no ids.
func storeMentions(t *testing.T, ta *testApp, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	rdb := ta.store.Client()
	var keys []string
	iter := rdb.Scan(ctx, 0, ta.cfg.KeyPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var found []string
	for _, k := range keys {
		val := dumpValue(ctx, rdb, k)
		for _, n := range needles {
			if strings.Contains(k, n) || strings.Contains(val, n) {
				found = append(found, fmt.Sprintf("%s (%s): %.300s", k, n, val))
				break
			}
		}
	}
	return found
}

func dumpValue(ctx context.Context, rdb redis.UniversalClient, key string) string {
	switch rdb.Type(ctx, key).Val() {
	case "string":
		v := rdb.Get(ctx, key).Val()
		if strings.HasPrefix(v, "HYLL") {
			return ""
		}
		return v
	case "list":
		return strings.Join(rdb.LRange(ctx, key, 0, -1).Val(), "\n")
	case "set":
		return strings.Join(rdb.SMembers(ctx, key).Val(), "\n")
	case "zset":
		return strings.Join(rdb.ZRange(ctx, key, 0, -1).Val(), "\n")
	case "hash":
		return fmt.Sprint(rdb.HGetAll(ctx, key).Val())
	case "stream":
		return fmt.Sprint(rdb.XRange(ctx, key, "-", "+").Val())
	}
	return ""
}
