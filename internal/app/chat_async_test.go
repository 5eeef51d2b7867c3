package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/line"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/internal/testredis"
)

// startQueueApp starts an app on the test Redis whose queue polls and
// rebalances quickly.
func startQueueApp(t *testing.T) *testApp {
	t.Helper()
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.QueueLease, cfg.QueuePoll, cfg.QueuePartitions = 400*time.Millisecond, 10*time.Millisecond, 4
	ta := serveApp(t, cfg, testLogger(t))
	return ta
}

// waitCalls waits until the fake API got n calls and returns them.
func waitCalls(t *testing.T, api *metatest.API, n int) []metatest.Call {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		calls := api.Calls()
		if len(calls) >= n {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("the platform got %d calls, want %d", len(calls), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quiet checks that no call beyond n arrives for a while.
func quiet(t *testing.T, api *metatest.API, n int) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if calls := api.Calls(); len(calls) != n {
		t.Fatalf("the platform got %d calls, want %d: %+v", len(calls), n, calls)
	}
}

func postMeta(t *testing.T, target, secret, body string) response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if secret != "" {
		h.Set(meta.SignatureHeader, meta.Signature(secret, []byte(body)))
	}
	start := time.Now()
	r := chatPost(t, http.MethodPost, target, h, []byte(body))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the webhook took %s to be acknowledged", d)
	}
	return r
}

func messengerText(mid, psid, text string) string {
	return fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE_ID","time":1700000000000,"messaging":[{"sender":{"id":%q},"recipient":{"id":"PAGE_ID"},"timestamp":1700000000000,"message":{"mid":%q,"text":%q}}]}]}`,
		psid, mid, text)
}

// TestMessengerEndToEnd: the subscription handshake; a signed message is
// acknowledged at once, runs the handler from the queue and is answered
// through the Send API with quick replies; the same mid delivered three
// times is answered once; a 429 from the Send API is retried after its
// Retry-After; an unsigned request gets 401.
func TestMessengerEndToEnd(t *testing.T) {
	ta := startQueueApp(t)
	ta.setupBot(t, "pizzabot", nil, map[string]string{"fallback": chatCounter})
	api := metatest.New(t)
	const secret = "messenger-app-secret"
	ta.connectChat(t, "pizzabot", "messenger", map[string]string{"app_secret": secret, "verify_token": "hamhock",
		"access_token": "EAAG-page-token", "api_base_url": api.URL + "/v21.0"})
	target := ta.URL + "/hooks/pizzabot/messenger"

	r := chatPost(t, http.MethodGet, target+"?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=hamhock", nil, nil).must(t, http.StatusOK)
	if r.Raw != "1158201444" {
		t.Fatalf("handshake = %q", r.Raw)
	}
	chatPost(t, http.MethodGet, target+"?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong", nil, nil).must(t, http.StatusForbidden)

	body := messengerText("mid.1", "PSID_1", "hello")
	for range 3 {
		postMeta(t, target, secret, body).must(t, http.StatusOK)
	}
	calls := waitCalls(t, api, 1)
	quiet(t, api, 1)
	c := calls[0]
	if c.Path != "/v21.0/me/messages" || c.Header.Get("Authorization") != "Bearer EAAG-page-token" {
		t.Fatalf("call = %s %v", c.Path, c.Header)
	}
	var sent struct {
		Recipient struct{ ID string }
		Message   struct {
			Text         string
			QuickReplies []struct{ Payload string } `json:"quick_replies"`
		}
	}
	if err := json.Unmarshal(c.Body, &sent); err != nil || sent.Recipient.ID != "PSID_1" || sent.Message.Text != "heard hello #1" ||
		len(sent.Message.QuickReplies) != 2 {
		t.Fatalf("sent %s", c.Body)
	}

	// The Send API is rate limited once: the reply goes out after Retry-After.
	api.SetStatus(http.StatusTooManyRequests)
	api.SetHeader("Retry-After", "1")
	postMeta(t, target, secret, messengerText("mid.2", "PSID_1", "Large")).must(t, http.StatusOK)
	waitCalls(t, api, 2)
	api.SetStatus(http.StatusOK)
	calls = waitCalls(t, api, 3)
	if !strings.Contains(string(calls[2].Body), "heard Large #2") {
		t.Fatalf("retried send = %s", calls[2].Body)
	}

	postMeta(t, target, "", messengerText("mid.3", "PSID_1", "x")).must(t, http.StatusUnauthorized)
	postMeta(t, target, "other-secret", messengerText("mid.3", "PSID_1", "x")).must(t, http.StatusUnauthorized)
	quiet(t, api, 3)
}

// TestWhatsAppEndToEnd: a text message is answered with reply buttons
// through the Cloud API; statuses are acknowledged and ignored.
func TestWhatsAppEndToEnd(t *testing.T) {
	ta := startQueueApp(t)
	ta.setupBot(t, "pizzabot", nil, map[string]string{"fallback": chatCounter})
	api := metatest.New(t)
	const secret = "whatsapp-app-secret"
	ta.connectChat(t, "pizzabot", "whatsapp", map[string]string{"app_secret": secret, "verify_token": "hamhock",
		"access_token": "EAAG-system-token", "phone_number_id": "106540352242922", "api_base_url": api.URL})
	target := ta.URL + "/hooks/pizzabot/whatsapp"
	msg := `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.E2E1","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},"field":"messages"}]}]}`
	postMeta(t, target, secret, msg).must(t, http.StatusOK)
	postMeta(t, target, secret, msg).must(t, http.StatusOK) // a redelivery
	status := `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.SENT","status":"read","timestamp":"1749416395","recipient_id":"16505551234"}]},"field":"messages"}]}]}`
	postMeta(t, target, secret, status).must(t, http.StatusOK)
	calls := waitCalls(t, api, 1)
	quiet(t, api, 1)
	var sent struct {
		To          string
		Type        string
		Interactive struct {
			Type string
			Body struct{ Text string }
		}
	}
	if err := json.Unmarshal(calls[0].Body, &sent); err != nil || calls[0].Path != "/106540352242922/messages" || sent.To != "16505551234" ||
		sent.Type != "interactive" || sent.Interactive.Type != "button" || sent.Interactive.Body.Text != "heard Does it come in another color? #1" {
		t.Fatalf("sent %s %s", calls[0].Path, calls[0].Body)
	}
}

// TestLINEEndToEnd: the console's Verify request is acknowledged; a message
// is answered with its reply token and quick replies; a redelivery of the
// same webhookEventId does not run the handler again.
func TestLINEEndToEnd(t *testing.T) {
	ta := startQueueApp(t)
	ta.setupBot(t, "pizzabot", nil, map[string]string{"fallback": chatCounter})
	api := metatest.New(t)
	const secret = "line-channel-secret"
	ta.connectChat(t, "pizzabot", "line", map[string]string{"channel_secret": secret,
		"channel_access_token": "line-access-token", "api_base_url": api.URL})
	target := ta.URL + "/hooks/pizzabot/line"
	post := func(body, sec string) response {
		h := http.Header{"Content-Type": {"application/json"}}
		if sec != "" {
			h.Set(line.SignatureHeader, line.Signature(sec, []byte(body)))
		}
		return chatPost(t, http.MethodPost, target, h, []byte(body))
	}
	post(`{"destination":"U0","events":[]}`, secret).must(t, http.StatusOK)
	post(`{"destination":"U0","events":[]}`, "wrong").must(t, http.StatusUnauthorized)

	event := func(redelivery bool) string {
		return fmt.Sprintf(`{"destination":"U0","events":[{"replyToken":"nHuyWiB7yP5Zw52FIkcQobQuGDXCTA","type":"message","mode":"active","timestamp":%d,"source":{"type":"user","userId":"U4af4980629"},"webhookEventId":"01FZ74A0TDDPYRVKNK77XKC3ZR","deliveryContext":{"isRedelivery":%v},"message":{"id":"444573844083572737","type":"text","quoteToken":"q","text":"Hello, world"}}]}`,
			time.Now().UnixMilli(), redelivery)
	}
	post(event(false), secret).must(t, http.StatusOK)
	post(event(true), secret).must(t, http.StatusOK)
	calls := waitCalls(t, api, 1)
	quiet(t, api, 1)
	var sent line.ReplyRequest
	if err := json.Unmarshal(calls[0].Body, &sent); err != nil || calls[0].Path != "/v2/bot/message/reply" ||
		sent.ReplyToken != "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA" || len(sent.Messages) != 1 ||
		sent.Messages[0].Text != "heard Hello, world #1" || sent.Messages[0].QuickReply == nil {
		t.Fatalf("sent %s %s", calls[0].Path, calls[0].Body)
	}
	if got := calls[0].Header.Get("Authorization"); got != "Bearer line-access-token" {
		t.Fatalf("authorization = %q", got)
	}
}
