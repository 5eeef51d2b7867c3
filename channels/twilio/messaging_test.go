package twilio

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
	"github.com/twilio/twilio-go/twiml"
)

const (
	msgToken   = "12345678901234567890123456789012"
	accountSID = "AC00000000000000000000000000000000"
	hookURL    = "https://bots.example.com/hooks/pizzabot/twilio"
)

func msgSettings() channels.Settings {
	return channels.Settings{SettingAuthToken: msgToken, SettingAccountSID: accountSID, SettingWebhookURL: hookURL}
}

// post is a POST as Twilio sends it to hookURL, signed.
func post(t testing.TB, body string) *channels.Request {
	params, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set(SignatureHeader, Signature(msgToken, hookURL, params))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/twilio"},
		Header: h, Body: []byte(body), Settings: msgSettings(), Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// TestMessagingVectors: the protocol notes' SMS and WhatsApp samples,
// signed for their URLs with the token "12345", pass the adapter.
func TestMessagingVectors(t *testing.T) {
	for _, tt := range []struct{ file, url, sig string }{
		{"sms.form", "https://example.com/twilio/sms", "RB6XpL756xdIskINhuMqTmdjjjQ="},
		{"whatsapp.form", "https://example.com/twilio/whatsapp", "i4L+ljXh44nZAmShLLN+LAIlH8M="},
	} {
		body := golden.Read(t, tt.file)
		h := http.Header{}
		h.Set(SignatureHeader, tt.sig)
		req := &channels.Request{Method: http.MethodPost, URL: &url.URL{Path: "/hooks/b/twilio"}, Header: h, Body: body,
			Settings: channels.Settings{SettingAuthToken: "12345", SettingWebhookURL: tt.url}}
		if _, err := New(Config{}).Parse(req); err != nil {
			t.Errorf("%s: %v", tt.file, err)
		}
		req.Settings[SettingWebhookURL] = tt.url + "x"
		if _, err := New(Config{}).Parse(req); !isStatus(err, http.StatusUnauthorized) {
			t.Errorf("%s under another URL: err = %v, want 401", tt.file, err)
		}
	}
}

func isStatus(err error, status int) bool {
	var ce *channels.Error
	return errors.As(err, &ce) && ce.Status == status
}

func TestMessagingRefusesBadRequests(t *testing.T) {
	body := string(golden.Read(t, "sms.form"))
	a := New(Config{})
	for name, mutate := range map[string]func(*channels.Request){
		"no signature":     func(r *channels.Request) { r.Header.Del(SignatureHeader) },
		"changed body":     func(r *channels.Request) { r.Body = []byte(strings.Replace(body, "Hello", "Bye", 1)) },
		"added parameter":  func(r *channels.Request) { r.Body = append(r.Body, "&Extra=1"...) },
		"other token":      func(r *channels.Request) { r.Settings[SettingAuthToken] = strings.Repeat("9", 32) },
		"other account":    func(r *channels.Request) { r.Settings[SettingAccountSID] = "AC" + strings.Repeat("1", 32) },
		"no URL, no host":  func(r *channels.Request) { delete(r.Settings, SettingWebhookURL) },
		"signed for query": func(r *channels.Request) { r.Settings[SettingWebhookURL] = hookURL + "?a=1" },
	} {
		req := post(t, body)
		mutate(req)
		if _, err := a.Parse(req); !isStatus(err, http.StatusUnauthorized) {
			t.Errorf("%s: err = %v, want 401", name, err)
		}
	}
	req := post(t, body)
	req.Method = http.MethodPut
	if _, err := a.Parse(req); !isStatus(err, http.StatusMethodNotAllowed) {
		t.Errorf("PUT: err = %v", err)
	}
}

// TestWebhookURLDefault: without webhook_url the signed URL is rebuilt from
// the request, through a proxy's X-Forwarded headers; Twilio's port quirk and
// a connection-override fragment are tolerated.
func TestWebhookURLDefault(t *testing.T) {
	body := string(golden.Read(t, "sms.form"))
	params, _ := url.ParseQuery(body)
	a := New(Config{})
	forged := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example"}
	tests := []struct {
		name, signedURL, setting string
		header                   map[string]string
		scheme, host             string // of the URL the gateway reports
		ok                       bool
	}{
		{"the gateway's URL", "https://bots.example.com/hooks/pizzabot/twilio?x=1", "", nil, "https", "bots.example.com", true},
		{"plain http", "http://127.0.0.1:8080/hooks/pizzabot/twilio?x=1", "", nil, "http", "127.0.0.1:8080", true},
		{"signed with :443", "https://bots.example.com:443/hooks/pizzabot/twilio?x=1", "", nil, "", "bots.example.com", true},
		{"fragment in the setting", "https://bots.example.com/hooks/pizzabot/twilio",
			"https://bots.example.com/hooks/pizzabot/twilio#rc=2&rp=all", nil, "", "", true},
		// Forwarded headers are the gateway's to judge; the adapter ignores them.
		{"forwarded headers ignored", "https://attacker.example/hooks/pizzabot/twilio?x=1", "", forged, "http", "internal:8080", false},
		{"no host", "https://attacker.example/hooks/pizzabot/twilio?x=1", "", forged, "", "", false},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		h.Set(SignatureHeader, Signature(msgToken, tt.signedURL, params))
		s := channels.Settings{SettingAuthToken: msgToken}
		if tt.setting != "" {
			s[SettingWebhookURL] = tt.setting
		}
		req := &channels.Request{Method: http.MethodPost,
			URL:    &url.URL{Scheme: tt.scheme, Host: tt.host, Path: "/hooks/pizzabot/twilio", RawQuery: "x=1"},
			Header: h, Body: []byte(body), Settings: s}
		if _, err := a.Parse(req); (err == nil) != tt.ok {
			t.Errorf("%s: Parse error %v, want accepted %v", tt.name, err, tt.ok)
		}
	}
}

// TestGETWebhook: a number configured for HTTP GET sends the parameters in
// the query, which the signed URL already holds.
func TestGETWebhook(t *testing.T) {
	query := string(golden.Read(t, "sms.form"))
	h := http.Header{}
	h.Set(SignatureHeader, Signature(msgToken, hookURL+"?"+query, nil))
	req := &channels.Request{Bot: "pizzabot", Method: http.MethodGet, URL: &url.URL{Path: "/hooks/pizzabot/twilio", RawQuery: query},
		Header: h, Settings: msgSettings()}
	in, err := New(Config{}).Parse(req)
	if err != nil || len(in.Events) != 1 || in.Events[0].Text != "Hello bot" {
		t.Fatalf("GET = %+v, %v", in, err)
	}
}

// echo is the answer the golden files show.
func echo(ev *msg.Event) *msg.TurnResult {
	return golden.Handled(ev, "Echo", msg.Reply{Text: "You said: " + ev.Text, Options: []string{"Small", "Large"}},
		msg.Reply{Text: "Anything else?"})
}

var msgCases = []string{"sms", "whatsapp", "whatsapp_button", "mms", "status_callback"}

// TestMessagingGolden parses each testdata/<case>.form and renders the echo
// answer as TwiML.
func TestMessagingGolden(t *testing.T) {
	a := New(Config{})
	for _, name := range msgCases {
		t.Run(name, func(t *testing.T) {
			req := post(t, string(golden.Read(t, name+".form")))
			in, err := a.Parse(req)
			if err != nil {
				t.Fatal(err)
			}
			if in.Async {
				t.Fatal("Twilio messaging answers in the webhook response")
			}
			var ev *msg.Event
			resp := in.Response
			if len(in.Events) == 1 {
				ev = in.Events[0]
				if resp, err = a.Render(req, []*msg.TurnResult{echo(ev)}); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, name, golden.Render(ev, resp))
		})
	}
}

// TestTwiMLAgreesWithTwilioSDK compares the TwiML with twilio-go's.
func TestTwiMLAgreesWithTwilioSDK(t *testing.T) {
	for _, bodies := range [][]string{nil, {"Hello from the bot"}, {"a < b & c > d \"quoted\" 'single'", "two\nlines", "große Pizza 🍕"}} {
		var verbs []twiml.Element
		for _, b := range bodies {
			verbs = append(verbs, twiml.MessagingMessage{Body: b})
		}
		want, err := twiml.Messages(verbs)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(twimlResponse(bodies).Body); got != want {
			t.Errorf("TwiML differs from twilio-go's:\n got %s\nwant %s", got, want)
		}
	}
	if got := escapeText("bell\x07 \xff ok"); got != "bell\uFFFD \uFFFD ok" {
		t.Errorf("escapeText = %q", got)
	}
	// A message with media: a <Body> and a <Media> per URL.
	want, err := twiml.Messages([]twiml.Element{twiml.MessagingMessage{InnerElements: []twiml.Element{
		twiml.MessagingBody{Message: "Menu & more"}, twiml.MessagingMedia{Url: "https://example.com/a.png?x=1&y=2"},
		twiml.MessagingMedia{Url: "https://example.com/b.pdf"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := string(renderTwiML([]message{{Body: "Menu & more", Media: []string{"https://example.com/a.png?x=1&y=2", "https://example.com/b.pdf"}}}).Body)
	if got != want {
		t.Errorf("TwiML with media differs from twilio-go's:\n got %s\nwant %s", got, want)
	}
	const doc = `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hello from the bot</Message></Response>`
	if got := string(twimlResponse([]string{"Hello from the bot"}).Body); got != doc {
		t.Errorf("TwiML = %s", got)
	}
}

func TestMessagingValidateSettings(t *testing.T) {
	a := New(Config{})
	if err := a.ValidateSettings(msgSettings()); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]channels.Settings{
		"short token":  {SettingAuthToken: "123"},
		"bad account":  {SettingAuthToken: msgToken, SettingAccountSID: "PN123"},
		"relative URL": {SettingAuthToken: msgToken, SettingWebhookURL: "/hooks/pizzabot/twilio"},
		"unknown":      {SettingAuthToken: msgToken, "from": "+1"},
	} {
		if a.ValidateSettings(s) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if r := channels.Redact(a, msgSettings()); r[SettingAuthToken] != "***" {
		t.Errorf("redacted = %v", r)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range msgCases {
		f.Add(string(golden.Read(f, name+".form")))
	}
	a := New(Config{})
	f.Fuzz(func(t *testing.T, body string) {
		req := post(t, "x=1")
		req.Body = []byte(body)
		if params, err := url.ParseQuery(body); err == nil {
			req.Header.Set(SignatureHeader, Signature(msgToken, hookURL, params))
		}
		in, err := a.Parse(req)
		if err != nil {
			return
		}
		for _, ev := range in.Events {
			if ev.ID == "" || ev.User == "" || ev.Conversation == "" {
				t.Fatalf("incomplete event %+v", ev)
			}
			if _, err := a.Render(req, []*msg.TurnResult{echo(ev)}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func BenchmarkParseAndRender(b *testing.B) {
	a := New(Config{})
	req := post(b, string(golden.Read(b, "sms.form")))
	b.ReportAllocs()
	for b.Loop() {
		in, err := a.Parse(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Render(req, []*msg.TurnResult{echo(in.Events[0])}); err != nil {
			b.Fatal(err)
		}
	}
}

// menu is a rich answer: text, buttons (a payload and a link), two cards
// and two media items.
func menu(ev *msg.Event) *msg.TurnResult {
	return golden.Handled(ev, "Menu", msg.Reply{
		Text:    "Here is our menu",
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
		Cards: []msg.Card{
			{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
				Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
			{Title: "Diavola", Buttons: []msg.Button{{Title: "Add", Payload: "add:diavola"}}},
		},
		Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
			{Type: msg.MediaFile, URL: "https://example.com/menu.pdf"}},
	})
}

// TestMessagingRichGolden: a typed number is marked as a choice; rich
// replies become numbered text, links and media URLs on an SMS number,
// attached media on an MMS number (mms=true) and on WhatsApp, one per
// message there.
func TestMessagingRichGolden(t *testing.T) {
	a := New(Config{})
	for _, tc := range []struct{ name, form, mms string }{
		{"sms_number", "sms_number", ""},
		{"mms_rich", "sms", "true"},
		{"whatsapp_rich", "whatsapp", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := post(t, string(golden.Read(t, tc.form+".form")))
			if tc.mms != "" {
				req.Settings[SettingMMS] = tc.mms
			}
			ev, resp := golden.Turn(t, a, req, menu)
			golden.Check(t, tc.name, golden.Render(ev, resp))
		})
	}
}

func TestSplitBody(t *testing.T) {
	long := strings.Repeat("line of text\n", 200) // 2600 characters
	parts := splitBody(long, maxBody, 10)
	if len(parts) != 2 || strings.Join(parts, "\n") != long {
		t.Fatalf("split into %d parts that do not add up", len(parts))
	}
	for _, p := range parts {
		if n := len([]rune(p)); n > maxBody {
			t.Errorf("part of %d characters", n)
		}
	}
	parts = splitBody(strings.Repeat("x", 5000), 1000, 3)
	if len(parts) != 3 || !strings.HasSuffix(parts[2], "…") || len([]rune(parts[2])) != 1000 {
		t.Errorf("capped split: %d parts, last %q", len(parts), parts[len(parts)-1][len(parts[len(parts)-1])-10:])
	}
	if len(splitBody("", 10, 3)) != 0 {
		t.Error("an empty body made a message")
	}
}
