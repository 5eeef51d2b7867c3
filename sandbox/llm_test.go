package sandbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/msg"
)

// fakeLLM answers every call with its reply (or err), streaming the reply's
// text in two pieces, and keeps the requests.
type fakeLLM struct {
	mu    sync.Mutex
	reqs  []*LLMRequest
	reply LLMResponse
	err   error
}

func (f *fakeLLM) Chat(_ context.Context, req *LLMRequest) (*LLMResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if req.Stream && req.OnText != nil {
		half := len(f.reply.Text) / 2
		req.OnText(f.reply.Text[:half])
		req.OnText(f.reply.Text[half:])
	}
	r := f.reply
	return &r, f.err
}

// textStream is a msg.Stream that keeps what was written.
type textStream struct{ strings.Builder }

func (s *textStream) Write(text string) { s.WriteString(text) }

var llmBot = LLMSettings{BaseURL: "https://llm.example/v1", Model: "test-model", APIKeySecret: "KEY", TokensPerDay: 1000}

func TestLLMModule(t *testing.T) {
	f := &fakeLLM{reply: LLMResponse{Text: "We open at nine.", FinishReason: "stop", Model: "test-model-1",
		InputTokens: 30, OutputTokens: 7, ToolCalls: []LLMToolCall{{ID: "c1", Name: "hours", Arguments: `{"day":"mon"}`}}}}
	rt := New(Config{LLM: f})
	defer rt.Close()
	src := `function handle(event, session)
  local r, err = llm.chat{
    messages = {{role = "system", content = "Answer briefly."}, {role = "user", content = event.text},
                {role = "assistant", tool_calls = {{id = "c0", name = "hours", arguments = {day = "sun"}}}},
                {role = "tool", tool_call_id = "c0", content = "closed"}},
    model = "big-model", temperature = 0.2, max_tokens = 300, json = true, stream = true, tool_choice = "auto",
    tools = {{name = "hours", description = "Opening hours", parameters = {type = "object", properties = {day = {type = "string"}}}},
             {type = "function", ["function"] = {name = "address"}}},
  }
  assert(r, err)
  assert(r.text == "We open at nine." and r.finish_reason == "stop" and r.model == "test-model-1", r.text)
  assert(r.usage.input_tokens == 30 and r.usage.output_tokens == 7)
  assert(#r.tool_calls == 1 and r.tool_calls[1].name == "hours" and r.tool_calls[1].arguments == '{"day":"mon"}')
  return r.text
end`
	stream := &textStream{}
	c := Call{Program: mustCompile(t, src), Key: testKey, Event: testEvent(), Timeout: testTimeout, LLM: llmBot,
		HTTPAllow: []string{"api.example.com"}}
	res, err := rt.Run(msg.WithStream(context.Background(), stream), c)
	if err != nil || res.Reply.Text != "We open at nine." {
		t.Fatalf("%+v, %v", res.Reply, err)
	}
	if res.LLMCalls != 1 || res.LLMInputTokens != 30 || res.LLMOutputTokens != 7 || res.HTTPCalls != 1 {
		t.Fatalf("metering: %+v", res)
	}
	if inv := NewInvocation(&c, res, nil); inv.LLMCalls != 1 || inv.LLMInput != 30 || inv.LLMOutput != 7 {
		t.Fatalf("invocation %+v", inv)
	}
	if stream.String() != "We open at nine." {
		t.Fatalf("streamed %q", stream.String())
	}
	req := f.reqs[0]
	if req.Bot != testKey.Bot || req.Settings != llmBot || req.Model != "big-model" || *req.Temperature != 0.2 ||
		req.MaxTokens != 300 || !req.JSON || !req.Stream || req.ToolChoice != "auto" || req.MaxAnswerBytes != 256<<10 ||
		len(req.Allow) != 1 {
		t.Fatalf("request %+v", req)
	}
	if len(req.Messages) != 4 || req.Messages[1].Content != testEvent().Text || req.Messages[2].ToolCalls[0].Arguments != `{"day":"sun"}` ||
		req.Messages[3].ToolCallID != "c0" {
		t.Fatalf("messages %+v", req.Messages)
	}
	if len(req.Tools) != 2 || req.Tools[0].Name != "hours" || string(req.Tools[0].Parameters) != `{"properties":{"day":{"type":"string"}},"type":"object"}` ||
		req.Tools[1].Name != "address" {
		t.Fatalf("tools %+v", req.Tools)
	}
}

func TestLLMModuleFailures(t *testing.T) {
	f := &fakeLLM{err: errors.New("budget exhausted")}
	rt := New(Config{LLM: f})
	defer rt.Close()
	run := func(src string, c Call) (Result, error) {
		c.LLM = llmBot
		return runWith(t, rt, "function handle(event, session) "+src+" end", c)
	}
	// Expected failures return nil and the message.
	res, err := run(`local r, err = llm.chat{messages = {{role = "user", content = "hi"}}} assert(r == nil) return err`, Call{})
	if err != nil || res.Reply.Text != "budget exhausted" {
		t.Fatalf("%+v, %v", res.Reply, err)
	}
	f.err = context.DeadlineExceeded
	res, _ = run(`local r, err = llm.chat{messages = {{role = "user", content = "hi"}}} return err`, Call{})
	if res.Reply.Text != "llm: timed out" {
		t.Fatalf("deadline: %q", res.Reply.Text)
	}
	res, _ = runWith(t, rt, `function handle() local r, err = llm.chat{messages = {{role = "user", content = "hi"}}} return err end`, Call{})
	if !strings.Contains(res.Reply.Text, "llm_base_url") {
		t.Fatalf("no base url: %q", res.Reply.Text)
	}
	none := New(Config{})
	defer none.Close()
	res, _ = runWith(t, none, `function handle() local r, err = llm.chat{messages = {{role = "user", content = "hi"}}} return err end`, Call{LLM: llmBot})
	if res.Reply.Text != "llm: not available" {
		t.Fatalf("no client: %q", res.Reply.Text)
	}

	// Bad arguments raise.
	for _, bad := range []string{
		`llm.chat{}`,
		`llm.chat{messages = {}}`,
		`llm.chat{messages = {{role = "boss", content = "x"}}}`,
		`llm.chat{messages = {{role = "user", content = {}}}}`,
		`llm.chat{messages = {{role = "tool", content = "x"}}}`,
		`llm.chat{messages = {{role = "user", content = "x"}}, temperature = 3}`,
		`llm.chat{messages = {{role = "user", content = "x"}}, max_tokens = 0.5}`,
		`llm.chat{messages = {{role = "user", content = "x"}}, model = 5}`,
		`llm.chat{messages = {{role = "user", content = "x"}}, tools = {{name = "bad name"}}}`,
		`llm.chat("hi")`,
	} {
		if _, err := run(bad, Call{}); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	// Caps: the request's size, and llm calls count as http requests.
	_, err = run(`local big = string.rep("x", 65536)
  local m = {} for i = 1, 5 do m[i] = {role = "user", content = big} end
  llm.chat{messages = m}`, Call{})
	_ = wantScriptError(t, err, KindLimit, "larger than 256 KiB")
	f.err = nil
	_, err = run(`for i = 1, 3 do llm.chat{messages = {{role = "user", content = "hi"}}} end`, Call{MaxHTTPCalls: 2})
	_ = wantScriptError(t, err, KindLimit, "llm: more than 2 requests in one turn")
	_, err = runWith(t, rt, `function handle() local r = http.get("https://x.example") llm.chat{messages = {{role = "user", content = "hi"}}} end`,
		Call{MaxHTTPCalls: 1, LLM: llmBot})
	_ = wantScriptError(t, err, KindLimit, "llm: more than 1 requests in one turn")
	// Not available at upload.
	if _, err := Compile("top.lua", `llm.chat{messages = {{role = "user", content = "hi"}}} function handle() end`); err == nil {
		t.Error("llm.chat ran at upload")
	}
}

// TestLLMAnswerCharged: the model's answer counts toward the call's
// allocation estimate, the figure by which the heap guard picks the call
// to stop, as an http body does.
func TestLLMAnswerCharged(t *testing.T) {
	prog := mustCompile(t, `function handle(e, s)
  local r = llm.chat{messages = {{role = "user", content = "hi"}}}
  return "ok"
end`)
	estimate := func(answer string) int64 {
		v := newVM(vmConfig{maxLogLines: 1, llm: &fakeLLM{reply: LLMResponse{Text: answer, Model: "m"}}, maxHTTPBody: 256 << 10})
		defer v.close()
		res, _, err := v.run(context.Background(), &Call{Key: testKey, Program: prog, Event: testEvent(), LLM: llmBot},
			testTimeout, limits{maxSessionBytes: 1 << 10, maxReplyBytes: 1 << 10})
		if err != nil || res.Reply.Text != "ok" {
			t.Fatalf("%+v, %v", res.Reply, err)
		}
		return v.dl.built
	}
	small, large := estimate("x"), estimate(strings.Repeat("x", 200<<10))
	if large-small < 200<<10-1 { // the answers differ by 200 KiB less one byte
		t.Fatalf("a 200 KiB answer adds %d bytes to the estimate (%d -> %d)", large-small, small, large)
	}
}
