package whatsapp

import (
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
	appSecret     = "test_app_secret"
	verifyToken   = "meatyhamhock"
	accessToken   = "EAAG-system-user-token"
	phoneNumberID = "106540352242922"
)

func settings(base string) channels.Settings {
	return channels.Settings{meta.SettingAppSecret: appSecret, meta.SettingVerifyToken: verifyToken,
		meta.SettingAccessToken: accessToken, SettingPhoneNumberID: phoneNumberID, meta.SettingAPIBaseURL: base}
}

func signed(body []byte, s channels.Settings) *channels.Request {
	h := http.Header{}
	h.Set(meta.SignatureHeader, meta.Signature(appSecret, body))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/whatsapp"},
		Header: h, Body: body, Settings: s, Now: time.Unix(1749416500, 0)}
}

// TestSignatureVector: W1, the protocol notes' sample message signed with a
// test secret.
func TestSignatureVector(t *testing.T) {
	const w1 = "sha256=ded1d1d9621cffa39832ccf2b330fa476b4dc8ec2a5d102e1e554312b3f21d42"
	body := golden.Read(t, "text.json")
	if got := meta.Signature(appSecret, body); got != w1 {
		t.Errorf("W1 = %s", got)
	}
	a := New(Config{})
	req := signed(body, settings(""))
	req.Header.Set(meta.SignatureHeader, w1)
	if _, err := a.Parse(req); err != nil {
		t.Errorf("W1 refused: %v", err)
	}
	req.Header.Set(meta.SignatureHeader, w1[:len(w1)-2]+"00")
	var ce *channels.Error
	if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("a wrong signature: err = %v, want 401", err)
	}
	req.Header.Del(meta.SignatureHeader)
	if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("no signature: err = %v, want 401", err)
	}
}

func TestHandshake(t *testing.T) {
	u, _ := url.Parse("/hooks/pizzabot/whatsapp?hub.mode=subscribe&hub.challenge=abc123&hub.verify_token=meatyhamhock")
	in, err := New(Config{}).Parse(&channels.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Settings: settings("")})
	if err != nil || in.Response.Status != http.StatusOK || string(in.Response.Body) != "abc123" {
		t.Fatalf("handshake = %+v, %v", in, err)
	}
	u, _ = url.Parse("/hooks/pizzabot/whatsapp?hub.mode=subscribe&hub.challenge=abc123&hub.verify_token=nope")
	in, err = New(Config{}).Parse(&channels.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, Settings: settings("")})
	if err != nil || in.Response.Status != http.StatusForbidden {
		t.Fatalf("wrong token = %+v, %v", in, err)
	}
}

func echo(ev *msg.Event) *msg.TurnResult {
	return golden.Handled(ev, "Echo", msg.Reply{Text: "You said: " + ev.Text, Options: []string{"Small", "Large"}})
}

var cases = []string{"text", "button_reply", "list_reply", "template_button", "image_caption", "statuses", "reaction", "other_number"}

// TestGolden parses each testdata/<case>.json as Meta sends it and answers
// every event through a fake Cloud API; the golden file holds the events
// and the messages calls.
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

func TestRawCarriesProfileName(t *testing.T) {
	evs, err := ParseNotification(golden.Read(t, "text.json"), phoneNumberID)
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	var r Raw
	if err := json.Unmarshal(evs[0].Raw, &r); err != nil || r.Name != "Sheena Nelson" || len(r.Message) == 0 {
		t.Fatalf("raw = %s", evs[0].Raw)
	}
}

// TestOptionsRendering: up to 3 options are reply buttons, up to 10 a list,
// more a list of 10 and a text listing the others.
func TestOptionsRendering(t *testing.T) {
	opts := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("Option number %d with a long name", i+1)
		}
		return out
	}
	tests := []struct {
		n        int
		typ, sub string
	}{{0, "text", ""}, {3, "interactive", "button"}, {4, "interactive", "list"}, {10, "interactive", "list"}, {11, "interactive", "list"}}
	for _, tt := range tests {
		msgs := Messages(&msg.TurnResult{Conversation: "16505551234", Replies: []msg.Reply{{Text: "Pick one", Options: opts(tt.n)}}})
		want := 1
		if tt.n > maxRows {
			want = 2
			if last := msgs[len(msgs)-1]; last.Type != "text" || !strings.Contains(last.Text.Body, opts(tt.n)[10]) {
				t.Errorf("%d options: the last is not listed in a text: %+v", tt.n, last)
			}
		}
		if len(msgs) != want || msgs[0].Type != tt.typ {
			t.Fatalf("%d options: %+v", tt.n, msgs)
		}
		m := msgs[0]
		switch tt.sub {
		case "button":
			b := m.Interactive.Action.Buttons
			if m.Interactive.Type != "button" || len(b) != 3 || len([]rune(b[0].Reply.Title)) > maxButtonTitle || b[0].Reply.ID != "o:"+opts(3)[0] {
				t.Errorf("buttons = %+v", m.Interactive)
			}
		case "list":
			rows := m.Interactive.Action.Sections[0].Rows
			if m.Interactive.Type != "list" || len(rows) != min(tt.n, maxRows) || len([]rune(rows[0].Title)) > maxRowTitle || m.Interactive.Action.Button == "" {
				t.Errorf("list = %+v", m.Interactive)
			}
		default:
			if tt.n > 0 && !strings.Contains(m.Text.Body, opts(tt.n)[10]) {
				t.Errorf("text = %q", m.Text.Body)
			}
		}
	}
	// Options without text still have the body an interactive message needs.
	msgs := Messages(&msg.TurnResult{Conversation: "1", Replies: []msg.Reply{{Options: []string{"Yes", "No"}}}})
	if msgs[0].Interactive.Body.Text == "" {
		t.Error("an interactive message without body")
	}
}

func TestSendErrors(t *testing.T) {
	a := New(Config{})
	res := echo(&msg.Event{ID: "wamid.1", Conversation: "16505551234"})
	for _, tt := range []struct {
		status    int
		after     string
		retryable bool
		wait      time.Duration
	}{
		{http.StatusTooManyRequests, "3", true, 3 * time.Second},
		{http.StatusInternalServerError, "", true, 0},
		{http.StatusBadRequest, "", false, 0},
	} {
		api := metatest.New(t)
		api.Status = tt.status
		if tt.after != "" {
			api.Header.Set("Retry-After", tt.after)
		}
		err := a.Send(context.Background(), settings(api.URL), res)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Status != tt.status || se.Retryable != tt.retryable || se.RetryAfter != tt.wait {
			t.Errorf("status %d: err = %#v", tt.status, err)
		}
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	if err := a.ValidateSettings(settings("https://graph.example.test/v21.0")); err != nil {
		t.Fatal(err)
	}
	s := settings("")
	s[SettingPhoneNumberID] = "+1 555"
	if a.ValidateSettings(s) == nil {
		t.Error("a phone number instead of its id was accepted")
	}
	delete(s, SettingPhoneNumberID)
	if a.ValidateSettings(s) == nil {
		t.Error("no phone_number_id was accepted")
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
