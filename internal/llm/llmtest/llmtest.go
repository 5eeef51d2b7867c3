// Package llmtest is a fake OpenAI-compatible chat completions API for
// tests: it answers POST .../chat/completions in the API's documented wire
// format (a chat.completion object, or with "stream": true server-sent
// chat.completion.chunk events ending with "data: [DONE]", the usage chunk
// when stream_options.include_usage is set, tool calls in fragments), and
// errors as {"error": {message, type, param, code}} with Retry-After.
//
//	srv := llmtest.New(t, func(r *llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "Hi!"} })
//	settings := bots.Settings{LLMBaseURL: srv.BaseURL(), HTTPAllow: []string{srv.Host()}}
package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is a call the server received.
type Request struct {
	// Header is the request's headers (Authorization among them).
	Header http.Header
	// Body is the JSON body as sent.
	Body []byte
	// The body's fields.
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream"`
	StreamOptions       *StreamOptions  `json:"stream_options"`
	Temperature         *float64        `json:"temperature"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

// Message is a message of a request.
type Message struct {
	Role       string          `json:"role"`
	Content    *string         `json:"content"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

// Text is the message's content, "" when null.
func (m Message) Text() string {
	if m.Content == nil {
		return ""
	}
	return *m.Content
}

// StreamOptions are the request's stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// LastUser is the content of the request's last user message.
func (r *Request) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Text()
		}
	}
	return ""
}

// ToolCall is a function call of a reply.
type ToolCall struct {
	ID, Name, Arguments string
}

// Reply is how the server answers one request.
type Reply struct {
	// Text is the answer's content; streamed as Chunks, or word by word
	// when Chunks is empty.
	Text   string
	Chunks []string
	// ToolCalls are function calls; streamed as a first fragment with the
	// id and name, then the arguments in two pieces.
	ToolCalls []ToolCall
	// FinishReason defaults to "stop", or "tool_calls" with ToolCalls.
	FinishReason string
	// Model defaults to the request's.
	Model string
	// InputTokens and OutputTokens are the usage (default: 10 and one per
	// chunk).
	InputTokens, OutputTokens int

	// Status, when not 200, answers with an error object: ErrorCode,
	// ErrorType and ErrorMessage, and RetryAfter as the Retry-After header.
	Status       int
	ErrorCode    string
	ErrorType    string
	ErrorMessage string
	RetryAfter   string

	// Delay is waited before answering; ChunkDelay between chunks.
	Delay, ChunkDelay time.Duration
	// Gate, when set, is waited on after the first chunk of a stream.
	Gate <-chan struct{}
	// ChoicesNull sends the usage chunk with "choices": null, as some
	// compatible servers do.
	ChoicesNull bool
	// CutAfter ends a stream after this many chunks without [DONE] (0: no cut).
	CutAfter int
	// StreamError sends an error event after the chunks instead of [DONE].
	StreamError string
}

// Server is the fake API. Its BaseURL ends with /v1.
type Server struct {
	*httptest.Server
	t       testing.TB
	handler func(*Request) Reply

	mu        sync.Mutex
	requests  []*Request
	firstSent []time.Time
}

// New starts a server answering every request with handler's reply; it
// is closed when the test ends.
func New(t testing.TB, handler func(*Request) Reply) *Server {
	s := &Server{t: t, handler: handler}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// BaseURL is the API's base URL, for llm_base_url.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Host is the server's host:port, for http_allow (its address is loopback,
// which only the allow-list can admit).
func (s *Server) Host() string { return strings.TrimPrefix(s.URL, "http://") }

// Requests returns the requests received so far.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.requests...)
}

// FirstChunks returns, per streamed answer, when its first chunk with text
// was written and flushed.
func (s *Server) FirstChunks() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.firstSent...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path, "")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req := &Request{Header: r.Header.Clone(), Body: body}
	if err := json.Unmarshal(body, req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "model and messages are required", "")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	rep := s.handler(req)
	if rep.Delay > 0 {
		select {
		case <-time.After(rep.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		typ := rep.ErrorType
		if typ == "" {
			typ = "server_error"
		}
		writeError(w, rep.Status, typ, rep.ErrorCode, rep.ErrorMessage, rep.RetryAfter)
		return
	}
	if rep.Model == "" {
		rep.Model = req.Model
	}
	if len(rep.Chunks) == 0 && rep.Text != "" {
		rep.Chunks = words(rep.Text)
	}
	if rep.FinishReason == "" {
		rep.FinishReason = "stop"
		if len(rep.ToolCalls) > 0 {
			rep.FinishReason = "tool_calls"
		}
	}
	if rep.InputTokens == 0 {
		rep.InputTokens = 10
	}
	if rep.OutputTokens == 0 {
		rep.OutputTokens = max(len(rep.Chunks), 1) + 2*len(rep.ToolCalls)
	}
	if req.Stream {
		s.stream(w, r, req, rep)
		return
	}
	s.complete(w, rep)
}

// words splits text into pieces that keep their spaces: "a b" -> "a", " b".
func words(text string) []string {
	var out []string
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' {
			out = append(out, text[start:i])
			start = i
		}
	}
	return append(out, text[start:])
}

const id = "chatcmpl-parleytest"

func (s *Server) complete(w http.ResponseWriter, rep Reply) {
	msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil}
	if rep.Text != "" || len(rep.ToolCalls) == 0 {
		msg["content"] = rep.Text
	}
	if len(rep.ToolCalls) > 0 {
		var calls []map[string]any
		for _, tc := range rep.ToolCalls {
			calls = append(calls, map[string]any{"id": tc.ID, "type": "function",
				"function": map[string]string{"name": tc.Name, "arguments": tc.Arguments}})
		}
		msg["tool_calls"] = calls
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": rep.Model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": rep.FinishReason}},
		"usage":   usage(rep),
	})
}

func usage(rep Reply) map[string]int {
	return map[string]int{"prompt_tokens": rep.InputTokens, "completion_tokens": rep.OutputTokens,
		"total_tokens": rep.InputTokens + rep.OutputTokens}
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, req *Request, rep Reply) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	created := time.Now().Unix()
	sent := 0
	send := func(v any) bool {
		if rep.CutAfter > 0 && sent >= rep.CutAfter {
			return false
		}
		raw, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", raw); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		sent++
		return true
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": rep.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			c["usage"] = nil
		}
		return c
	}
	pause := func() bool {
		if rep.ChunkDelay <= 0 {
			return true
		}
		select {
		case <-time.After(rep.ChunkDelay):
			return true
		case <-r.Context().Done():
			return false
		}
	}
	if !send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)) {
		return
	}
	for i, piece := range rep.Chunks {
		if i > 0 && !pause() {
			return
		}
		if !send(chunk(map[string]any{"content": piece}, nil)) {
			return
		}
		if i == 0 {
			s.mu.Lock()
			s.firstSent = append(s.firstSent, time.Now())
			s.mu.Unlock()
			if rep.Gate != nil {
				select {
				case <-rep.Gate:
				case <-r.Context().Done():
					return
				}
			}
		}
	}
	for i, tc := range rep.ToolCalls {
		half := len(tc.Arguments) / 2
		first := map[string]any{"index": i, "id": tc.ID, "type": "function",
			"function": map[string]string{"name": tc.Name, "arguments": ""}}
		if !send(chunk(map[string]any{"tool_calls": []any{first}}, nil)) {
			return
		}
		for _, part := range []string{tc.Arguments[:half], tc.Arguments[half:]} {
			frag := map[string]any{"index": i, "function": map[string]string{"arguments": part}}
			if !send(chunk(map[string]any{"tool_calls": []any{frag}}, nil)) {
				return
			}
		}
	}
	if rep.StreamError != "" {
		send(map[string]any{"error": map[string]any{"message": rep.StreamError, "type": "server_error", "param": nil, "code": nil}})
		return
	}
	if !send(chunk(map[string]any{}, rep.FinishReason)) {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		var choices any = []any{}
		if rep.ChoicesNull {
			choices = nil
		}
		if !send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": rep.Model,
			"choices": choices, "usage": usage(rep)}) {
			return
		}
	}
	if rep.CutAfter > 0 {
		return
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

func writeError(w http.ResponseWriter, status int, typ, code, message, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": message, "type": typ, "param": nil, "code": c}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
