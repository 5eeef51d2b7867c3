package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/egress"
	"github.com/parleyhq/parley/internal/llm/llmtest"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sandbox"
)

// fakeSecrets holds secrets per bot and name.
type fakeSecrets map[string]string

func (f fakeSecrets) Secret(_ context.Context, bot, name string) (string, error) {
	v, ok := f[bot+"/"+name]
	if !ok {
		return "", fmt.Errorf("%s: %w", name, sandbox.ErrSecretNotSet)
	}
	return v, nil
}

// fakeBudget counts tokens in memory.
type fakeBudget struct {
	mu    sync.Mutex
	used  map[string]int64
	added chan int64
}

func newFakeBudget() *fakeBudget {
	return &fakeBudget{used: map[string]int64{}, added: make(chan int64, 16)}
}

func (b *fakeBudget) Used(_ context.Context, bot string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used[bot], nil
}

func (b *fakeBudget) Add(_ context.Context, bot string, n int64) error {
	b.mu.Lock()
	b.used[bot] += n
	b.mu.Unlock()
	b.added <- n
	return nil
}

// meterCall is one ObserveLLM call.
type meterCall struct {
	bot, model, outcome string
	in, out             int
}

type fakeMeter struct {
	mu    sync.Mutex
	calls []meterCall
}

func (m *fakeMeter) ObserveLLM(bot, model, outcome string, in, out int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, meterCall{bot, model, outcome, in, out})
}

func (m *fakeMeter) last(t *testing.T) meterCall {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.calls) == 0 {
		t.Fatal("no call metered")
	}
	return m.calls[len(m.calls)-1]
}

// harness is a client against a fake API, with the bot's settings.
type harness struct {
	srv    *llmtest.Server
	client *Client
	budget *fakeBudget
	meter  *fakeMeter
	waits  []time.Duration
}

func newHarness(t *testing.T, handler func(*llmtest.Request) llmtest.Reply) *harness {
	t.Helper()
	h := &harness{srv: llmtest.New(t, handler), budget: newFakeBudget(), meter: &fakeMeter{}}
	eg := egress.New(egress.Config{})
	t.Cleanup(eg.Close)
	h.client = New(Config{HTTP: eg, Secrets: fakeSecrets{"faq/OPENAI_KEY": "sk-test-123"}, Budget: h.budget, Meter: h.meter})
	h.client.sleep = func(ctx context.Context, d time.Duration) error {
		h.waits = append(h.waits, d)
		return ctx.Err()
	}
	return h
}

func (h *harness) request(msgs ...string) *sandbox.LLMRequest {
	req := &sandbox.LLMRequest{Bot: "faq", Allow: []string{h.srv.Host()}, MaxAnswerBytes: 256 << 10,
		Settings: sandbox.LLMSettings{BaseURL: h.srv.BaseURL(), APIKeySecret: "OPENAI_KEY", Model: "test-model"}}
	req.Messages = append(req.Messages, sandbox.LLMMessage{Role: "system", Content: "You answer questions."})
	for _, m := range msgs {
		req.Messages = append(req.Messages, sandbox.LLMMessage{Role: "user", Content: m})
	}
	return req
}

func chat(t *testing.T, h *harness, req *sandbox.LLMRequest) (*sandbox.LLMResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.client.Chat(ctx, req)
}

func TestChatCompletion(t *testing.T) {
	h := newHarness(t, func(r *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "Opening hours are 9 to 5.", InputTokens: 31, OutputTokens: 9, Model: "test-model-2026"}
	})
	req := h.request("When are you open?")
	temp := 0.2
	req.Temperature, req.MaxTokens, req.JSON = &temp, 300, true
	resp, err := chat(t, h, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Opening hours are 9 to 5." || resp.FinishReason != "stop" || resp.Model != "test-model-2026" ||
		resp.InputTokens != 31 || resp.OutputTokens != 9 || resp.ToolCalls != nil {
		t.Fatalf("answer %+v", resp)
	}
	got := h.srv.Requests()[0]
	if got.Header.Get("Authorization") != "Bearer sk-test-123" || got.Model != "test-model" || got.Stream ||
		got.MaxTokens != 300 || got.MaxCompletionTokens != 0 || *got.Temperature != 0.2 ||
		string(got.ResponseFormat) != `{"type":"json_object"}` || len(got.Messages) != 2 ||
		got.Messages[1].Text() != "When are you open?" || got.Messages[0].Role != "system" {
		t.Fatalf("request %s, headers %v", got.Body, got.Header)
	}
	if m := h.meter.last(t); m != (meterCall{"faq", "test-model-2026", OutcomeOK, 31, 9}) {
		t.Fatalf("metered %+v", m)
	}
}

func TestChatStream(t *testing.T) {
	for _, choicesNull := range []bool{false, true} {
		h := newHarness(t, func(r *llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Text: "We open at nine and close at five.", InputTokens: 20, OutputTokens: 8, ChoicesNull: choicesNull}
		})
		req := h.request("When are you open?")
		req.Stream = true
		var pieces []string
		req.OnText = func(s string) { pieces = append(pieces, s) }
		resp, err := chat(t, h, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "We open at nine and close at five." || strings.Join(pieces, "") != resp.Text || len(pieces) != 8 {
			t.Fatalf("text %q from pieces %q", resp.Text, pieces)
		}
		if resp.InputTokens != 20 || resp.OutputTokens != 8 || resp.FinishReason != "stop" {
			t.Fatalf("answer %+v", resp)
		}
		got := h.srv.Requests()[0]
		if !got.Stream || got.StreamOptions == nil || !got.StreamOptions.IncludeUsage ||
			got.Header.Get("Accept") != "text/event-stream" {
			t.Fatalf("request %s", got.Body)
		}
	}
}

func TestChatToolCalls(t *testing.T) {
	calls := []llmtest.ToolCall{
		{ID: "call_1", Name: "get_hours", Arguments: `{"day":"monday"}`},
		{ID: "call_2", Name: "get_address", Arguments: `{"city":"Rome","zip":"00100"}`},
	}
	for _, stream := range []bool{false, true} {
		h := newHarness(t, func(r *llmtest.Request) llmtest.Reply { return llmtest.Reply{ToolCalls: calls} })
		req := h.request("When are you open on Monday, and where?")
		req.Stream = stream
		req.Tools = []sandbox.LLMTool{{Name: "get_hours", Description: "Opening hours of a day",
			Parameters: []byte(`{"type":"object","properties":{"day":{"type":"string"}},"required":["day"]}`)}}
		req.ToolChoice = "get_hours"
		// A tool round replayed: the assistant's call, then the tool's answer.
		req.Messages = append(req.Messages,
			sandbox.LLMMessage{Role: "assistant", ToolCalls: []sandbox.LLMToolCall{{ID: "call_0", Name: "get_hours", Arguments: `{"day":"sunday"}`}}},
			sandbox.LLMMessage{Role: "tool", ToolCallID: "call_0", Content: "closed"})
		resp, err := chat(t, h, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.FinishReason != "tool_calls" || len(resp.ToolCalls) != 2 {
			t.Fatalf("stream %v: answer %+v", stream, resp)
		}
		for i, c := range calls {
			if got := resp.ToolCalls[i]; got.ID != c.ID || got.Name != c.Name || got.Arguments != c.Arguments {
				t.Errorf("stream %v: call %d = %+v, want %+v", stream, i, got, c)
			}
		}
		var body struct {
			Tools      []map[string]any `json:"tools"`
			ToolChoice map[string]any   `json:"tool_choice"`
			Messages   []map[string]any `json:"messages"`
		}
		if err := json.Unmarshal(h.srv.Requests()[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		fn, _ := body.Tools[0]["function"].(map[string]any)
		if body.Tools[0]["type"] != "function" || fn["name"] != "get_hours" || fn["parameters"] == nil ||
			body.ToolChoice["type"] != "function" {
			t.Fatalf("tools sent: %s", h.srv.Requests()[0].Body)
		}
		asst := body.Messages[2]
		tc, _ := asst["tool_calls"].([]any)
		if asst["content"] != nil || len(tc) != 1 || body.Messages[3]["tool_call_id"] != "call_0" {
			t.Fatalf("tool round sent: %s", h.srv.Requests()[0].Body)
		}
	}
}

func TestChatRetries(t *testing.T) {
	var mu sync.Mutex
	n := 0
	h := newHarness(t, func(r *llmtest.Request) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch n {
		case 1:
			return llmtest.Reply{Status: 429, ErrorType: "requests", ErrorCode: "rate_limit_exceeded",
				ErrorMessage: "Rate limit reached", RetryAfter: "2"}
		case 2:
			return llmtest.Reply{Status: 503, ErrorMessage: "overloaded"}
		}
		return llmtest.Reply{Text: "ok"}
	})
	resp, err := chat(t, h, h.request("hi"))
	if err != nil || resp.Text != "ok" {
		t.Fatalf("%+v, %v", resp, err)
	}
	if len(h.waits) != 2 || h.waits[0] != 2*time.Second || h.waits[1] < 750*time.Millisecond || h.waits[1] > time.Second {
		t.Fatalf("waits %v: want Retry-After's 2s, then a backoff", h.waits)
	}

	// A wait past the turn's deadline is not waited: the call fails at once.
	h = newHarness(t, func(r *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Status: 429, ErrorCode: "rate_limit_exceeded", ErrorMessage: "slow down", RetryAfter: "20"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = h.client.Chat(ctx, h.request("hi"))
	if err == nil || !strings.Contains(err.Error(), "HTTP 429 rate_limit_exceeded: slow down") || len(h.waits) != 0 ||
		len(h.srv.Requests()) != 1 {
		t.Fatalf("err %v, waits %v, requests %d", err, h.waits, len(h.srv.Requests()))
	}
	if m := h.meter.last(t); m.outcome != OutcomeError {
		t.Fatalf("metered %+v", m)
	}

	// Refusals that a retry cannot fix are not retried.
	for _, rep := range []llmtest.Reply{
		{Status: 400, ErrorType: "invalid_request_error", ErrorMessage: "bad model"},
		{Status: 429, ErrorCode: "insufficient_quota", ErrorMessage: "You exceeded your current quota"},
		{Status: 401, ErrorCode: "invalid_api_key", ErrorMessage: "Incorrect API key provided"},
	} {
		h := newHarness(t, func(*llmtest.Request) llmtest.Reply { return rep })
		_, err := chat(t, h, h.request("hi"))
		if err == nil || !strings.Contains(err.Error(), rep.ErrorMessage) || len(h.srv.Requests()) != 1 {
			t.Errorf("%d %s: err %v after %d requests", rep.Status, rep.ErrorCode, err, len(h.srv.Requests()))
		}
	}
}

func TestChatRefusals(t *testing.T) {
	h := newHarness(t, func(*llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "ok"} })

	// The secret is not set.
	req := h.request("hi")
	req.Settings.APIKeySecret = "MISSING"
	if _, err := chat(t, h, req); err == nil || err.Error() != "no API key: secret MISSING is not set" {
		t.Fatalf("missing secret: %v", err)
	}
	noSecrets := New(Config{HTTP: egress.New(egress.Config{})})
	if _, err := noSecrets.Chat(context.Background(), h.request("hi")); err == nil ||
		err.Error() != "no API key: secret OPENAI_KEY is not set" {
		t.Fatalf("no secret store: %v", err)
	}
	// No model.
	req = h.request("hi")
	req.Settings.Model = ""
	if _, err := chat(t, h, req); err == nil || !strings.Contains(err.Error(), "no model") {
		t.Fatalf("no model: %v", err)
	}
	// The model API's loopback address is not named in http_allow.
	req = h.request("hi")
	req.Allow = nil
	if _, err := chat(t, h, req); err == nil || !strings.Contains(err.Error(), "non-public") {
		t.Fatalf("private address: %v", err)
	}
	if n := len(h.srv.Requests()); n != 0 {
		t.Fatalf("%d requests reached the API", n)
	}
	// Without a key secret no Authorization is sent (a local server).
	req = h.request("hi")
	req.Settings.APIKeySecret = ""
	if _, err := chat(t, h, req); err != nil || h.srv.Requests()[0].Header.Get("Authorization") != "" {
		t.Fatalf("keyless call: %v, %v", err, h.srv.Requests()[0].Header)
	}
}

// TestChatErrorsHideKey: an API or proxy that quotes the key in its
// refusal, or in an error event of a stream, does not hand it to the
// script: the message shows *** instead.
func TestChatErrorsHideKey(t *testing.T) {
	for _, rep := range []llmtest.Reply{
		{Status: 401, ErrorCode: "invalid_api_key", ErrorMessage: "Invalid key sk-test-123 for this proxy"},
		{Text: "one two", StreamError: "upstream refused key sk-test-123"},
	} {
		h := newHarness(t, func(*llmtest.Request) llmtest.Reply { return rep })
		req := h.request("hi")
		req.Stream = rep.StreamError != ""
		_, err := chat(t, h, req)
		if err == nil || strings.Contains(err.Error(), "sk-test-123") || !strings.Contains(err.Error(), "key ***") {
			t.Errorf("%+v: err %v", rep, err)
		}
	}
}

func TestChatBudget(t *testing.T) {
	h := newHarness(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "ok", InputTokens: 70, OutputTokens: 40}
	})
	req := h.request("hi")
	req.Settings.TokensPerDay = 200
	for i := range 2 {
		if _, err := chat(t, h, req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		select {
		case n := <-h.budget.added:
			if n != 110 {
				t.Fatalf("counted %d tokens, want 110", n)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("tokens never counted")
		}
	}
	// 220 tokens used of 200: the third call is refused before it is sent.
	if _, err := chat(t, h, req); !errors.Is(err, ErrBudget) || err.Error() != "budget exhausted" {
		t.Fatalf("over budget: %v", err)
	}
	if n := len(h.srv.Requests()); n != 2 {
		t.Fatalf("%d requests sent, want 2", n)
	}
	if m := h.meter.last(t); m.outcome != OutcomeRefused {
		t.Fatalf("metered %+v", m)
	}
}

func TestChatFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply llmtest.Reply
		max   int
		want  string
	}{
		{"cut", llmtest.Reply{Text: "one two three four", CutAfter: 3}, 0, "stream ended early"},
		{"error event", llmtest.Reply{Text: "one two", StreamError: "The server had an error"}, 0, "The server had an error"},
		{"too large", llmtest.Reply{Text: strings.Repeat("word ", 100)}, 64, "larger than"},
	} {
		h := newHarness(t, func(*llmtest.Request) llmtest.Reply { return tc.reply })
		req := h.request("hi")
		req.Stream = true
		if tc.max > 0 {
			req.MaxAnswerBytes = tc.max
		}
		var streamed strings.Builder
		req.OnText = func(s string) { streamed.WriteString(s) }
		resp, err := chat(t, h, req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
			continue
		}
		if resp == nil || resp.Text != streamed.String() {
			t.Errorf("%s: partial answer %+v, streamed %q", tc.name, resp, streamed.String())
		}
	}
}

// TestChatDeadline: a model slower than the turn's deadline ends the call
// at the deadline, streamed text kept.
func TestChatDeadline(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	h := newHarness(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "first second third", Gate: gate}
	})
	req := h.request("hi")
	req.Stream = true
	var streamed strings.Builder
	req.OnText = func(s string) { streamed.WriteString(s) }
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := h.client.Chat(ctx, req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("returned after %v", el)
	}
	if resp == nil || resp.Text != "first" || streamed.String() != "first" {
		t.Fatalf("partial %+v, streamed %q", resp, streamed.String())
	}
	if m := h.meter.last(t); m.outcome != OutcomeTimeout {
		t.Fatalf("metered %+v", m)
	}
}

// TestChatCancelledIsTimeout: a call whose context is cancelled while the
// answer streams (as the sandbox does when it stops a handler at its
// deadline) is metered as a timeout, not as an error of the API.
func TestChatCancelledIsTimeout(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	h := newHarness(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "first second third", Gate: gate}
	})
	req := h.request("hi")
	req.Stream = true
	ctx, cancel := context.WithCancel(context.Background())
	req.OnText = func(string) { cancel() }
	if _, err := h.client.Chat(ctx, req); err == nil {
		t.Fatal("a cancelled call succeeded")
	}
	if m := h.meter.last(t); m.outcome != OutcomeTimeout {
		t.Fatalf("metered %+v", m)
	}
}

// TestOpenAIHostGetsMaxCompletionTokens: api.openai.com gets
// max_completion_tokens, other servers max_tokens.
func TestOpenAIHostGetsMaxCompletionTokens(t *testing.T) {
	req := &sandbox.LLMRequest{MaxTokens: 50, Messages: []sandbox.LLMMessage{{Role: "user", Content: "hi"}}}
	b := newRequestBody(req, "m", "api.openai.com")
	if b.MaxCompletionTokens != 50 || b.MaxTokens != 0 {
		t.Fatalf("openai: %+v", b)
	}
	b = newRequestBody(req, "m", "127.0.0.1")
	if b.MaxTokens != 50 || b.MaxCompletionTokens != 0 {
		t.Fatalf("other: %+v", b)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After-Ms": "120", "Retry-After": "3"}, 120 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{}, 0},
	} {
		h := map[string][]string{}
		for k, v := range tc.h {
			h[k] = []string{v}
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestRedisBudget(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		b := NewRedisBudget(rdb, testredis.Prefix(t))
		day := time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC)
		b.now = func() time.Time { return day }
		if n, err := b.Used(ctx, "faq"); err != nil || n != 0 {
			t.Fatalf("fresh: %d, %v", n, err)
		}
		for _, n := range []int64{120, 80} {
			if err := b.Add(ctx, "faq", n); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := b.Used(ctx, "faq"); err != nil || n != 200 {
			t.Fatalf("after 120+80: %d, %v", n, err)
		}
		if n, _ := b.Used(ctx, "other"); n != 0 {
			t.Fatalf("another bot sees %d", n)
		}
		day = day.Add(2 * time.Minute) // the next UTC day starts afresh
		if n, _ := b.Used(ctx, "faq"); n != 0 {
			t.Fatalf("next day: %d", n)
		}
		keys := testredis.Keys(t, rdb, b.BotKeyPrefixes("faq")[0]+"*")
		if len(keys) != 1 {
			t.Fatalf("keys %v", keys)
		}
		if ttl := rdb.TTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > budgetTTL {
			t.Fatalf("ttl %v", ttl)
		}
	})
}
