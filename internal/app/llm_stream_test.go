package app

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/llm/llmtest"
)

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readEvent reads the next event of an event stream.
func readEvent(t testing.TB, r *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
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
	first := readEvent(t, r)
	if first.name != "delta" || first.data != `{"text":"Our"}` {
		t.Fatalf("first event %+v", first)
	}
	close(gate)
	var streamed strings.Builder
	streamed.WriteString("Our")
	var ev sseEvent
	for ev = readEvent(t, r); ev.name == "delta"; ev = readEvent(t, r) {
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
	if done := readEvent(t, r); done.name != "done" {
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
