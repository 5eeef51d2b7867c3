package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	testSecret = "test-signing-secret-0123"
	testToken  = "xoxb-test-token"
	testTS     = "1531431954"
)

func testNow() time.Time { return time.Unix(1531431954, 0).Add(42 * time.Second) }

// request builds a signed webhook request as Slack sends it.
func request(body []byte, form bool, settings channels.Settings) *channels.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if form {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	h.Set("X-Slack-Request-Timestamp", testTS)
	h.Set("X-Slack-Signature", Signature(settings[SettingSigningSecret], testTS, body))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/slack"},
		Header: h, Body: body, Settings: settings, Now: testNow()}
}

// fakeSlack records Web API calls and answers ok.
type fakeSlack struct {
	mu    sync.Mutex
	calls []call
	reply func(w http.ResponseWriter)
}

type call struct {
	Path string          `json:"path"`
	Auth string          `json:"authorization"`
	Body json.RawMessage `json:"body"`
}

func newFake(t *testing.T) (*fakeSlack, *httptest.Server) {
	f := &fakeSlack{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, call{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
		reply := f.reply
		f.mu.Unlock()
		if reply != nil {
			reply(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.2"}`)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// golden is what a case's golden file holds.
type golden struct {
	Response struct {
		Status      int    `json:"status"`
		ContentType string `json:"content_type,omitempty"`
		Body        string `json:"body,omitempty"`
	} `json:"response"`
	Async  bool         `json:"async"`
	Events []*msg.Event `json:"events"`
	Sends  []call       `json:"sends"`
}

// TestGolden parses each webhook in testdata (as Slack sends it), answers
// each event with a reply with options, and compares the normalized events
// and the chat.postMessage bodies with the golden file.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	forms, _ := filepath.Glob("testdata/*.form")
	files = append(files, forms...)
	if len(files) < 10 {
		t.Fatalf("only %d cases", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fake, srv := newFake(t)
			settings := channels.Settings{SettingSigningSecret: testSecret, SettingBotToken: testToken, SettingAPIBaseURL: srv.URL + "/api"}
			a := New(Config{})
			in, err := a.Parse(request(body, strings.HasSuffix(file, ".form"), settings))
			if err != nil {
				t.Fatal(err)
			}
			var g golden
			g.Async = in.Async
			if r := in.Response; r != nil {
				g.Response.Status, g.Response.ContentType, g.Response.Body = r.Status, r.ContentType, string(r.Body)
			}
			for _, ev := range in.Events {
				res := &msg.TurnResult{Event: ev, Conversation: ev.Conversation,
					Replies: []msg.Reply{{Text: "You said: " + ev.Text, Options: []string{"Large", "Small"}}}}
				if err := a.Send(context.Background(), settings, res); err != nil {
					t.Fatal(err)
				}
				shown := *ev
				shown.Raw = nil
				g.Events = append(g.Events, &shown)
			}
			g.Sends = fake.calls
			got, _ := json.MarshalIndent(g, "", "  ")
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("golden mismatch for %s:\n got %s\nwant %s", name, got, want)
			}
		})
	}
}

// TestVectors checks the published signature vectors (S1 from Slack's docs,
// S2 from slack-go) with an injected clock, and their negatives.
func TestVectors(t *testing.T) {
	s1Body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	s2Body, err := os.ReadFile("testdata/app_mention.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, secret, ts, sig string
		body                  []byte
		now                   time.Time
		ok                    bool
	}{
		{"S1", "8f742231b10e8888abcd99yyyzzz85a5", "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", s1Body, time.Unix(1531420618, 0), true},
		{"S1 body changed", "8f742231b10e8888abcd99yyyzzz85a5", "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", append(append([]byte{}, s1Body...), "------"...), time.Unix(1531420618, 0), false},
		{"S1 5 minutes late", "8f742231b10e8888abcd99yyyzzz85a5", "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", s1Body, time.Unix(1531420618+300, 0), true},
		{"S1 too late", "8f742231b10e8888abcd99yyyzzz85a5", "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", s1Body, time.Unix(1531420618+301, 0), false},
		{"S1 from the future", "8f742231b10e8888abcd99yyyzzz85a5", "1531420618", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", s1Body, time.Unix(1531420618-301, 0), false},
		{"S2", "e6b19c573432dcc6b075501d51b51bb8", "1531431954", "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", s2Body, time.Unix(1531431954, 0), true},
		{"S2 wrong secret", "e6b19c573432dcc6b075501d51b51boo", "1531431954", "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", s2Body, time.Unix(1531431954, 0), false},
		{"S2 other body", "e6b19c573432dcc6b075501d51b51bb8", "1531431954", "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", bytes.Replace(s2Body, []byte("aF5ynEYQH0dFN9imlgcADxDB"), []byte("12345678abcdefghlmnopqrs"), 1), time.Unix(1531431954, 0), false},
		{"S2 uppercase hex", "e6b19c573432dcc6b075501d51b51bb8", "1531431954", "v0=ADADA4ED31709AEF585C2580CA3267678C6A8EAEB7E0C1ACA3EE57B656886B2C", s2Body, time.Unix(1531431954, 0), false},
		{"no signature", "e6b19c573432dcc6b075501d51b51bb8", "1531431954", "", s2Body, time.Unix(1531431954, 0), false},
		{"no timestamp", "e6b19c573432dcc6b075501d51b51bb8", "", "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", s2Body, time.Unix(1531431954, 0), false},
		{"no secret configured", "", "1531431954", "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c", s2Body, time.Unix(1531431954, 0), false},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.ts != "" {
			h.Set("X-Slack-Request-Timestamp", c.ts)
		}
		if c.sig != "" {
			h.Set("X-Slack-Signature", c.sig)
		}
		err := Verify(c.secret, h, c.body, c.now)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
		}
		var ce *channels.Error
		if err != nil && (!errors.As(err, &ce) || ce.Status != http.StatusUnauthorized) {
			t.Errorf("%s: %v is not a 401", c.name, err)
		}
	}
}

// TestUnverifiedRequestsNeverParse: a request with a bad signature is a 401
// even when its body is garbage.
func TestUnverifiedRequestsNeverParse(t *testing.T) {
	settings := channels.Settings{SettingSigningSecret: testSecret, SettingBotToken: testToken}
	req := request([]byte(`{"type":"url_verification","challenge":"x"}`), false, settings)
	req.Body = []byte(`not json`)
	_, err := New(Config{}).Parse(req)
	var ce *channels.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401", err)
	}
}

// TestSlackGoAcceptsOurSignature: slack-go's verifier, the independent
// implementation, accepts what Signature computes (with a fresh timestamp,
// as slack-go checks the real clock).
func TestSlackGoAcceptsOurSignature(t *testing.T) {
	body, _ := os.ReadFile("testdata/message_im.json")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", Signature(testSecret, ts, body))
	v, err := slackgo.NewSecretsVerifier(h, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := v.Ensure(); err != nil {
		t.Fatalf("slack-go rejects our signature: %v", err)
	}
	if err := Verify(testSecret, h, body, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestSlackGoParsesLikeUs: for every event case, slack-go's parser finds the
// same event id, channel and user as the adapter.
func TestSlackGoParsesLikeUs(t *testing.T) {
	for _, name := range []string{"app_mention", "message_im", "message_thread"} {
		body, _ := os.ReadFile("testdata/" + name + ".json")
		ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
		if err != nil {
			t.Fatal(err)
		}
		cb := ev.Data.(*slackevents.EventsAPICallbackEvent)
		in, err := ParseEvents(body)
		if err != nil || len(in.Events) != 1 {
			t.Fatalf("%s: %v %v", name, in, err)
		}
		got := in.Events[0]
		var channel, user string
		switch inner := ev.InnerEvent.Data.(type) {
		case *slackevents.AppMentionEvent:
			channel, user = inner.Channel, inner.User
		case *slackevents.MessageEvent:
			channel, user = inner.Channel, inner.User
			if inner.ThreadTimeStamp != "" {
				channel += ":" + inner.ThreadTimeStamp
			}
		}
		if got.ID != cb.EventID || got.Conversation != channel || got.User != user {
			t.Errorf("%s: got id %s conv %s user %s; slack-go %s %s %s", name, got.ID, got.Conversation, got.User, cb.EventID, channel, user)
		}
	}
}

// TestSlackGoReadsOurMessage: slack-go's client types decode the
// chat.postMessage body Parley sends, buttons included; and slack-go's own
// client posts to the same fake endpoint.
func TestSlackGoReadsOurMessage(t *testing.T) {
	pm := NewPostMessage("C1:123.456", msg.Reply{Text: "Which size?", Options: []string{"Large", "Small"}})
	raw, _ := json.Marshal(pm)
	var msg struct {
		Channel  string         `json:"channel"`
		ThreadTS string         `json:"thread_ts"`
		Blocks   slackgo.Blocks `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Channel != "C1" || msg.ThreadTS != "123.456" || len(msg.Blocks.BlockSet) != 2 {
		t.Fatalf("decoded %+v", msg)
	}
	actions, ok := msg.Blocks.BlockSet[1].(*slackgo.ActionBlock)
	if !ok || len(actions.Elements.ElementSet) != 2 {
		t.Fatalf("second block is %T", msg.Blocks.BlockSet[1])
	}
	btn := actions.Elements.ElementSet[0].(*slackgo.ButtonBlockElement)
	if btn.Value != "Large" || btn.Text.Text != "Large" {
		t.Fatalf("button %+v", btn)
	}

	// The fake platform speaks the same API to slack-go's client as to ours.
	fake, srv := newFake(t)
	api := slackgo.New(testToken, slackgo.OptionAPIURL(srv.URL+"/api/"))
	if _, _, err := api.PostMessage("C1", slackgo.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	form, _ := url.ParseQuery(string(fake.calls[0].Body))
	if fake.calls[0].Path != "/api/chat.postMessage" || form.Get("channel") != "C1" || form.Get("text") != "hi" {
		t.Fatalf("slack-go called %+v", fake.calls[0])
	}
}

func TestSendErrors(t *testing.T) {
	fake, srv := newFake(t)
	settings := channels.Settings{SettingBotToken: testToken, SettingAPIBaseURL: srv.URL}
	res := &msg.TurnResult{Conversation: "C1", Replies: []msg.Reply{{Text: "hi"}}}
	cases := []struct {
		reply     func(w http.ResponseWriter)
		retryable bool
		after     time.Duration
	}{
		{func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(429) }, true, 7 * time.Second},
		{func(w http.ResponseWriter) { w.WriteHeader(503) }, true, 0},
		{func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`) }, false, 0},
		{func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`) }, true, 0},
		{func(w http.ResponseWriter) { w.WriteHeader(404) }, false, 0},
	}
	for i, c := range cases {
		fake.mu.Lock()
		fake.reply = c.reply
		fake.mu.Unlock()
		err := New(Config{}).Send(context.Background(), settings, res)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Retryable != c.retryable || se.RetryAfter != c.after {
			t.Errorf("case %d: %v (%+v)", i, err, se)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("case %d: the error shows the token: %v", i, err)
		}
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	for _, c := range []struct {
		s  channels.Settings
		ok bool
	}{
		{channels.Settings{"signing_secret": "s", "bot_token": "xoxb-1"}, true},
		{channels.Settings{"signing_secret": "s", "bot_token": "xoxb-1", "api_base_url": "http://127.0.0.1:9/api"}, true},
		{channels.Settings{"signing_secret": "s"}, false},
		{channels.Settings{"bot_token": "xoxb-1"}, false},
		{channels.Settings{"signing_secret": "s", "bot_token": "xoxb-1", "api_base_url": "ftp://x"}, false},
		{channels.Settings{"signing_secret": "s", "bot_token": "xoxb-1", "token": "x"}, false},
	} {
		if err := a.ValidateSettings(c.s); (err == nil) != c.ok {
			t.Errorf("%v: %v", c.s, err)
		}
	}
	red := channels.Redact(a, channels.Settings{"signing_secret": "s", "bot_token": "xoxb-1", "api_base_url": "u"})
	if red["signing_secret"] != "***" || red["bot_token"] != "***" || red["api_base_url"] != "u" {
		t.Fatalf("redacted %v", red)
	}
}

// FuzzParse: no input crashes the parsers, and every event they return is
// complete enough to queue.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	forms, _ := filepath.Glob("testdata/*.form")
	for _, file := range append(files, forms...) {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (*channels.Inbound, error){ParseEvents, ParseForm} {
			in, err := parse(body)
			if err != nil {
				continue
			}
			for _, ev := range in.Events {
				if ev.ID == "" || ev.User == "" || ev.Conversation == "" || ev.Text == "" || !in.Async {
					t.Fatalf("incomplete event %+v", ev)
				}
			}
		}
	})
}

// menuReply is a rich reply: text, a payload button, a link, two cards (one
// with a payload longer than a button's value takes), and media.
func menuReply() msg.Reply {
	return msg.Reply{
		Text:    "Here is our menu & more",
		Options: []string{"Hours"},
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
		Cards: []msg.Card{
			{Title: "Margherita <classic>", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
				Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
			{Title: "Diavola", Buttons: []msg.Button{{Title: strings.Repeat("Add a spicy one ", 6), Payload: strings.Repeat("x", 2100)}}},
		},
		Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
			{Type: msg.MediaFile, URL: "https://example.com/menu.pdf", Caption: "Menu (PDF)"}},
		ChannelData: map[string]json.RawMessage{"slack": json.RawMessage(`{"unfurl_links":false,"channel":"C-elsewhere"}`),
			"telegram": json.RawMessage(`{"disable_notification":true}`)},
	}
}

// TestRichGolden sends a rich reply and compares the chat.postMessage body
// with testdata/rich_send.golden; slack-go's Block Kit types read it.
func TestRichGolden(t *testing.T) {
	fake, srv := newFake(t)
	settings := channels.Settings{SettingSigningSecret: testSecret, SettingBotToken: testToken, SettingAPIBaseURL: srv.URL + "/api"}
	res := &msg.TurnResult{Conversation: "C2147483705:1355517523.000005", Replies: []msg.Reply{menuReply()}}
	if err := New(Config{}).Send(context.Background(), settings, res); err != nil {
		t.Fatal(err)
	}
	var g golden
	g.Sends = fake.calls
	got, _ := json.MarshalIndent(g.Sends, "", "  ")
	got = append(got, '\n')
	path := filepath.Join("testdata", "rich_send.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden mismatch:\n got %s\nwant %s", got, want)
	}

	var sent struct {
		Channel     string         `json:"channel"`
		UnfurlLinks *bool          `json:"unfurl_links"`
		Blocks      slackgo.Blocks `json:"blocks"`
	}
	if err := json.Unmarshal(fake.calls[0].Body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Channel != "C2147483705" || sent.UnfurlLinks == nil || *sent.UnfurlLinks {
		t.Errorf("channel data merged wrongly: %s", fake.calls[0].Body)
	}
	var kinds []string
	for _, b := range sent.Blocks.BlockSet {
		kinds = append(kinds, string(b.BlockType()))
	}
	if want := "section actions actions section actions section actions image section"; strings.Join(kinds, " ") != want {
		t.Fatalf("blocks %s, want %s", strings.Join(kinds, " "), want)
	}
	card := sent.Blocks.BlockSet[3].(*slackgo.SectionBlock)
	if img := card.Accessory.ImageElement; img == nil || img.ImageURL == nil || *img.ImageURL != "https://example.com/m.jpg" {
		t.Errorf("card accessory %+v", card.Accessory)
	}
	link := sent.Blocks.BlockSet[2].(*slackgo.ActionBlock).Elements.ElementSet[1].(*slackgo.ButtonBlockElement)
	if link.URL != "https://example.com" || link.Value != "" {
		t.Errorf("link button %+v", link)
	}
	long := sent.Blocks.BlockSet[6].(*slackgo.ActionBlock).Elements.ElementSet[0].(*slackgo.ButtonBlockElement)
	if n := len([]rune(long.Text.Text)); n > maxButtonText || !strings.HasSuffix(long.Text.Text, "…") ||
		long.Value != "r:"+msg.ChoiceRef(strings.Repeat("x", 2100)) {
		t.Errorf("long button %q (%d characters), value %q", long.Text.Text, n, long.Value)
	}
}

// TestManyBlocks: a reply of more than 50 blocks goes out as several
// messages, nothing left out.
func TestManyBlocks(t *testing.T) {
	var cards []msg.Card
	for i := range 40 {
		cards = append(cards, msg.Card{Title: "Pizza " + strconv.Itoa(i), Buttons: []msg.Button{{Title: "Add", Payload: "add:" + strconv.Itoa(i)}}})
	}
	r := msg.Reply{Text: "All our pizzas", Cards: cards}
	pms := NewPostMessages("C1", r, channels.NewPlain([]msg.Reply{r}))
	total := 0
	for _, pm := range pms {
		if len(pm.Blocks) > maxBlocks {
			t.Errorf("a message of %d blocks", len(pm.Blocks))
		}
		total += len(pm.Blocks)
	}
	if len(pms) != 2 || total != 81 {
		t.Fatalf("%d messages, %d blocks; want 2 messages, 81 blocks", len(pms), total)
	}
}
