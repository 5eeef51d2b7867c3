package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/llm/llmtest"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

const (
	siteOrigin = "https://shop.example.com"
	// webchatHandler answers with the text, a button and a card, and says
	// "<b>" back as text.
	webchatHandler = `function handle(event, session)
  return {text = "echo: " .. (event.text or event.postback or ""), buttons = {{title = "More", payload = "More"}}}
end`
)

// setupWebChat creates a bot whose web channel allows siteOrigin, and
// anonymous sessions when anonymous is set.
func (ta *testApp) setupWebChat(t testing.TB, bot string, anonymous bool) {
	t.Helper()
	do(t, "PUT", ta.URL+"/v1/bots/"+bot, adminKey, map[string]any{}).must(t, http.StatusCreated)
	ta.putWebChannel(t, bot, webToken, anonymous)
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/intents/fallback", adminKey, webchatHandler).must(t, http.StatusCreated)
}

func (ta *testApp) putWebChannel(t testing.TB, bot, token string, anonymous bool) {
	t.Helper()
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/channels/web", adminKey, map[string]any{"token": token,
		"allowed_origins": siteOrigin + ", http://localhost:1", "allow_anonymous": anonymous}).must(t, http.StatusOK)
}

// mint asks for a user token with the given credential.
func (ta *testApp) mint(t testing.TB, bot, credential, user string) response {
	t.Helper()
	return do(t, "POST", ta.URL+"/v1/bots/"+bot+"/channels/web/tokens", credential, map[string]any{"user": user, "ttl_seconds": 600})
}

func userToken(t testing.TB, r response) string {
	t.Helper()
	tok, _ := r.must(t, http.StatusOK).Body["token"].(string)
	if tok == "" {
		t.Fatalf("no token in %s", r.Raw)
	}
	return tok
}

func TestWebUserTokens(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupWebChat(t, "shop", false)
	ta.setupWebChat(t, "other", false)

	// The admin key and the channel's token both mint; nothing else does.
	alice := userToken(t, ta.mint(t, "shop", adminKey, "alice"))
	fromSite := ta.mint(t, "shop", webToken, "alice")
	if exp, _ := fromSite.must(t, http.StatusOK).Body["expires"].(string); fromSite.Body["user"] != "alice" || exp == "" {
		t.Fatalf("minted %s", fromSite.Raw)
	}
	ta.mint(t, "shop", alice, "bob").must(t, http.StatusUnauthorized)
	ta.mint(t, "shop", "", "bob").must(t, http.StatusUnauthorized)
	ta.mint(t, "nobot", webToken, "bob").must(t, http.StatusUnauthorized)
	ta.mint(t, "shop", webToken, "a/b").must(t, http.StatusBadRequest)
	do(t, "POST", ta.URL+"/v1/bots/shop/channels/web/tokens", webToken, map[string]any{"user": "x", "ttl_seconds": 5}).
		must(t, http.StatusBadRequest)

	post := func(token string, body map[string]any) response {
		return do(t, "POST", ta.URL+"/hooks/shop/web", token, body)
	}
	r := post(alice, map[string]any{"text": "hi"}).must(t, http.StatusOK)
	if firstReply(t, r) != "echo: hi" || r.Body["conversation"] != "alice" {
		t.Fatalf("answer %s", r.Raw)
	}
	post(alice, map[string]any{"conversation": "alice/orders", "text": "hi"}).must(t, http.StatusOK)
	post(alice, map[string]any{"user": "bob", "text": "hi"}).must(t, http.StatusForbidden)
	post(alice, map[string]any{"conversation": "bob", "text": "hi"}).must(t, http.StatusForbidden)
	post(alice, map[string]any{"conversation": "alice-x", "text": "hi"}).must(t, http.StatusForbidden)
	// A forged token (alice's signature on another payload) and another bot's token fail.
	parts := strings.Split(alice, ".")
	bob := strings.Split(userToken(t, ta.mint(t, "shop", adminKey, "bob")), ".")
	post(parts[0]+"."+bob[1]+"."+parts[2], map[string]any{"text": "hi"}).must(t, http.StatusUnauthorized)
	otherBot := userToken(t, ta.mint(t, "other", adminKey, "alice"))
	post(otherBot, map[string]any{"text": "hi"}).must(t, http.StatusUnauthorized)

	// Rotating the channel's token revokes every user token.
	ta.putWebChannel(t, "shop", webToken+"-rotated", false)
	deadline := time.Now().Add(10 * time.Second)
	for post(alice, map[string]any{"text": "hi"}).Status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("a user token still works after the channel token was rotated")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fresh := userToken(t, ta.mint(t, "shop", webToken+"-rotated", "alice"))
	post(fresh, map[string]any{"text": "hi"}).must(t, http.StatusOK)
}

func TestWebCORS(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupWebChat(t, "shop", false)
	preflight := func(path, origin string) response {
		return do(t, "OPTIONS", ta.URL+path, "", nil, "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type")
	}
	r := preflight("/hooks/shop/web", siteOrigin).must(t, http.StatusNoContent)
	if r.Header.Get("Access-Control-Allow-Origin") != siteOrigin || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		r.Header.Get("Vary") != "Origin" {
		t.Fatalf("allowed preflight headers: %v", r.Header)
	}
	for _, tc := range []struct{ path, origin string }{
		{"/hooks/shop/web", "https://evil.example"},
		{"/hooks/shop/web", "https://shop.example.com.evil.example"},
		{"/hooks/nobot/web", siteOrigin},
		{"/hooks/shop/slack", siteOrigin},
	} {
		r := preflight(tc.path, tc.origin) // 204, or 405 for another channel
		if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" || (r.Status != http.StatusNoContent && r.Status != http.StatusMethodNotAllowed) {
			t.Errorf("%s from %s: Access-Control-Allow-Origin %q", tc.path, tc.origin, v)
		}
	}
	ok := do(t, "POST", ta.URL+"/hooks/shop/web", webToken, map[string]any{"user": "u", "text": "hi"}, "Origin", siteOrigin).must(t, http.StatusOK)
	if ok.Header.Get("Access-Control-Allow-Origin") != siteOrigin || ok.Header.Get("Vary") != "Origin" {
		t.Fatalf("actual response headers: %v", ok.Header)
	}
	evil := do(t, "POST", ta.URL+"/hooks/shop/web", webToken, map[string]any{"user": "u", "text": "hi"}, "Origin", "https://evil.example")
	if evil.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("another origin got CORS headers: %v", evil.Header)
	}
	// A wildcard or a path is refused as a setting.
	for _, bad := range []string{"*", "https://shop.example.com/chat"} {
		do(t, "PUT", ta.URL+"/v1/bots/shop/channels/web", adminKey, map[string]any{"token": webToken, "allowed_origins": bad}).
			must(t, http.StatusBadRequest)
	}
}

func TestWebAnonymousSessions(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupWebChat(t, "shop", true)
	ta.setupWebChat(t, "closed", false)
	session := func(bot, origin string) response {
		return do(t, "POST", ta.URL+"/hooks/"+bot+"/web/session", "", nil, "Origin", origin)
	}
	r := session("shop", siteOrigin).must(t, http.StatusOK)
	user, _ := r.Body["user"].(string)
	tok, _ := r.Body["token"].(string)
	if !strings.HasPrefix(user, "anon-") || r.Header.Get("Access-Control-Allow-Origin") != siteOrigin {
		t.Fatalf("session %s %v", r.Raw, r.Header)
	}
	if a := do(t, "POST", ta.URL+"/hooks/shop/web", tok, map[string]any{"text": "hi"}).must(t, http.StatusOK); a.Body["conversation"] != user {
		t.Fatalf("anonymous turn: %s", a.Raw)
	}
	if user2, _ := session("shop", siteOrigin).must(t, http.StatusOK).Body["user"].(string); user2 == user {
		t.Fatal("two sessions got one user")
	}
	session("shop", "https://evil.example").must(t, http.StatusForbidden)
	session("shop", "").must(t, http.StatusForbidden)
	session("closed", siteOrigin).must(t, http.StatusForbidden)
	session("nobot", siteOrigin).must(t, http.StatusUnauthorized)
	// At most 10 a minute from one address: two used above.
	var last response
	for range 12 {
		if last = session("shop", siteOrigin); last.Status == http.StatusTooManyRequests {
			break
		}
	}
	if last.Status != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("the session endpoint is not rate limited: %d %s", last.Status, last.Raw)
	}
}

// liveClient is a test's WebSocket connection.
type liveClient struct {
	t    *testing.T
	conn *websocket.Conn
}

// frame is a server frame as the test reads it.
type frame struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Ref    string `json:"ref"`
	Text   string `json:"text"`
	Code   string `json:"code"`
	User   string `json:"user"`
	Answer struct {
		Conversation string `json:"conversation"`
		Replies      []struct {
			Text string `json:"text"`
		} `json:"replies"`
	} `json:"answer"`
}

// dialLive opens a live connection; on a refusal it returns the answer's
// status.
func dialLive(t *testing.T, base, bot, token, after string, header http.Header) (*liveClient, int, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/hooks/" + bot + "/web/ws?token=" + url.QueryEscape(token)
	if after != "" {
		u += "&after=" + url.QueryEscape(after)
	}
	conn, status, err := dialURL(u, header)
	if err != nil {
		return nil, status, err
	}
	lc := &liveClient{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.CloseNow() })
	if f := lc.read(); f.Type != "ready" {
		t.Fatalf("first frame %+v, want ready", f)
	}
	return lc, status, nil
}

// dialURL opens a WebSocket; status is the HTTP answer's.
func dialURL(u string, header http.Header) (*websocket.Conn, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header})
	status := 0
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
	}
	return conn, status, err
}

func (lc *liveClient) read() frame {
	lc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, data, err := lc.conn.Read(ctx)
	if err != nil {
		lc.t.Fatalf("read frame: %v", err)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		lc.t.Fatalf("frame %s: %v", data, err)
	}
	return f
}

// message reads frames up to the next "message" and returns it.
func (lc *liveClient) message() frame {
	lc.t.Helper()
	for {
		if f := lc.read(); f.Type == "message" || f.Type == "error" {
			return f
		}
	}
}

func (lc *liveClient) send(v any) {
	lc.t.Helper()
	data, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lc.conn.Write(ctx, websocket.MessageText, data); err != nil {
		lc.t.Fatal(err)
	}
}

func replyText(f frame) string {
	if len(f.Answer.Replies) == 0 {
		return ""
	}
	return f.Answer.Replies[0].Text
}

// push sends res through app's web channel Sender, as a schedule does.
func push(t *testing.T, ta *testApp, bot, conversation, text string) {
	t.Helper()
	a, _ := ta.channels.Get("web")
	res := &msg.TurnResult{Event: &msg.Event{Bot: bot, Channel: "web", Conversation: conversation}, Conversation: conversation,
		Replies: []msg.Reply{{Text: text}}}
	if err := a.(channels.Sender).Send(context.Background(), nil, res); err != nil {
		t.Fatal(err)
	}
}

// TestWebLiveConnection runs two replicas on one Redis: a socket on one
// gets the replies to what it sends, to what is POSTed to the other, and
// what is pushed on the other; a reconnect with the last id gets what it
// missed, once.
func TestWebLiveConnection(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupWebChat(t, "shop", false)
	alice := userToken(t, a.mint(t, "shop", adminKey, "alice"))

	// Refusals before the upgrade.
	if _, status, err := dialLive(t, a.URL, "shop", "wt1.bad.token", "", nil); err == nil || status != http.StatusUnauthorized {
		t.Fatalf("bad token: %v %d", err, status)
	}
	if _, status, err := dialLive(t, a.URL, "shop", alice, "", http.Header{"Origin": {"https://evil.example"}}); err == nil ||
		status != http.StatusForbidden {
		t.Fatalf("other origin: %v %d", err, status)
	}

	ws, _, err := dialLive(t, a.URL, "shop", alice, "", http.Header{"Origin": {siteOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	ws.send(map[string]any{"type": "message", "text": "hello", "id": "m1"})
	if f := ws.message(); replyText(f) != "echo: hello" || f.ID == "" || f.Answer.Conversation != "alice" {
		t.Fatalf("reply over the socket: %+v", f)
	}
	ws.send(map[string]any{"type": "message", "user": "bob", "text": "x", "id": "m2"})
	if f := ws.message(); f.Type != "error" || f.Code != "forbidden" || f.Ref != "m2" {
		t.Fatalf("another user's message: %+v", f)
	}
	// A POST with the user token to the other replica shows on the socket.
	do(t, "POST", b.URL+"/hooks/shop/web", alice, map[string]any{"text": "by post"}).must(t, http.StatusOK)
	if f := ws.message(); replyText(f) != "echo: by post" {
		t.Fatalf("reply to a POST on the other replica: %+v", f)
	}
	// A push through the other replica's Sender.
	push(t, b, "shop", "alice", "your order shipped")
	seen := ws.message()
	if replyText(seen) != "your order shipped" {
		t.Fatalf("pushed message: %+v", seen)
	}
	// Disconnected: three pushes; a reconnect after the last id seen gets
	// exactly those, in order.
	_ = ws.conn.Close(websocket.StatusNormalClosure, "")
	for i := range 3 {
		push(t, b, "shop", "alice", fmt.Sprintf("missed %d", i))
	}
	again, _, err := dialLive(t, b.URL, "shop", alice, seen.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		got = append(got, replyText(again.message()))
	}
	if fmt.Sprint(got) != "[missed 0 missed 1 missed 2]" {
		t.Fatalf("after reconnect: %v", got)
	}
	push(t, a, "shop", "alice", "live again")
	if f := again.message(); replyText(f) != "live again" {
		t.Fatalf("after the replay: %+v (a replayed message twice?)", f)
	}
	// Another user's conversation is refused.
	bob := userToken(t, a.mint(t, "shop", adminKey, "bob"))
	u := "ws" + strings.TrimPrefix(a.URL, "http") + "/hooks/shop/web/ws?conversation=alice&token=" + bob
	if c, status, err := dialURL(u, nil); err == nil || status != http.StatusForbidden {
		if c != nil {
			_ = c.CloseNow()
		}
		t.Fatalf("bob on alice's conversation: %v %d", err, status)
	}
}

// TestWebLiveConnectionBounds: a conversation holds at most 8 connections
// on a server, a client frame over 80 KB ends its connection, and a
// malformed frame is answered with an error frame.
func TestWebLiveConnectionBounds(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupWebChat(t, "shop", false)
	alice := userToken(t, ta.mint(t, "shop", adminKey, "alice"))
	var open []*liveClient
	for range 8 {
		lc, _, err := dialLive(t, ta.URL, "shop", alice, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, lc)
	}
	if _, status, err := dialLive(t, ta.URL, "shop", alice, "", nil); err == nil || status != http.StatusTooManyRequests {
		t.Fatalf("ninth connection: %v %d", err, status)
	}
	_ = open[0].conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		lc, _, err := dialLive(t, ta.URL, "shop", alice, "", nil)
		if err == nil {
			open[0] = lc
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection's place was not freed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	open[1].send(map[string]any{"type": "nonsense"})
	if f := open[1].read(); f.Type != "error" || f.Code != "bad_request" {
		t.Fatalf("unknown frame: %+v", f)
	}
	// The server may close the connection before the client has written
	// the whole frame: then the write fails (a broken pipe), which is the
	// refusal too; otherwise the close frame says why.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	big, _ := json.Marshal(map[string]any{"type": "message", "text": strings.Repeat("x", 100<<10)})
	werr := open[1].conn.Write(ctx, websocket.MessageText, big)
	for werr == nil {
		if _, _, err := open[1].conn.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Fatalf("oversized frame: connection ended with %v", err)
			}
			break
		}
	}
	if _, status, err := dialLive(t, ta.URL, "shop", alice, "garbage", nil); err == nil || status != http.StatusBadRequest {
		t.Fatalf("bad after: %v %d", err, status)
	}
}

// TestWebLiveConnectionStreams: a message sent over the socket gets
// "typing", the model's text as "delta" frames while the model still
// writes, then the final answer as a "message".
func TestWebLiveConnectionStreams(t *testing.T) {
	gate := make(chan struct{})
	model := llmtest.New(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "Our pizzas are baked in a wood oven.", Gate: gate}
	})
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "streamer", map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "timeout_ms": 10000}, map[string]string{"fallback": streamingHandler})
	ws, _, err := dialLive(t, ta.URL, "streamer", userToken(t, ta.mint(t, "streamer", adminKey, "ann")), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.send(map[string]any{"type": "message", "id": "m1", "text": "how are pizzas made?"})
	if f := ws.read(); f.Type != "typing" || f.Ref != "m1" {
		t.Fatalf("first frame %+v, want typing", f)
	}
	// The model holds the rest until the first piece reached the client.
	if f := ws.read(); f.Type != "delta" || f.Text != "Our" || f.Ref != "m1" {
		t.Fatalf("second frame %+v, want the first delta", f)
	}
	close(gate)
	streamed := "Our"
	f := ws.read()
	for ; f.Type == "delta"; f = ws.read() {
		streamed += f.Text
	}
	if streamed != "Our pizzas are baked in a wood oven." || f.Type != "message" ||
		replyText(f) != "Our pizzas are baked in a wood oven. [AI]" {
		t.Fatalf("streamed %q, then %+v", streamed, f)
	}
}

// TestWebScheduleReachesBrowser: a schedule targeting a web conversation
// pushes its reply to the user's live connection.
func TestWebScheduleReachesBrowser(t *testing.T) {
	ta := startApp(t, appOptions{})
	ta.setupWebChat(t, "shop", false)
	do(t, "PUT", ta.URL+"/v1/bots/shop/intents/Remind", adminKey, `function handle(event, session)
  return "time for your order"
end`).must(t, http.StatusCreated)
	ws, _, err := dialLive(t, ta.URL, "shop", userToken(t, ta.mint(t, "shop", adminKey, "alice")), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	do(t, "PUT", ta.URL+"/v1/bots/shop/schedules/remind", adminKey, map[string]any{"cron": "@every 1s", "intent": "Remind",
		"targets": []map[string]string{{"channel": "web", "conversation": "alice"}}}).must(t, http.StatusOK)
	if f := ws.message(); replyText(f) != "time for your order" {
		t.Fatalf("scheduled push: %+v", f)
	}
}
