package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/egress"
	"github.com/parleyhq/parley/internal/llm/llmtest"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
)

// cannedOpener answers every request with the same body, from memory: the
// model and the network take no time, so what is measured is Parley's own
// work on a call.
type cannedOpener struct {
	body        []byte
	contentType string
}

func (o cannedOpener) Open(_ context.Context, _ egress.Scope, req *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, req.Body)
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {o.contentType}},
		Body: io.NopCloser(bytes.NewReader(o.body))}, nil
}

// streamBody is an event stream of an answer in n chunks of one word, with
// the usage chunk and [DONE], as the API writes it.
func streamBody(n int) []byte {
	var b bytes.Buffer
	chunk := func(delta string, finish any) {
		raw, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
			"model": "test-model", "choices": []any{map[string]any{"index": 0, "delta": json.RawMessage(delta),
				"logprobs": nil, "finish_reason": finish}}, "usage": nil})
		fmt.Fprintf(&b, "data: %s\n\n", raw)
	}
	chunk(`{"role":"assistant","content":""}`, nil)
	for i := range n {
		chunk(fmt.Sprintf(`{"content":" word%d"}`, i), nil)
	}
	chunk(`{}`, "stop")
	raw, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
		"model": "test-model", "choices": []any{}, "usage": map[string]int{"prompt_tokens": 120, "completion_tokens": n, "total_tokens": 120 + n}})
	fmt.Fprintf(&b, "data: %s\n\ndata: [DONE]\n\n", raw)
	return b.Bytes()
}

func completionBody(n int) []byte {
	var text strings.Builder
	for i := range n {
		fmt.Fprintf(&text, " word%d", i)
	}
	raw, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "test-model",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text.String()},
			"finish_reason": "stop"}}, "usage": map[string]int{"prompt_tokens": 120, "completion_tokens": n}})
	return raw
}

// faqHandler is a handler as an FAQ bot writes it: a system prompt, the
// user's text, and the answer returned.
const benchHandler = `local FAQ = string.rep("Delivery: within 5 km, free over 20 euros. ", 20)
function handle(event, session)
  local r, err = llm.chat{messages = {{role = "system", content = FAQ}, {role = "user", content = event.text}},
                          max_tokens = 300, temperature = 0.2, stream = STREAM}
  if not r then error(err) end
  return r.text
end`

// discard is a msg.Stream that drops what it is given.
type discard struct{ n int }

func (d *discard) Write(text string) { d.n += len(text) }

// BenchmarkLLMChatOverhead is Parley's own work for one handler call that
// makes one llm.chat call whose answer has 60 words, the model and the
// network taking no time: the Lua arguments, the request's JSON, reading the
// answer (60 server-sent events when streamed, each handed to the turn's
// stream), the Lua result and the metering. overhead-us/call subtracts the
// same handler's call without llm.chat.
func BenchmarkLLMChatOverhead(b *testing.B) {
	for _, tc := range []struct {
		name   string
		stream bool
		opener cannedOpener
	}{
		{"stream", true, cannedOpener{streamBody(60), "text/event-stream"}},
		{"complete", false, cannedOpener{completionBody(60), "application/json"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			client := New(Config{HTTP: tc.opener})
			rt := sandbox.New(sandbox.Config{LLM: client})
			defer rt.Close()
			src := strings.ReplaceAll(benchHandler, "STREAM", fmt.Sprint(tc.stream))
			prog, err := sandbox.Compile("faq.lua", src)
			if err != nil {
				b.Fatal(err)
			}
			base, err := sandbox.Compile("base.lua", `local FAQ = string.rep("Delivery: within 5 km, free over 20 euros. ", 20)
function handle(event, session) return event.text end`)
			if err != nil {
				b.Fatal(err)
			}
			settings := sandbox.LLMSettings{BaseURL: "https://llm.example/v1", Model: "test-model"}
			ev := &msg.Event{ID: "1", Bot: "faq", Channel: "web", User: "u", Conversation: "u", Text: "Do you deliver to Via Roma?"}
			ctx := msg.WithStream(context.Background(), &discard{})
			call := func(p *sandbox.Program) {
				res, err := rt.Run(ctx, sandbox.Call{Key: sandbox.PoolKey{Bot: "faq", Intent: p.Name(), Version: 1}, Program: p,
					Event: ev, Timeout: 5 * time.Second, LLM: settings})
				if err != nil || res.Reply.Text == "" {
					b.Fatalf("%+v, %v", res.Reply, err)
				}
			}
			const baseRuns = 2000
			start := time.Now()
			for range baseRuns {
				call(base)
			}
			baseline := time.Since(start) / baseRuns
			b.ResetTimer()
			start = time.Now()
			for b.Loop() {
				call(prog)
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64((per-baseline).Nanoseconds())/1000, "overhead-us/call")
		})
	}
}

// BenchmarkLLMChatLoopback is one llm.chat call through egress to the fake
// API on the loopback interface, streamed: Parley's work plus the fake
// server's and the kernel's, a bound from above on the overhead.
func BenchmarkLLMChatLoopback(b *testing.B) {
	srv := llmtest.New(b, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: strings.TrimSpace(strings.Repeat("word ", 60))}
	})
	eg := egress.New(egress.Config{})
	defer eg.Close()
	client := New(Config{HTTP: eg})
	req := &sandbox.LLMRequest{Bot: "faq", Allow: []string{srv.Host()}, Stream: true, MaxAnswerBytes: 256 << 10,
		Settings: sandbox.LLMSettings{BaseURL: srv.BaseURL(), Model: "test-model"},
		Messages: []sandbox.LLMMessage{{Role: "user", Content: "Do you deliver?"}}, OnText: func(string) {}}
	for b.Loop() {
		if _, err := client.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
