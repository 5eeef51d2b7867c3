package app

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/llm/llmtest"
	"github.com/parleyhq/parley/internal/testredis"
)

// webEvent is one server-sent event.
type webEvent struct{ name, data string }

// readWebEvent reads the next event of an event stream.
func readWebEvent(t testing.TB, r *bufio.Reader) webEvent {
	t.Helper()
	var ev webEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream ended: %v (event so far %+v)", err, ev)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				return ev
			}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// streamingHandler streams the model's answer and returns it with a mark,
// so that the final reply differs from what was streamed.
const streamingHandler = `function handle(event, session)
  local r, err = llm.chat{messages = {{role = "user", content = event.text}}, stream = true}
  if not r then return "no answer: " .. err end
  return {text = r.text .. " [AI]", options = {"Thanks"}}
end`

// TestWebStreamsLLMReply: with Accept: text/event-stream the web channel
// sends the model's text while the model is still writing, then the usual
// answer as the reply event, then done; without it the answer is the usual
// JSON.
func TestWebStreamsLLMReply(t *testing.T) {
	gate := make(chan struct{})
	model := llmtest.New(t, func(r *llmtest.Request) llmtest.Reply {
		if r.LastUser() == "plain" {
			return llmtest.Reply{Text: "Plain answer."}
		}
		return llmtest.Reply{Text: "Our pizzas are baked in a wood oven.", Gate: gate}
	})
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "streamer", map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "timeout_ms": 10000}, map[string]string{"fallback": streamingHandler})

	body := `{"user": "ann", "text": "how are pizzas made?"}`
	req, err := http.NewRequest(http.MethodPost, ta.URL+"/hooks/streamer/web", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+webToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	// The model holds the rest of its answer until the first piece reached
	// the client: the text is streamed, not sent at the end.
	first := readWebEvent(t, r)
	if first.name != "delta" || first.data != `{"text":"Our"}` {
		t.Fatalf("first event %+v", first)
	}
	close(gate)
	var streamed strings.Builder
	streamed.WriteString("Our")
	var ev webEvent
	for ev = readWebEvent(t, r); ev.name == "delta"; ev = readWebEvent(t, r) {
		var d struct{ Text string }
		if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
			t.Fatalf("delta %q: %v", ev.data, err)
		}
		streamed.WriteString(d.Text)
	}
	if streamed.String() != "Our pizzas are baked in a wood oven." {
		t.Fatalf("streamed %q", streamed.String())
	}
	if ev.name != "reply" {
		t.Fatalf("after the deltas: %+v", ev)
	}
	var ans struct {
		Conversation string `json:"conversation"`
		Replies      []struct {
			Text    string   `json:"text"`
			Options []string `json:"options"`
		} `json:"replies"`
	}
	if err := json.Unmarshal([]byte(ev.data), &ans); err != nil {
		t.Fatalf("reply %q: %v", ev.data, err)
	}
	if ans.Conversation != "ann" || len(ans.Replies) != 1 || ans.Replies[0].Text != "Our pizzas are baked in a wood oven. [AI]" ||
		len(ans.Replies[0].Options) != 1 {
		t.Fatalf("reply %s", ev.data)
	}
	if done := readWebEvent(t, r); done.name != "done" {
		t.Fatalf("last event %+v", done)
	}

	// Without the header: the usual JSON answer.
	plain := ta.say(t, "streamer", map[string]any{"user": "bob", "text": "plain"}).must(t, http.StatusOK)
	if got := firstReply(t, plain); got != "Plain answer. [AI]" || !strings.HasPrefix(plain.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("plain answer %s (%s)", plain.Raw, plain.Header.Get("Content-Type"))
	}

	// An SSE caller whose turn fails before anything was streamed gets the
	// usual error answer.
	req, _ = http.NewRequest(http.MethodPost, ta.URL+"/hooks/streamer/web", strings.NewReader(`{"user": "x"}`))
	req.Header.Set("Authorization", "Bearer "+webToken)
	req.Header.Set("Accept", "text/event-stream")
	bad, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad request: status %d", bad.StatusCode)
	}
}

// chatAPI is a chat platform's API for streamed replies: it records each
// call by method and answers as Telegram and Slack do.
type chatAPI struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []chatCall
}

type chatCall struct {
	method string
	body   map[string]any
}

func newChatAPI(t *testing.T) *chatAPI {
	c := &chatAPI{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		c.mu.Lock()
		c.calls = append(c.calls, chatCall{method, body})
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"result":{"message_id":77},"channel":"D1","ts":"1700000000.000200"}`)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *chatAPI) snapshot() []chatCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chatCall(nil), c.calls...)
}

// waitFor waits until a call of method was made and returns the calls so far.
func (c *chatAPI) waitFor(t *testing.T, method string) []chatCall {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		calls := c.snapshot()
		for _, call := range calls {
			if call.method == method {
				return calls
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s call; calls %v", method, calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChatChannelsStreamLLMReply: on Telegram the model's answer shows in
// one message as it is written (sent before the model finished, then
// edited), and the final edit is the handler's reply; on Slack it streams
// with chat.startStream and ends with chat.stopStream.
func TestChatChannelsStreamLLMReply(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	model := llmtest.New(t, func(r *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "Our pizzas are baked in a wood oven.", Gate: gate}
	})
	ta := startChatApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	api := newChatAPI(t)
	settings := map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "timeout_ms": 10000}
	handler := `function handle(event, session)
  local r, err = llm.chat{messages = {{role = "user", content = event.text}}, stream = true}
  if not r then return "no answer: " .. err end
  return r.text .. " Enjoy!"
end`
	for _, ch := range []struct{ bot, channel string }{{"tgbot", "telegram"}, {"slbot", "slack"}} {
		do(t, "PUT", ta.URL+"/v1/bots/"+ch.bot, adminKey, settings).must(t, http.StatusCreated)
		do(t, "PUT", ta.URL+"/v1/bots/"+ch.bot+"/intents/fallback", adminKey, handler).must(t, http.StatusCreated)
	}
	do(t, "PUT", ta.URL+"/v1/bots/tgbot/channels/telegram", adminKey, map[string]string{"secret_token": telegramSecret,
		"bot_token": telegramToken, "api_base_url": api.srv.URL}).must(t, http.StatusOK)
	do(t, "PUT", ta.URL+"/v1/bots/slbot/channels/slack", adminKey, map[string]string{"signing_secret": slackSecret,
		"bot_token": slackToken, "api_base_url": api.srv.URL + "/api"}).must(t, http.StatusOK)

	// Telegram: the preview is sent while the model holds the rest back.
	postTelegram(t, ta.URL+"/hooks/tgbot/telegram", `{"update_id":900,"message":{"message_id":1,"from":{"id":42,"is_bot":false},`+
		`"chat":{"id":42,"type":"private"},"date":1700000000,"text":"how are pizzas made?"}}`, telegramSecret).must(t, http.StatusOK)
	calls := api.waitFor(t, "sendMessage")
	if calls[0].body["text"] != "Our" {
		t.Fatalf("preview %v", calls[0].body)
	}
	release()
	final := "Our pizzas are baked in a wood oven. Enjoy!"
	deadline := time.Now().Add(15 * time.Second)
	for {
		calls = api.snapshot()
		last := calls[len(calls)-1]
		if last.method == "editMessageText" && last.body["text"] == final {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("final edit missing; calls %v", calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sends := 0
	for _, c := range calls {
		if c.method == "sendMessage" {
			sends++
		}
		if c.method == "editMessageText" && c.body["message_id"] != float64(77) {
			t.Fatalf("edit of another message: %v", c.body)
		}
	}
	if sends != 1 {
		t.Fatalf("%d messages sent, want the one preview; calls %v", sends, calls)
	}

	// Slack: a streaming message, stopped with what the reply adds.
	n := len(api.snapshot())
	postSlack(t, ta.URL+"/hooks/slbot/slack", "application/json", slackMessage("Ev900", "D1", "U1", "how are pizzas made?"),
		slackSecret, 0).must(t, http.StatusOK)
	api.waitFor(t, "chat.stopStream")
	var streamed strings.Builder
	for _, c := range api.snapshot()[n:] {
		if !strings.HasPrefix(c.method, "chat.") {
			continue
		}
		if c.method == "chat.postMessage" {
			t.Fatalf("an ordinary message was posted: %v", c.body)
		}
		if txt, ok := c.body["markdown_text"].(string); ok {
			streamed.WriteString(txt)
		}
	}
	if streamed.String() != final {
		t.Fatalf("slack streamed %q", streamed.String())
	}
}

// BenchmarkWebFirstDelta measures the time from the model's first chunk of
// text (written and flushed by the fake API) to the web client's first
// delta event: the API's chunk read by internal/llm through egress, handed
// to the handler's stream, written by the gateway as a server-sent event,
// and read by the client, all on the loopback interface. The model sends
// its next chunk 20 ms later, so only the first is in flight.
func BenchmarkWebFirstDelta(b *testing.B) {
	model := llmtest.New(b, func(r *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "We open at nine and close at eleven.", ChunkDelay: 20 * time.Millisecond}
	})
	ta := serveApp(b, testConfig(b, appOptions{}), testLoggerB())
	ta.setupBot(b, "bench", map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "timeout_ms": 10000}, map[string]string{"fallback": streamingHandler})
	client := &http.Client{}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body := `{"user": "u` + strconv.Itoa(i) + `", "text": "when do you open?"}`
		req, _ := http.NewRequest(http.MethodPost, ta.URL+"/hooks/bench/web", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+webToken)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(resp.Body)
		if ev := readWebEvent(b, r); ev.name != "delta" {
			b.Fatalf("first event %+v", ev)
		}
		got := time.Now()
		_, _ = io.Copy(io.Discard, r)
		resp.Body.Close()
		firsts := model.FirstChunks()
		lat = append(lat, got.Sub(firsts[len(firsts)-1]))
	}
	b.StopTimer()
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(sum/time.Duration(len(lat))), "mean-ms")
	b.ReportMetric(0, "ns/op")
}
