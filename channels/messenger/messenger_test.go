package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/msg"
)

const (
	appSecret   = "test_app_secret"
	verifyToken = "meatyhamhock"
	accessToken = "EAAG-page-token"
)

func settings(base string) channels.Settings {
	return channels.Settings{meta.SettingAppSecret: appSecret, meta.SettingVerifyToken: verifyToken,
		meta.SettingAccessToken: accessToken, meta.SettingAPIBaseURL: base}
}

func signed(body []byte, s channels.Settings) *channels.Request {
	h := http.Header{}
	h.Set(meta.SignatureHeader, meta.Signature(appSecret, body))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/messenger"},
		Header: h, Body: body, Settings: s, Now: time.Unix(1700000010, 0)}
}

// TestSignatureVectors: M1 is a published vector, M2 the sample notification
// of the protocol notes signed with a test secret.
func TestSignatureVectors(t *testing.T) {
	if got := meta.Signature("secret", []byte("test")); got != "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914" {
		t.Errorf("M1 = %s", got)
	}
	body := golden.Read(t, "text.json")
	const m2 = "sha256=eec1906d2e5dc1a43a1014f196b421cf9d7b6696ead890eadf906dbbfe03f791"
	if got := meta.Signature(appSecret, body); got != m2 {
		t.Errorf("M2 = %s", got)
	}
	if !meta.ValidSignature(appSecret, body, m2) || !meta.ValidSignature(appSecret, body, "sha256="+strings.ToUpper(m2[7:])) {
		t.Error("M2 refused (hex digits in either case)")
	}
	for _, bad := range []string{"", "sha256=", m2[7:], "sha1=" + m2[7:], m2[:len(m2)-1] + "0", m2 + "00", "sha256=zz"} {
		if meta.ValidSignature(appSecret, body, bad) {
			t.Errorf("accepted %q", bad)
		}
	}
	if meta.ValidSignature("", body, meta.Signature("", body)) {
		t.Error("an empty app secret must never validate")
	}
	// Meta signs the escaped form of non-ASCII text; the same JSON written
	// with the raw characters is another body and must fail.
	escaped := []byte(`{"text":"caf\u00e9"}`)
	if meta.ValidSignature(appSecret, []byte(`{"text":"café"}`), meta.Signature(appSecret, escaped)) {
		t.Error("a re-encoded body validates")
	}
}

func TestHandshake(t *testing.T) {
	a := New(Config{})
	get := func(q string) *channels.Response {
		t.Helper()
		u, _ := url.Parse("/hooks/pizzabot/messenger?" + q)
		in, err := a.Parse(&channels.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Settings: settings("")})
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Events) != 0 {
			t.Fatal("a handshake has no events")
		}
		return in.Response
	}
	r := get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock")
	if r.Status != http.StatusOK || string(r.Body) != "1158201444" {
		t.Errorf("handshake = %d %q", r.Status, r.Body)
	}
	for _, q := range []string{"hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
		"hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock", "hub.challenge=1", ""} {
		if r := get(q); r.Status != http.StatusForbidden {
			t.Errorf("%q: status %d, want 403", q, r.Status)
		}
	}
}

func TestRefusesUnsignedRequests(t *testing.T) {
	a := New(Config{})
	body := golden.Read(t, "text.json")
	for name, mutate := range map[string]func(*channels.Request){
		"no header":    func(r *channels.Request) { r.Header.Del(meta.SignatureHeader) },
		"other secret": func(r *channels.Request) { r.Header.Set(meta.SignatureHeader, meta.Signature("other", body)) },
		"changed body": func(r *channels.Request) { r.Body = bytes.Replace(r.Body, []byte("hello"), []byte("HELLO"), 1) },
		"no secret":    func(r *channels.Request) { r.Settings = channels.Settings{} },
	} {
		req := signed(body, settings(""))
		mutate(req)
		_, err := a.Parse(req)
		var ce *channels.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
			t.Errorf("%s: err = %v, want 401", name, err)
		}
	}
}

// echo is the answer the golden files show: the text back, with two options.
func echo(ev *msg.Event) *msg.TurnResult {
	return golden.Handled(ev, "Echo", msg.Reply{Text: "You said: " + ev.Text, Options: []string{"Small", "Large"}})
}

// TestGolden parses each testdata/<case>.json as Meta sends it and answers
// every event through a fake Send API; the golden file holds the events and
// the Send API calls.
func TestGolden(t *testing.T) {
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			api := metatest.New(t)
			a := New(Config{})
			in, err := a.Parse(signed(golden.Read(t, name+".json"), settings(api.URL)))
			if err != nil {
				t.Fatal(err)
			}
			if !in.Async || in.Response == nil || in.Response.Status != http.StatusOK {
				t.Fatalf("inbound = %+v, want an async 200 acknowledgement", in)
			}
			for _, ev := range in.Events {
				if err := a.Send(context.Background(), settings(api.URL), echo(ev)); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, name, metatest.Transcript(in.Events, api.Calls(), "Authorization"))
		})
	}
}

var cases = []string{"text", "quick_reply", "postback", "echo", "read_delivery", "instagram_text", "batch"}

func TestRawIsTheMessagingItem(t *testing.T) {
	evs, err := ParseNotification(golden.Read(t, "postback.json"))
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(evs[0].Raw, &raw); err != nil || raw["postback"] == nil {
		t.Fatalf("raw = %s", evs[0].Raw)
	}
}

func TestSendErrors(t *testing.T) {
	a := New(Config{})
	ev := &msg.Event{ID: "m1", Conversation: "PSID", Raw: []byte(`{}`)}
	res := echo(ev)
	tests := []struct {
		status     int
		retryAfter string
		retryable  bool
		after      time.Duration
	}{
		{http.StatusTooManyRequests, "7", true, 7 * time.Second},
		{http.StatusServiceUnavailable, "", true, 0},
		{http.StatusBadRequest, "", false, 0},
		{http.StatusForbidden, "", false, 0},
	}
	for _, tt := range tests {
		api := metatest.New(t)
		api.Status = tt.status
		if tt.retryAfter != "" {
			api.Header.Set("Retry-After", tt.retryAfter)
		}
		err := a.Send(context.Background(), settings(api.URL), res)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Status != tt.status || se.Retryable != tt.retryable || se.RetryAfter != tt.after {
			t.Errorf("status %d: err = %#v", tt.status, err)
		}
	}
	// A network failure may succeed later.
	api := metatest.New(t)
	api.Close()
	err := a.Send(context.Background(), settings(api.URL), res)
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retryable {
		t.Errorf("network failure: err = %v", err)
	}
}

// TestSendWithoutEvent: a message Parley starts (a schedule) goes out as an
// UPDATE to the conversation.
func TestSendWithoutEvent(t *testing.T) {
	api := metatest.New(t)
	res := &msg.TurnResult{Event: &msg.Event{ID: "schedule:x", Conversation: "PSID"}, Conversation: "PSID",
		Replies: []msg.Reply{{Text: "Your pizza is ready"}, {}}}
	if err := New(Config{}).Send(context.Background(), settings(api.URL), res); err != nil {
		t.Fatal(err)
	}
	calls := api.Calls()
	if len(calls) != 1 || !strings.Contains(string(calls[0].Body), `"messaging_type":"UPDATE"`) {
		t.Fatalf("calls = %v", calls)
	}
}

func TestQuickReplyLimits(t *testing.T) {
	opts := make([]string, 20)
	for i := range opts {
		opts[i] = fmt.Sprintf("A rather long option number %d", i)
	}
	msgs := Messages(&msg.TurnResult{Conversation: "PSID", Replies: []msg.Reply{{Options: opts}}})
	if len(msgs) != 1 {
		t.Fatal(msgs)
	}
	qr := msgs[0].Message.QuickReplies
	if len(qr) != maxQuickReplies || len([]rune(qr[0].Title)) != maxQuickTitle || qr[0].Payload != "o:"+opts[0] || msgs[0].Message.Text == "" {
		t.Fatalf("message = %+v", msgs[0])
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	if err := a.ValidateSettings(settings("")); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]channels.Settings{
		"no app secret": {meta.SettingVerifyToken: "v", meta.SettingAccessToken: "t"},
		"unknown":       {meta.SettingAppSecret: "s", meta.SettingVerifyToken: "v", meta.SettingAccessToken: "t", "page_id": "1"},
		"bad base url":  {meta.SettingAppSecret: "s", meta.SettingVerifyToken: "v", meta.SettingAccessToken: "t", meta.SettingAPIBaseURL: "graph.facebook.com"},
	} {
		if err := a.ValidateSettings(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	red := channels.Redact(a, settings(""))
	if red[meta.SettingAppSecret] != "***" || red[meta.SettingAccessToken] != "***" {
		t.Errorf("redacted = %v", red)
	}
}

func FuzzParse(f *testing.F) {
	a := New(Config{})
	golden.FuzzParse(f, a, golden.Fuzzing{
		Seeds:   golden.Files(cases, ".json"),
		Request: func(body []byte) *channels.Request { return signed(body, settings("")) },
		Check: func(t *testing.T, _ *channels.Request, ev *msg.Event) {
			if ev.ID == "" || ev.User == "" || ev.Channel != Name {
				t.Fatalf("incomplete event %+v", ev)
			}
			_ = Messages(echo(ev))
		},
	})
}

func BenchmarkParse(b *testing.B) {
	golden.BenchmarkParse(b, New(Config{}), signed(golden.Read(b, "text.json"), settings("")))
}
