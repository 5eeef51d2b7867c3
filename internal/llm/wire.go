package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/sandbox"
)

// The wire format of POST {base}/chat/completions (OpenAI's
// CreateChatCompletionRequest and its answers), as far as Parley uses it.

type requestBody struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	Temperature         *float64        `json:"temperature,omitempty"`
	MaxTokens           int             `json:"max_tokens,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	ResponseFormat      *responseFormat `json:"response_format,omitempty"`
	Tools               []wireTool      `json:"tools,omitempty"`
	ToolChoice          any             `json:"tool_choice,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *streamOptions  `json:"stream_options,omitempty"`
}

type wireMessage struct {
	Role       string         `json:"role"`
	Content    *string        `json:"content"`
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type wireToolCall struct {
	Index    *int         `json:"index,omitempty"` // in stream chunks only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type wireTool struct {
	Type     string      `json:"type"`
	Function wireToolDef `json:"function"`
}

type wireToolDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type responseFormat struct {
	Type string `json:"type"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// newRequestBody writes req as the API takes it. OpenAI's own API gets
// max_completion_tokens, which its reasoning models require; other servers
// get max_tokens, which every compatible server knows.
func newRequestBody(req *sandbox.LLMRequest, model, host string) *requestBody {
	b := &requestBody{Model: model, Temperature: req.Temperature, Stream: req.Stream}
	if req.MaxTokens > 0 {
		if host == "api.openai.com" {
			b.MaxCompletionTokens = req.MaxTokens
		} else {
			b.MaxTokens = req.MaxTokens
		}
	}
	if req.JSON {
		b.ResponseFormat = &responseFormat{Type: "json_object"}
	}
	if req.Stream {
		b.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	b.Messages = make([]wireMessage, len(req.Messages))
	for i, m := range req.Messages {
		w := wireMessage{Role: m.Role, ToolCallID: m.ToolCallID}
		if m.Content != "" || len(m.ToolCalls) == 0 {
			content := m.Content
			w.Content = &content
		}
		for _, tc := range m.ToolCalls {
			w.ToolCalls = append(w.ToolCalls, wireToolCall{ID: tc.ID, Type: "function",
				Function: wireFunction{Name: tc.Name, Arguments: tc.Arguments}})
		}
		b.Messages[i] = w
	}
	for _, t := range req.Tools {
		b.Tools = append(b.Tools, wireTool{Type: "function",
			Function: wireToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
	}
	switch req.ToolChoice {
	case "":
	case "auto", "none", "required":
		b.ToolChoice = req.ToolChoice
	default:
		b.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": req.ToolChoice}}
	}
	return b
}

// usage is CompletionUsage.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// completion is a non-streamed answer.
type completion struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content   *string        `json:"content"`
			Refusal   *string        `json:"refusal"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

// chunk is one event of a streamed answer.
type chunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content   *string        `json:"content"`
			Refusal   *string        `json:"refusal"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage          `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// errTooLarge fails an answer over its cap.
type errTooLarge struct{ max int }

func (e *errTooLarge) Error() string {
	return fmt.Sprintf("llm: the answer is larger than %d KiB", e.max>>10)
}

// answer reads a 200 answer, streamed or not.
func (c *Client) answer(resp *http.Response, req *sandbox.LLMRequest) (*sandbox.LLMResponse, string, error) {
	body := &capReader{r: resp.Body, left: c.cfg.MaxStreamBytes, max: c.cfg.MaxStreamBytes}
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	var (
		out *sandbox.LLMResponse
		err error
	)
	if strings.HasPrefix(ct, "text/event-stream") {
		out, err = c.readStream(body, req)
	} else {
		out, err = c.readCompletion(body, req)
	}
	if err == nil {
		return out, OutcomeOK, nil
	}
	var tl *errTooLarge
	switch {
	case errors.As(err, &tl):
		return out, OutcomeTooLarge, err
	case isTimeout(err):
		return out, OutcomeTimeout, err
	}
	return out, OutcomeError, err
}

// readCompletion reads a non-streamed answer (also what a server that
// ignores stream: true sends).
func (c *Client) readCompletion(body io.Reader, req *sandbox.LLMRequest) (*sandbox.LLMResponse, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, readError(err)
	}
	var cp completion
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, errors.New("llm: the answer is not a chat completion")
	}
	out := &sandbox.LLMResponse{Model: cp.Model}
	if cp.Usage != nil {
		out.InputTokens, out.OutputTokens = cp.Usage.PromptTokens, cp.Usage.CompletionTokens
	}
	if len(cp.Choices) == 0 {
		return out, errors.New("llm: the answer has no choices")
	}
	ch := cp.Choices[0]
	switch {
	case ch.Message.Content != nil:
		out.Text = *ch.Message.Content
	case ch.Message.Refusal != nil:
		out.Text = *ch.Message.Refusal
	}
	out.FinishReason = ch.FinishReason
	for _, tc := range ch.Message.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, sandbox.LLMToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	if err := checkSize(out, req.MaxAnswerBytes); err != nil {
		return out, err
	}
	if req.Stream && req.OnText != nil && out.Text != "" {
		req.OnText(out.Text)
	}
	return out, nil
}

// checkSize fails an answer whose text and tool calls pass max bytes.
func checkSize(out *sandbox.LLMResponse, max int) error {
	if max <= 0 {
		return nil
	}
	n := len(out.Text)
	for _, tc := range out.ToolCalls {
		n += len(tc.ID) + len(tc.Name) + len(tc.Arguments)
	}
	if n > max {
		return &errTooLarge{max: max}
	}
	return nil
}

// readStream reads a streamed answer: server-sent events whose data are
// chunks, ending with [DONE]. Text is handed to req.OnText as it comes;
// tool calls are put together from their fragments by index. On failure
// it returns what came before with the error.
func (c *Client) readStream(body io.Reader, req *sandbox.LLMRequest) (*sandbox.LLMResponse, error) {
	st := &stream{req: req, out: &sandbox.LLMResponse{}}
	r := bufio.NewReaderSize(body, 4096)
	var data []byte // the data of the event being read
	hasData := false
	for {
		line, err := readLine(r)
		if err != nil && !errors.Is(err, io.EOF) {
			return st.result(), readError(err)
		}
		eof := err != nil
		if len(line) > 0 {
			field, value, _ := bytes.Cut(line, []byte(":"))
			if string(field) == "data" {
				if hasData {
					data = append(data, '\n')
				}
				data = append(data, bytes.TrimPrefix(value, []byte(" "))...)
				hasData = true
			}
			// Comments (":"), event, id and retry fields carry nothing here.
			if !eof {
				continue
			}
		}
		// A blank line, or the end, dispatches the event.
		if hasData {
			done, err := st.event(data)
			if err != nil {
				return st.result(), err
			}
			if done {
				return st.result(), nil
			}
			data, hasData = data[:0], false
		}
		if eof {
			if st.out.FinishReason != "" {
				return st.result(), nil // a server that ends without [DONE]
			}
			return st.result(), errors.New("llm: the answer's stream ended early")
		}
	}
}

// stream is a streamed answer being put together.
type stream struct {
	req   *sandbox.LLMRequest
	out   *sandbox.LLMResponse
	text  strings.Builder
	calls []*sandbox.LLMToolCall
	size  int
	fast  fastChunk
}

// maxToolCalls bounds the tool calls of one answer.
const maxToolCalls = 128

// event takes one event's data; done is true after [DONE].
func (s *stream) event(data []byte) (done bool, err error) {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		return true, nil
	}
	if decodeFast(data, &s.fast) {
		return false, s.take(&s.fast)
	}
	var ch chunk
	if err := json.Unmarshal(data, &ch); err != nil {
		return false, errors.New("llm: the answer's stream holds an event that is not a chunk")
	}
	if len(ch.Error) > 0 && string(ch.Error) != "null" {
		return false, streamError(ch.Error)
	}
	if ch.Model != "" {
		s.out.Model = ch.Model
	}
	if ch.Usage != nil {
		s.out.InputTokens, s.out.OutputTokens = ch.Usage.PromptTokens, ch.Usage.CompletionTokens
	}
	for _, choice := range ch.Choices {
		if choice.Index != 0 {
			continue
		}
		d := choice.Delta
		piece := ""
		if d.Content != nil {
			piece = *d.Content
		} else if d.Refusal != nil {
			piece = *d.Refusal
		}
		if piece != "" {
			if err := s.grow(len(piece)); err != nil {
				return false, err
			}
			s.text.WriteString(piece)
			if s.req.OnText != nil {
				s.req.OnText(piece)
			}
		}
		for _, tc := range d.ToolCalls {
			i := 0
			if tc.Index != nil && *tc.Index > 0 {
				i = *tc.Index // a missing or negative index is the first call
			}
			if i >= maxToolCalls {
				return false, fmt.Errorf("llm: the answer has more than %d tool calls", maxToolCalls)
			}
			if err := s.grow(len(tc.ID) + len(tc.Function.Name) + len(tc.Function.Arguments)); err != nil {
				return false, err
			}
			for len(s.calls) <= i {
				s.calls = append(s.calls, &sandbox.LLMToolCall{})
			}
			call := s.calls[i]
			if tc.ID != "" {
				call.ID = tc.ID
			}
			if tc.Function.Name != "" {
				call.Name = tc.Function.Name
			}
			call.Arguments += tc.Function.Arguments
		}
		if choice.FinishReason != nil && *choice.FinishReason != "" {
			s.out.FinishReason = *choice.FinishReason
		}
	}
	return false, nil
}

// take adds a chunk read by decodeFast.
func (s *stream) take(c *fastChunk) error {
	if c.model != "" {
		s.out.Model = c.model
	}
	if c.usage != nil {
		s.out.InputTokens, s.out.OutputTokens = c.usage.PromptTokens, c.usage.CompletionTokens
	}
	if c.piece != "" {
		if err := s.grow(len(c.piece)); err != nil {
			return err
		}
		s.text.WriteString(c.piece)
		if s.req.OnText != nil {
			s.req.OnText(c.piece)
		}
	}
	if c.finish != "" {
		s.out.FinishReason = c.finish
	}
	return nil
}

// grow counts n more bytes of the answer against its cap.
func (s *stream) grow(n int) error {
	s.size += n
	if s.req.MaxAnswerBytes > 0 && s.size > s.req.MaxAnswerBytes {
		return &errTooLarge{max: s.req.MaxAnswerBytes}
	}
	return nil
}

// result is the answer so far.
func (s *stream) result() *sandbox.LLMResponse {
	s.out.Text = s.text.String()
	s.out.ToolCalls = nil
	for _, c := range s.calls {
		s.out.ToolCalls = append(s.out.ToolCalls, *c)
	}
	return s.out
}

// streamError is the error of an error event in a stream:
// {"error": {"message", "type", "code"}}.
func streamError(raw json.RawMessage) error {
	var obj struct {
		Message string `json:"message"`
		Code    any    `json:"code"`
		Type    string `json:"type"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return errors.New("llm: the stream failed")
	}
	code := obj.Type
	if s, ok := obj.Code.(string); ok && s != "" {
		code = s
	}
	msg := "llm: the stream failed"
	if code != "" {
		msg += " (" + code + ")"
	}
	if obj.Message != "" {
		msg += ": " + clip(obj.Message, 512)
	}
	return errors.New(msg)
}

// readLine reads one line without its end (LF, CRLF or CR before LF),
// refusing lines over maxLineBytes. At the end of the input it returns
// what is left with io.EOF. The line is valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	frag, err := r.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return bytes.TrimRight(frag, "\r\n"), err
	}
	line := append([]byte(nil), frag...)
	for {
		frag, err = r.ReadSlice('\n')
		if len(line)+len(frag) > maxLineBytes {
			return nil, errors.New("llm: a line of the answer's stream is longer than 1 MiB")
		}
		line = append(line, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return bytes.TrimRight(line, "\r\n"), err
		}
	}
}

// readError is the error of a failed read of the answer.
func readError(err error) error {
	if isTimeout(err) {
		return err
	}
	var tl *errTooLarge
	if errors.As(err, &tl) {
		return err
	}
	return fmt.Errorf("llm: reading the answer: %w", err)
}

// capReader reads at most max bytes, and fails with errTooLarge beyond.
type capReader struct {
	r         io.Reader
	left, max int
}

func (c *capReader) Read(p []byte) (int, error) {
	if len(p) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	if n > c.left {
		n = c.left
		c.left = 0
		return n, &errTooLarge{max: c.max}
	}
	c.left -= n
	return n, err
}

// isTimeout reports whether err is the end of the call's time.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
