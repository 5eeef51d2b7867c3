package app

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/discord"
	"github.com/parleyhq/parley/channels/twilio"
)

// chatCounter answers every message with what it heard and a turn count, so
// a retry that ran the handler twice would show.
const chatCounter = `function handle(event, session)
  session.n = (session.n or 0) + 1
  return {text = "heard " .. event.text .. " #" .. session.n, options = {"Small", "Large"}}
end`

// chatOrder answers the /order slash command from its slots.
const chatOrder = `function handle(event, session)
  session.n = (session.n or 0) + 1
  return {text = "ordering a " .. (event.slots.size or "?") .. " pizza #" .. session.n, options = {"Confirm"}}
end`

// chatPost posts a webhook with the given headers and returns the answer
// as received.
func chatPost(t *testing.T, method, target string, header http.Header, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
}

// connectChat connects a channel with settings to an existing bot.
func (ta *testApp) connectChat(t *testing.T, bot, channel string, settings map[string]string) {
	t.Helper()
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/channels/"+channel, adminKey, settings).must(t, http.StatusOK)
}

// TestTwilioSMSEndToEnd: a signed SMS webhook runs the Lua handler and gets
// its answer as TwiML in the same response; the same MessageSid sent three
// times runs the handler once; unsigned requests and status callbacks never
// reach it.
func TestTwilioSMSEndToEnd(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "pizzabot", nil, map[string]string{"fallback": chatCounter})
	const token = "0123456789abcdef0123456789abcdef"
	webhook := ta.URL + "/hooks/pizzabot/twilio"
	ta.connectChat(t, "pizzabot", "twilio", map[string]string{"auth_token": token,
		"account_sid": "AC00000000000000000000000000000000", "webhook_url": webhook})

	sms := func(sid, text string) url.Values {
		return url.Values{"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "SmsStatus": {"received"},
			"AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+14155551234"}, "To": {"+15005550006"},
			"Body": {text}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"}}
	}
	post := func(form url.Values, sig string) response {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if sig != "" {
			h.Set(twilio.SignatureHeader, sig)
		}
		return chatPost(t, http.MethodPost, webhook, h, []byte(form.Encode()))
	}
	first := sms("SM11111111111111111111111111111111", "Hello bot")
	var answers []string
	for range 3 {
		r := post(first, twilio.Signature(token, webhook, first)).must(t, http.StatusOK)
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/xml") {
			t.Fatalf("content type %q", r.Header.Get("Content-Type"))
		}
		answers = append(answers, r.Raw)
	}
	const want = `<?xml version="1.0" encoding="UTF-8"?><Response><Message>heard Hello bot #1` + "\n• Small\n• Large</Message></Response>"
	if answers[0] != want || answers[1] != want || answers[2] != want {
		t.Fatalf("answers = %q, want three times %q", answers, want)
	}
	next := sms("SM22222222222222222222222222222222", "Large")
	r := post(next, twilio.Signature(token, webhook, next)).must(t, http.StatusOK)
	if !strings.Contains(r.Raw, "heard Large #2") {
		t.Fatalf("the next message = %s (a retry must not have run the handler)", r.Raw)
	}

	// Refused before any handler runs.
	post(next, "").must(t, http.StatusUnauthorized)
	post(next, twilio.Signature("another-token-0123456789abcdef00", webhook, next)).must(t, http.StatusUnauthorized)
	// A status callback is acknowledged with empty TwiML.
	status := url.Values{"MessageSid": {"SM33333333333333333333333333333333"}, "MessageStatus": {"delivered"},
		"SmsStatus": {"delivered"}, "AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+15005550006"}, "To": {"+14155551234"}}
	r = post(status, twilio.Signature(token, webhook, status)).must(t, http.StatusOK)
	if !strings.HasSuffix(r.Raw, "<Response/>") {
		t.Fatalf("status callback = %s", r.Raw)
	}
	third := sms("SM44444444444444444444444444444444", "again")
	if r := post(third, twilio.Signature(token, webhook, third)).must(t, http.StatusOK); !strings.Contains(r.Raw, "#3") {
		t.Fatalf("after the refused requests = %s, want turn 3", r.Raw)
	}
}

// TestTwilioSignatureWithoutWebhookURL: with no webhook_url configured the
// signed URL is rebuilt from the request: the Host the platform called (https
// assumed, as Twilio requires it in production), or the host and scheme in
// X-Forwarded-Host and X-Forwarded-Proto, but only from a proxy listed in
// PARLEY_TRUSTED_PROXIES: from anyone else those headers would let the
// caller choose the URL the signature is checked against.
func TestTwilioSignatureWithoutWebhookURL(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		cfg := testConfig(t, appOptions{})
		if trusted {
			cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		}
		ta := serveApp(t, cfg, testLogger(t))
		ta.setupBot(t, "pizzabot", nil, map[string]string{"fallback": chatCounter})
		const token = "0123456789abcdef0123456789abcdef"
		ta.connectChat(t, "pizzabot", "twilio", map[string]string{"auth_token": token})
		hook := ta.URL + "/hooks/pizzabot/twilio"
		host := strings.TrimPrefix(ta.URL, "http://")
		form := func(sid string) url.Values {
			return url.Values{"MessageSid": {sid}, "SmsStatus": {"received"}, "AccountSid": {"AC00000000000000000000000000000000"},
				"From": {"+14155551234"}, "To": {"+15005550006"}, "Body": {"hi"}, "NumMedia": {"0"}}
		}
		post := func(f url.Values, signedURL string, extra http.Header) response {
			h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			for k, v := range extra {
				h[k] = v
			}
			h.Set(twilio.SignatureHeader, twilio.Signature(token, signedURL, f))
			return chatPost(t, http.MethodPost, hook, h, []byte(f.Encode()))
		}
		direct := form("SM55555555555555555555555555555555")
		post(direct, "https://"+host+"/hooks/pizzabot/twilio", nil).must(t, http.StatusOK)
		proxied := form("SM66666666666666666666666666666666")
		fwd := http.Header{"X-Forwarded-Host": {"bots.example.com"}, "X-Forwarded-Proto": {"https"}}
		want := http.StatusUnauthorized
		if trusted {
			want = http.StatusOK
		}
		if r := post(proxied, "https://bots.example.com/hooks/pizzabot/twilio", fwd); r.Status != want {
			t.Errorf("trusted proxies %v: forwarded request answered %d, want %d (%s)", trusted, r.Status, want, r.Raw)
		}
		// Signed for a different host: refused.
		other := form("SM77777777777777777777777777777777")
		post(other, "https://elsewhere.example.com/hooks/pizzabot/twilio", nil).must(t, http.StatusUnauthorized)
	}
}

// TestDiscordEndToEnd: PING is answered with PONG; a signed slash command
// runs the command's Lua handler and gets an interaction response with
// buttons; a button press comes back as text; the same interaction id runs
// the handler once; a bad signature gets 401.
func TestDiscordEndToEnd(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "pizzabot", nil, map[string]string{"order": chatOrder, "fallback": chatCounter})
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ta.connectChat(t, "pizzabot", "discord", map[string]string{
		"public_key": hex.EncodeToString(key.Public().(ed25519.PublicKey)), "application_id": "1200000000000000001"})
	target := ta.URL + "/hooks/pizzabot/discord"
	post := func(body string, priv ed25519.PrivateKey) response {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		h := http.Header{"Content-Type": {"application/json"}}
		h.Set(discord.TimestampHeader, ts)
		h.Set(discord.SignatureHeader, hex.EncodeToString(ed25519.Sign(priv, []byte(ts+body))))
		start := time.Now()
		r := chatPost(t, http.MethodPost, target, h, []byte(body))
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the interaction took %s, over Discord's 3 s", d)
		}
		return r
	}
	decode := func(r response) (typ int, content string, buttons []string) {
		t.Helper()
		var out struct {
			Type int `json:"type"`
			Data struct {
				Content    string `json:"content"`
				Components []struct {
					Components []struct {
						CustomID string `json:"custom_id"`
					} `json:"components"`
				} `json:"components"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(r.Raw), &out); err != nil {
			t.Fatalf("answer %q: %v", r.Raw, err)
		}
		for _, row := range out.Data.Components {
			for _, b := range row.Components {
				buttons = append(buttons, b.CustomID)
			}
		}
		return out.Type, out.Data.Content, buttons
	}

	if r := post(`{"id":"1200000000000010000","application_id":"1200000000000000001","token":"t","type":1,"version":1}`, key).must(t, http.StatusOK); r.Raw != `{"type":1}` {
		t.Fatalf("PING = %s", r.Raw)
	}
	command := `{"id":"1200000000000010001","application_id":"1200000000000000001","channel_id":"1200000000000000010","guild_id":"1","locale":"en-US","member":{"user":{"id":"1200000000000100000","username":"ada"}},"data":{"id":"9","name":"order","type":1,"options":[{"name":"size","type":3,"value":"large"}]},"token":"t","type":2,"version":1}`
	var raws []string
	for range 3 {
		r := post(command, key).must(t, http.StatusOK)
		raws = append(raws, r.Raw)
	}
	typ, content, buttons := decode(response{Raw: raws[0]})
	if typ != 4 || content != "ordering a large pizza #1" || len(buttons) != 1 || buttons[0] != "o:Confirm" {
		t.Fatalf("command answer = %s", raws[0])
	}
	if raws[1] != raws[0] || raws[2] != raws[0] {
		t.Fatalf("the repeated interaction was answered differently: %q", raws)
	}
	press := `{"id":"1200000000000010002","application_id":"1200000000000000001","channel_id":"1200000000000000010","member":{"user":{"id":"1200000000000100000"}},"data":{"component_type":2,"custom_id":"o:Confirm"},"token":"t","type":3,"version":1}`
	if _, content, _ := decode(post(press, key).must(t, http.StatusOK)); content != "heard Confirm #2" {
		t.Fatalf("button press = %q (one conversation per channel, the command ran once)", content)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	post(press, other).must(t, http.StatusUnauthorized)
}
