package line

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/msg"
)

const (
	channelSecret = "testsecret"
	accessToken   = "line-channel-access-token"
)

// eventTime is the timestamp of most sample events (1462629479859 ms).
var eventTime = time.UnixMilli(1462629479859)

func settings(base string) channels.Settings {
	return channels.Settings{SettingChannelSecret: channelSecret, SettingChannelAccessToken: accessToken, SettingAPIBaseURL: base}
}

// signed is a signed request for body, received a second after its latest
// event (or after eventTime).
func signed(body []byte, s channels.Settings) *channels.Request {
	h := http.Header{}
	h.Set(SignatureHeader, Signature(channelSecret, body))
	now := eventTime
	for _, m := range timestampField.FindAllSubmatch(body, -1) {
		if ms, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil && time.UnixMilli(ms).After(now) {
			now = time.UnixMilli(ms)
		}
	}
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/line"},
		Header: h, Body: body, Settings: s, Now: now.Add(time.Second)}
}

var timestampField = regexp.MustCompile(`"timestamp":\s*(\d+)`)

// at is an adapter whose clock reads t.
func at(t time.Time) *Adapter { return New(Config{Now: func() time.Time { return t }}) }

// TestSignatureVectors: L1 is the published vector of LINE's SDK tests, L2
// the protocol notes' sample webhook signed with a test secret.
func TestSignatureVectors(t *testing.T) {
	const l1 = "/gg9a+LvFevTH1sd7XCQycD7tsWclCsInj7MhBHxN7k="
	if got := Signature("channel_secret", []byte("bodybodybodybody")); got != l1 {
		t.Errorf("L1 = %s", got)
	}
	if !ValidSignature("channel_secret", []byte("bodybodybodybody"), l1) {
		t.Error("L1 refused")
	}
	if ValidSignature("channel_secret", []byte("bodybodybodybody"), "invalid_signature") {
		t.Error("invalid_signature accepted")
	}
	const l2 = "/Ov5CZ3bhexX1ZYrukgbEgs7zWKdALmfY6yS4CeyFUc="
	body := golden.Read(t, "text.json")
	if got := Signature(channelSecret, body); got != l2 {
		t.Errorf("L2 = %s", got)
	}
	for _, bad := range []string{"", l2[:len(l2)-2] + "A=", "not base64!", Signature("other", body)} {
		if ValidSignature(channelSecret, body, bad) {
			t.Errorf("accepted %q", bad)
		}
	}
	if ValidSignature("", body, Signature("", body)) {
		t.Error("an empty channel secret must never validate")
	}
}

func TestRefusesUnsignedRequests(t *testing.T) {
	body := golden.Read(t, "text.json")
	req := signed(body, settings(""))
	req.Header.Set(SignatureHeader, Signature("another secret", body))
	var ce *channels.Error
	if _, err := New(Config{}).Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401", err)
	}
}

func echo(ev *msg.Event) *msg.TurnResult {
	return golden.Handled(ev, "Echo", msg.Reply{Text: "You said: " + ev.Text, Options: []string{"Small", "Large"}})
}

var cases = []string{"text", "postback", "group_text", "sticker", "follow_unsend", "verify", "standby", "redelivery"}

// TestGolden parses each testdata/<case>.json as LINE sends it and answers
// every event through a fake Messaging API a second after the event (so
// with its reply token, unless redelivered); the golden file holds the
// events and the API calls.
func TestGolden(t *testing.T) {
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			api := metatest.New(t)
			in, err := New(Config{}).Parse(signed(golden.Read(t, name+".json"), settings(api.URL)))
			if err != nil {
				t.Fatal(err)
			}
			if !in.Async || in.Response == nil || in.Response.Status != http.StatusOK {
				t.Fatalf("inbound = %+v, want an async 200 acknowledgement", in)
			}
			for _, ev := range in.Events {
				if err := at(ev.Timestamp.Add(time.Second)).Send(context.Background(), settings(api.URL), echo(ev)); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, name, metatest.Transcript(in.Events, api.Calls(), "Authorization", "X-Line-Retry-Key"))
		})
	}
}

func textEvent(t *testing.T) *msg.Event {
	evs, err := ParseWebhook(golden.Read(t, "text.json"), eventTime.Add(time.Second))
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	return evs[0]
}

// TestStaleReplyTokenPushes: a turn answered after the reply token's time
// pushes to the conversation, with the same retry key on every try.
func TestStaleReplyTokenPushes(t *testing.T) {
	api := metatest.New(t)
	ev := textEvent(t)
	a := at(eventTime.Add(2 * time.Minute))
	for range 2 {
		if err := a.Send(context.Background(), settings(api.URL), echo(ev)); err != nil {
			t.Fatal(err)
		}
	}
	calls := api.Calls()
	if len(calls) != 2 || calls[0].Path != "/v2/bot/message/push" || calls[0].Header.Get("X-Line-Retry-Key") == "" ||
		calls[0].Header.Get("X-Line-Retry-Key") != calls[1].Header.Get("X-Line-Retry-Key") {
		t.Fatalf("calls = %+v", calls)
	}
	var p PushRequest
	if err := json.Unmarshal(calls[0].Body, &p); err != nil || p.To != "U4af4980629..." {
		t.Fatalf("push = %s", calls[0].Body)
	}
}

// TestRefusedReplyTokenPushes: LINE refuses a used or expired token with
// 400; the answer is pushed instead.
func TestRefusedReplyTokenPushes(t *testing.T) {
	api := metatest.New(t)
	api.Status = http.StatusBadRequest
	ev := textEvent(t)
	a := at(eventTime.Add(time.Second))
	err := a.Send(context.Background(), settings(api.URL), echo(ev))
	// The push is refused by the fake too; what matters is that it was tried.
	calls := api.Calls()
	if len(calls) != 2 || calls[0].Path != "/v2/bot/message/reply" || calls[1].Path != "/v2/bot/message/push" {
		t.Fatalf("calls = %+v", calls)
	}
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retryable {
		t.Fatalf("err = %v, want a permanent failure", err)
	}
}

// TestManyRepliesAreBatched: five messages go with the reply token, the rest
// are pushed.
func TestManyRepliesAreBatched(t *testing.T) {
	api := metatest.New(t)
	ev := textEvent(t)
	res := &msg.TurnResult{Event: ev, Conversation: ev.Conversation}
	for i := range 7 {
		res.Replies = append(res.Replies, msg.Reply{Text: fmt.Sprintf("part %d", i+1)})
	}
	if err := at(eventTime).Send(context.Background(), settings(api.URL), res); err != nil {
		t.Fatal(err)
	}
	calls := api.Calls()
	if len(calls) != 2 || calls[0].Path != "/v2/bot/message/reply" || calls[1].Path != "/v2/bot/message/push" ||
		strings.Count(string(calls[0].Body), `"type":"text"`) != 5 || strings.Count(string(calls[1].Body), `"type":"text"`) != 2 {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestSendErrors(t *testing.T) {
	ev := textEvent(t)
	a := at(eventTime.Add(time.Hour)) // push
	for _, tt := range []struct {
		status    int
		after     string
		retryable bool
		wait      time.Duration
	}{
		{http.StatusTooManyRequests, "2", true, 2 * time.Second},
		{http.StatusInternalServerError, "", true, 0},
		{http.StatusBadRequest, "", false, 0},
	} {
		api := metatest.New(t)
		api.Status = tt.status
		if tt.after != "" {
			api.Header.Set("Retry-After", tt.after)
		}
		err := a.Send(context.Background(), settings(api.URL), echo(ev))
		var se *channels.SendError
		if !errors.As(err, &se) || se.Status != tt.status || se.Retryable != tt.retryable || se.RetryAfter != tt.wait {
			t.Errorf("status %d: err = %#v", tt.status, err)
		}
	}
	// 409 on a push: LINE already accepted a push with this retry key.
	api := metatest.New(t)
	api.Status = http.StatusConflict
	if err := a.Send(context.Background(), settings(api.URL), echo(ev)); err != nil {
		t.Errorf("409 = %v, want success", err)
	}
}

// TestScheduledPush: a turn Parley starts (no webhook event) is pushed to
// the conversation.
func TestScheduledPush(t *testing.T) {
	api := metatest.New(t)
	res := &msg.TurnResult{Event: &msg.Event{ID: "schedule:daily:1:0", Conversation: "Ca56f94637c1234567890123456789012"},
		Conversation: "Ca56f94637c1234567890123456789012", Replies: []msg.Reply{{Text: "Daily special: Margherita"}}}
	if err := New(Config{}).Send(context.Background(), settings(api.URL), res); err != nil {
		t.Fatal(err)
	}
	if calls := api.Calls(); len(calls) != 1 || calls[0].Path != "/v2/bot/message/push" {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	if err := a.ValidateSettings(settings("")); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]channels.Settings{
		"no token":  {SettingChannelSecret: "s"},
		"no secret": {SettingChannelAccessToken: "t"},
		"unknown":   {SettingChannelSecret: "s", SettingChannelAccessToken: "t", "channel_id": "1"},
	} {
		if a.ValidateSettings(s) == nil {
			t.Errorf("%s: accepted", name)
		}
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
			_ = a.replyToken(ev)
		},
	})
}

func BenchmarkParse(b *testing.B) {
	golden.BenchmarkParse(b, New(Config{}), signed(golden.Read(b, "text.json"), settings("")))
}

// TestStaleEvents: an event more than five minutes from the clock, either
// way, is dropped, and a webhook of only such events is refused as a replay.
func TestStaleEvents(t *testing.T) {
	a := New(Config{})
	body := golden.Read(t, "text.json")
	for _, tt := range []struct {
		name   string
		offset time.Duration // of the clock from the event
		fresh  bool
	}{
		{"just now", time.Second, true},
		{"4 min old", 4 * time.Minute, true},
		{"clock 4 min behind", -4 * time.Minute, true},
		{"6 min old", 6 * time.Minute, false},
		{"a day old", 24 * time.Hour, false},
		{"6 min ahead of the clock", -6 * time.Minute, false},
	} {
		req := signed(body, settings(""))
		req.Now = eventTime.Add(tt.offset)
		in, err := a.Parse(req)
		if tt.fresh {
			if err != nil || len(in.Events) != 1 {
				t.Errorf("%s: %v, %v; want one event", tt.name, in, err)
			}
			continue
		}
		var ce *channels.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
			t.Errorf("%s: %v, %v; want a 401", tt.name, in, err)
		}
	}

	// A fresh event beside a replayed one and one without a timestamp: only
	// the fresh one is a turn.
	old := strconv.FormatInt(eventTime.Add(-time.Hour).UnixMilli(), 10)
	ev := func(id, ts string) string {
		return `{"type":"message","mode":"active",` + ts + `"source":{"type":"user","userId":"U1"},"webhookEventId":"` + id +
			`","replyToken":"r","message":{"id":"1","type":"text","text":"hi"}}`
	}
	mixed := []byte(`{"destination":"U0","events":[` + ev("OLD", `"timestamp":`+old+`,`) + `,` + ev("NONE", "") + `,` +
		ev("NEW", `"timestamp":1462629479859,`) + `]}`)
	req := signed(mixed, settings(""))
	req.Now = eventTime.Add(time.Second)
	in, err := a.Parse(req)
	if err != nil || len(in.Events) != 1 || in.Events[0].ID != "NEW" {
		t.Fatalf("mixed webhook: %+v, %v; want only the fresh event", in, err)
	}
	// The console's Verify (no events) is still answered.
	req = signed([]byte(`{"destination":"U0","events":[]}`), settings(""))
	if _, err := a.Parse(req); err != nil {
		t.Errorf("verify: %v", err)
	}
}
