package discord

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

const (
	testBotToken = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GxYzAb.abcdefghijklmnopqrstuvwxyz0123456789AB"
	testChannel  = "1100000000000000001"
	testUser     = "1200000000000000002"
	testDM       = "1300000000000000003"
)

// apiRequest is what the fake REST API saw of one request.
type apiRequest struct {
	Method, Path, Auth string
	Body               []byte
}

// fakeAPI is Discord's REST API as far as sending messages goes: Create DM
// answers testDM's channel, Create Message a message; status, when set,
// answers every request instead.
type fakeAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []apiRequest
	status int
	header http.Header
	answer string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, apiRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), body})
		status, header, answer := f.status, f.header, f.answer
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, answer)
			return
		}
		switch {
		case r.URL.Path == "/api/v10/users/@me/channels":
			_, _ = io.WriteString(w, `{"id":"`+testDM+`","type":1}`)
		case r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/messages/@original"):
			_, _ = io.WriteString(w, `{"id":"1500000000000000005","content":"ok"}`)
		case strings.HasSuffix(r.URL.Path, "/messages"):
			_, _ = io.WriteString(w, `{"id":"1400000000000000004","channel_id":"`+strings.Split(r.URL.Path, "/")[4]+`","content":"ok"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"404: Not Found","code":0}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) take() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reqs
	f.reqs = nil
	return r
}

func pushSettings(f *fakeAPI) channels.Settings {
	s := settings()
	s[SettingBotToken], s[SettingAPIBaseURL] = testBotToken, f.srv.URL+"/api/v10"
	return s
}

// viaDiscordgo sends the same message with discordgo, the Go client most
// Discord bots use, against the fake API.
func viaDiscordgo(t *testing.T, f *fakeAPI, conversation, text string, options []string) {
	t.Helper()
	saved := [2]string{discordgo.EndpointChannels, discordgo.EndpointUsers}
	discordgo.EndpointChannels, discordgo.EndpointUsers = f.srv.URL+"/api/v10/channels/", f.srv.URL+"/api/v10/users/"
	defer func() { discordgo.EndpointChannels, discordgo.EndpointUsers = saved[0], saved[1] }()
	dg, err := discordgo.New("Bot " + testBotToken)
	if err != nil {
		t.Fatal(err)
	}
	channelID := conversation
	if user, ok := strings.CutPrefix(conversation, "dm:"); ok {
		ch, err := dg.UserChannelCreate(user)
		if err != nil {
			t.Fatal(err)
		}
		channelID = ch.ID
	}
	msg := &discordgo.MessageSend{Content: text}
	if len(options) > 0 {
		row := discordgo.ActionsRow{}
		for _, o := range options {
			row.Components = append(row.Components, discordgo.Button{Label: o, Style: discordgo.PrimaryButton, CustomID: "o:" + o})
		}
		msg.Components = []discordgo.MessageComponent{row}
	}
	if _, err := dg.ChannelMessageSendComplex(channelID, msg); err != nil {
		t.Fatal(err)
	}
}

// sentMessage is a Create Message body, decoded with discordgo's types.
type sentMessage struct {
	Content    string                 `json:"content"`
	Components []discordgo.ActionsRow `json:"components"`
}

// TestSendMatchesDiscordgo pushes a message to a channel and to a user
// with Send and with discordgo: the API must see the same requests.
func TestSendMatchesDiscordgo(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	wantPaths := map[string][]string{
		testChannel:      {"/api/v10/channels/" + testChannel + "/messages"},
		"dm:" + testUser: {"/api/v10/users/@me/channels", "/api/v10/channels/" + testDM + "/messages"},
	}
	for _, conv := range []string{testChannel, "dm:" + testUser} {
		res := &msg.TurnResult{Conversation: conv,
			Replies: []msg.Reply{{Text: "Your pizza is on its way.", Options: []string{"Track it", "Cancel"}}}}
		if err := a.Send(context.Background(), pushSettings(f), res); err != nil {
			t.Fatalf("%s: %v", conv, err)
		}
		ours := f.take()
		var paths []string
		for _, r := range ours {
			paths = append(paths, r.Path)
		}
		if !reflect.DeepEqual(paths, wantPaths[conv]) {
			t.Errorf("%s: requests to %q, want %q", conv, paths, wantPaths[conv])
		}
		viaDiscordgo(t, f, conv, "Your pizza is on its way.", []string{"Track it", "Cancel"})
		theirs := f.take()
		if len(ours) != len(theirs) || len(ours) == 0 {
			t.Fatalf("%s: %d requests, discordgo made %d", conv, len(ours), len(theirs))
		}
		for i := range ours {
			o, d := ours[i], theirs[i]
			if o.Method != d.Method || o.Path != d.Path || o.Auth != d.Auth {
				t.Errorf("%s: request %d is %s %s (%q), discordgo's %s %s (%q)", conv, i, o.Method, o.Path, o.Auth, d.Method, d.Path, d.Auth)
			}
			if strings.HasSuffix(o.Path, "/messages") {
				var om, dm sentMessage
				if err := json.Unmarshal(o.Body, &om); err != nil {
					t.Fatalf("our body %s: %v", o.Body, err)
				}
				if err := json.Unmarshal(d.Body, &dm); err != nil {
					t.Fatalf("discordgo's body %s: %v", d.Body, err)
				}
				if !reflect.DeepEqual(om, dm) {
					t.Errorf("%s: message %s, discordgo sent %s", conv, o.Body, d.Body)
				}
			} else {
				var ob, db map[string]any
				if err := json.Unmarshal(o.Body, &ob); err != nil {
					t.Errorf("%s: message %s: %v", conv, o.Body, err)
				}
				if err := json.Unmarshal(d.Body, &db); err != nil {
					t.Errorf("%s: discordgo sent %s: %v", conv, d.Body, err)
				}
				if !reflect.DeepEqual(ob, db) {
					t.Errorf("%s: body %s, discordgo sent %s", conv, o.Body, d.Body)
				}
			}
		}
	}
}

// TestSendFailures checks what the queue and the scheduler learn from a
// failed push: whether to retry, and after how long.
func TestSendFailures(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	res := &msg.TurnResult{Conversation: testChannel, Replies: []msg.Reply{{Text: "hi"}}}
	for _, tc := range []struct {
		name      string
		status    int
		header    http.Header
		answer    string
		retryable bool
		after     time.Duration
		msg       string
	}{
		{"rate limited, header", 429, http.Header{"Retry-After": {"1.5"}}, `{"message":"You are being rate limited.","retry_after":1.5,"global":false}`, true, 1500 * time.Millisecond, "rate limited"},
		{"rate limited, body", 429, nil, `{"message":"You are being rate limited.","retry_after":0.25}`, true, 250 * time.Millisecond, "rate limited"},
		{"server error", 502, nil, `bad gateway`, true, 0, "HTTP 502"},
		{"no access", 403, nil, `{"message":"Missing Access","code":50001}`, false, 0, "50001 Missing Access"},
		{"bad token", 401, nil, `{"message":"401: Unauthorized","code":0}`, false, 0, "401"},
	} {
		f.mu.Lock()
		f.status, f.header, f.answer = tc.status, tc.header, tc.answer
		f.mu.Unlock()
		err := a.Send(context.Background(), pushSettings(f), res)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Status != tc.status || se.Retryable != tc.retryable || se.RetryAfter != tc.after || !strings.Contains(se.Error(), tc.msg) {
			t.Errorf("%s: got %#v (%v)", tc.name, se, err)
		}
	}
	f.mu.Lock()
	f.status = 0
	f.mu.Unlock()
	f.take()

	// Refused before any request.
	noToken := pushSettings(f)
	delete(noToken, SettingBotToken)
	for name, c := range map[string]struct {
		s    channels.Settings
		conv string
	}{
		"no bot token":     {noToken, testChannel},
		"not a channel id": {pushSettings(f), "general"},
		"not a user id":    {pushSettings(f), "dm:ann"},
	} {
		err := a.Send(context.Background(), c.s, &msg.TurnResult{Conversation: c.conv, Replies: []msg.Reply{{Text: "hi"}}})
		var se *channels.SendError
		if !errors.As(err, &se) || se.Retryable {
			t.Errorf("%s: got %v, want a permanent send error", name, err)
		}
	}
	// Nothing to say: nothing sent.
	if err := a.Send(context.Background(), pushSettings(f), &msg.TurnResult{Conversation: testChannel, Replies: []msg.Reply{{}}}); err != nil {
		t.Errorf("an empty reply: %v", err)
	}
	if got := f.take(); len(got) != 0 {
		t.Errorf("sent %d requests for no reply, or for refused ones", len(got))
	}
}

// TestSendNetworkFailure: an unreachable API is worth a retry.
func TestSendNetworkFailure(t *testing.T) {
	f := newFakeAPI(t)
	s := pushSettings(f)
	f.srv.Close()
	err := New(Config{}).Send(context.Background(), s, &msg.TurnResult{Conversation: testChannel, Replies: []msg.Reply{{Text: "hi"}}})
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("got %v, want a retryable send error", err)
	}
}

// TestSendNonce: a turn's message carries a nonce of its event, the same on
// every try, so that Discord creates it once (enforce_nonce).
func TestSendNonce(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	send := func(id string) (nonce string, enforce bool) {
		t.Helper()
		res := &msg.TurnResult{Conversation: testChannel, Replies: []msg.Reply{{Text: "hi"}}}
		if id != "" {
			res.Event = &msg.Event{ID: id, Bot: "remind", Channel: Name, Conversation: testChannel}
		}
		if err := a.Send(context.Background(), pushSettings(f), res); err != nil {
			t.Fatal(err)
		}
		reqs := f.take()
		var body struct {
			Nonce        string `json:"nonce"`
			EnforceNonce bool   `json:"enforce_nonce"`
		}
		if len(reqs) != 1 || json.Unmarshal(reqs[0].Body, &body) != nil {
			t.Fatalf("requests %+v", reqs)
		}
		return body.Nonce, body.EnforceNonce
	}
	n1, e1 := send("schedule:daily:1764000000:0")
	n2, e2 := send("schedule:daily:1764000000:0")
	n3, _ := send("schedule:daily:1764086400:0")
	if n1 == "" || len(n1) > 25 || !e1 || n1 != n2 || !e2 {
		t.Errorf("the same turn sent twice: nonces %q and %q, enforced %v %v", n1, n2, e1, e2)
	}
	if n3 == n1 {
		t.Errorf("another turn has the same nonce %q", n3)
	}
	if n, e := send(""); n != "" || e {
		t.Errorf("no event: nonce %q, enforced %v", n, e)
	}
}
