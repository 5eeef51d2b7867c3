package telegram

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

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	testSecret = "test_secret-Token_0123"
	testToken  = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
)

func request(body []byte, settings channels.Settings) *channels.Request {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SecretHeader, settings[SettingSecretToken])
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/telegram"},
		Header: h, Body: body, Settings: settings, Now: time.Unix(1441645600, 0)}
}

type call struct {
	Path string          `json:"path"`
	Body json.RawMessage `json:"body"`
}

type fakeTelegram struct {
	mu    sync.Mutex
	calls []call
	reply func(w http.ResponseWriter)
}

func newFake(t *testing.T) (*fakeTelegram, *httptest.Server) {
	f := &fakeTelegram{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, call{Path: r.URL.Path, Body: body})
		reply := f.reply
		f.mu.Unlock()
		if reply != nil {
			reply(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"result":{"message_id":1}}`)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

type golden struct {
	Response int          `json:"response_status"`
	Async    bool         `json:"async"`
	Events   []*msg.Event `json:"events"`
	Sends    []call       `json:"sends"`
}

// TestGolden parses each update in testdata, answers each event with a reply
// with options, and compares the normalized events and the Bot API calls
// (path with the token masked, and body) with the golden file.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 9 {
		t.Fatalf("only %d cases", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fake, srv := newFake(t)
			settings := channels.Settings{SettingSecretToken: testSecret, SettingBotToken: testToken, SettingAPIBaseURL: srv.URL}
			a := New(Config{})
			in, err := a.Parse(request(body, settings))
			if err != nil {
				t.Fatal(err)
			}
			g := golden{Async: in.Async}
			if in.Response != nil {
				g.Response = in.Response.Status
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
			for _, c := range fake.calls {
				c.Path = strings.Replace(c.Path, testToken, "<bot_token>", 1)
				g.Sends = append(g.Sends, c)
			}
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

// TestVerify: the secret token header must match exactly; the negatives are
// those of the protocol notes.
func TestVerify(t *testing.T) {
	long := strings.Repeat("a", 257)
	for _, c := range []struct {
		name, secret, header string
		ok                   bool
	}{
		{"match", testSecret, testSecret, true},
		{"header absent", testSecret, "", false},
		{"wrong case", testSecret, strings.ToUpper(testSecret), false},
		{"prefix only", testSecret, testSecret[:5], false},
		{"longer", testSecret, testSecret + "x", false},
		{"no secret configured", "", "", false},
		{"257 characters", long, long, true}, // Verify compares; ValidateSettings refuses such a secret
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set(SecretHeader, c.header)
		}
		err := Verify(c.secret, h)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		var ce *channels.Error
		if err != nil && (!errors.As(err, &ce) || ce.Status != http.StatusUnauthorized) {
			t.Errorf("%s: not a 401: %v", c.name, err)
		}
	}
	for tok, ok := range map[string]bool{"abc_DEF-123": true, "": false, long: false, strings.Repeat("a", 256): true, "a+b": false, "a=b": false, "a b": false} {
		if ValidSecretToken(tok) != ok {
			t.Errorf("ValidSecretToken(%.20q) = %v", tok, !ok)
		}
	}
	req := request([]byte(`{"update_id":1,"message":{"text":"hi","from":{"id":1},"chat":{"id":1}}}`), channels.Settings{SettingSecretToken: testSecret})
	req.Header.Set(SecretHeader, "wrong")
	if _, err := New(Config{}).Parse(req); err == nil {
		t.Fatal("a wrong secret parsed")
	}
}

func TestSendErrors(t *testing.T) {
	fake, srv := newFake(t)
	settings := channels.Settings{SettingBotToken: testToken, SettingAPIBaseURL: srv.URL}
	res := &msg.TurnResult{Conversation: "1111111", Replies: []msg.Reply{{Text: "hi"}}}
	cases := []struct {
		reply     func(w http.ResponseWriter)
		retryable bool
		after     time.Duration
	}{
		{func(w http.ResponseWriter) {
			w.WriteHeader(429)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`)
		}, true, 3 * time.Second},
		{func(w http.ResponseWriter) { w.WriteHeader(502) }, true, 0},
		{func(w http.ResponseWriter) {
			w.WriteHeader(403)
			_, _ = io.WriteString(w, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`)
		}, false, 0},
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
	}
	// A network failure names neither the URL nor the token.
	settings[SettingAPIBaseURL] = "http://127.0.0.1:1"
	err := New(Config{}).Send(context.Background(), settings, res)
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retryable || strings.Contains(err.Error(), testToken) {
		t.Fatalf("network failure: %v", err)
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	for _, c := range []struct {
		s  channels.Settings
		ok bool
	}{
		{channels.Settings{"secret_token": "abcdef-12345", "bot_token": testToken}, true},
		{channels.Settings{"secret_token": "abcdef-12345", "bot_token": testToken, "api_base_url": "http://127.0.0.1:9"}, true},
		{channels.Settings{"secret_token": strings.Repeat("a", 256), "bot_token": testToken}, true},
		{channels.Settings{"secret_token": "abcdef+12345", "bot_token": testToken}, false},
		{channels.Settings{"bot_token": testToken}, false},
		{channels.Settings{"secret_token": "abcdef-12345"}, false},
		{channels.Settings{"secret_token": "abcdef-12345", "bot_token": "12/../x"}, false},
		{channels.Settings{"secret_token": "abcdef-12345", "bot_token": testToken, "webhook": "x"}, false},
		// As short as setWebhook allows, but shorter than every other shared secret.
		{channels.Settings{"secret_token": "a", "bot_token": testToken}, false},
		{channels.Settings{"secret_token": "abcdef-1234", "bot_token": testToken}, false},
		{channels.Settings{"secret_token": strings.Repeat("a", 257), "bot_token": testToken}, false},
	} {
		if err := a.ValidateSettings(c.s); (err == nil) != c.ok {
			t.Errorf("%v: %v", c.s, err)
		}
	}
}

// TestShortSecretVerifiesNothing: a secret_token saved before the minimum
// existed is refused at verification, even when the header matches it.
func TestShortSecretVerifiesNothing(t *testing.T) {
	for _, secret := range []string{"a", "abcdef-1234"} {
		h := http.Header{}
		h.Set(SecretHeader, secret)
		if err := Verify(secret, h); err == nil {
			t.Errorf("secret %q verified", secret)
		}
	}
	h := http.Header{}
	h.Set(SecretHeader, testSecret)
	if err := Verify(testSecret, h); err != nil {
		t.Error(err)
	}
}

func FuzzParseUpdate(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseUpdate(body)
		if err != nil {
			return
		}
		for _, ev := range in.Events {
			if ev.ID == "" || ev.User == "" || ev.Conversation == "" || ev.Text == "" || !in.Async {
				t.Fatalf("incomplete event %+v", ev)
			}
			if _, err := NewSendMessage(ev.Conversation, msg.Reply{Text: "x"}); err != nil {
				t.Fatalf("cannot answer conversation %q: %v", ev.Conversation, err)
			}
		}
	})
}

// TestRichSend sends a rich reply and compares the Bot API calls with
// testdata/rich_send.golden: the text with its keyboard (an option, a
// payload, a link, a payload too long for callback_data as a reference),
// a photo per card with its caption cut to 1024 characters, and each
// media item with its method; channel_data.telegram merged into the text.
func TestRichSend(t *testing.T) {
	fake, srv := newFake(t)
	settings := channels.Settings{SettingSecretToken: testSecret, SettingBotToken: testToken, SettingAPIBaseURL: srv.URL}
	long := strings.Repeat("x", 2100)
	res := &msg.TurnResult{Conversation: "-1001234567890:7", Replies: []msg.Reply{{
		Text:    "Here is our menu",
		Options: []string{"Hours"},
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
		Cards: []msg.Card{
			{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
				Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
			{Title: "Diavola", Subtitle: strings.Repeat("spicy ", 200), Image: "https://example.com/d.jpg", Buttons: []msg.Button{{Title: "Add a spicy one", Payload: long}}},
		},
		Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
			{Type: msg.MediaAudio, URL: "https://example.com/jingle.mp3"},
			{Type: msg.MediaVideo, URL: "https://example.com/oven.mp4", Caption: "Our oven"},
			{Type: msg.MediaFile, URL: "https://example.com/menu.pdf", Caption: "Menu (PDF)"}},
		ChannelData: map[string]json.RawMessage{"telegram": json.RawMessage(`{"disable_notification":true,"chat_id":1}`)},
	}}}
	if err := New(Config{}).Send(context.Background(), settings, res); err != nil {
		t.Fatal(err)
	}
	var sends []call
	for _, c := range fake.calls {
		c.Path = strings.Replace(c.Path, testToken, "<bot_token>", 1)
		sends = append(sends, c)
	}
	got, _ := json.MarshalIndent(sends, "", "  ")
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
	for _, c := range fake.calls {
		var body struct {
			Caption     string `json:"caption"`
			ReplyMarkup struct {
				InlineKeyboard [][]Button `json:"inline_keyboard"`
			} `json:"reply_markup"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil {
			t.Fatal(err)
		}
		if n := len([]rune(body.Caption)); n > maxCaption {
			t.Errorf("%s: caption of %d characters", c.Path, n)
		}
		for _, row := range body.ReplyMarkup.InlineKeyboard {
			for _, b := range row {
				if len(b.CallbackData) > maxCallbackData || (b.CallbackData == "") == (b.URL == "") {
					t.Errorf("%s: button %+v", c.Path, b)
				}
			}
		}
	}
	// The reference resolves to the long payload while it is offered.
	if got, ok := msg.ResolveChoice(msg.Choices(res.Replies), "~vHtdMz3WJLRV"); !ok || got != long {
		t.Errorf("the reference in callback_query_reference.json does not name the long payload")
	}
}

// TestManyButtons: past Telegram's 100 buttons a keyboard continues in
// another message.
func TestManyButtons(t *testing.T) {
	var bs []msg.Button
	for i := range 130 {
		bs = append(bs, msg.Button{Title: "B", Payload: "p" + strconv.Itoa(i)})
	}
	calls, err := replyCalls("1", msg.Reply{Text: "Pick", Buttons: bs})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	first, second := calls[0].Body.(SendMessage), calls[1].Body.(SendMessage)
	if len(first.ReplyMarkup.InlineKeyboard) != 100 || len(second.ReplyMarkup.InlineKeyboard) != 30 || second.Text == "" {
		t.Fatalf("keyboards of %d and %d rows", len(first.ReplyMarkup.InlineKeyboard), len(second.ReplyMarkup.InlineKeyboard))
	}
}
