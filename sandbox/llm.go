package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/parleyhq/parley/msg"
)

// LLM calls a language model for the llm module. Implementations reach the
// bot's model API under its settings (Call.LLM), honour ctx's deadline,
// meter the tokens, and report failures as errors whose text scripts see
// as is. With LLMRequest.Stream set they call OnText with the answer's
// text as it is generated, on the calling goroutine.
type LLM interface {
	Chat(ctx context.Context, req *LLMRequest) (*LLMResponse, error)
}

// LLMSettings are a bot's llm settings, given with each call.
type LLMSettings struct {
	// BaseURL is the OpenAI-compatible API ("https://api.openai.com/v1");
	// empty means the bot has none.
	BaseURL string
	// APIKeySecret names the bot's secret holding the API key; empty sends none.
	APIKeySecret string
	// Model is the default model.
	Model string
	// TokensPerDay bounds the bot's tokens per UTC day; zero means no bound.
	TokensPerDay int
}

// LLMMessage is one message of a conversation with a model.
type LLMMessage struct {
	// Role is system, developer, user, assistant or tool.
	Role string
	// Content is the message's text.
	Content string
	// ToolCalls are the calls an assistant message asked for.
	ToolCalls []LLMToolCall
	// ToolCallID is the call a tool message answers.
	ToolCallID string
}

// LLMToolCall is a function call a model asked for.
type LLMToolCall struct {
	ID   string
	Name string
	// Arguments is a JSON object, as the model wrote it.
	Arguments string
}

// LLMTool is a function a model may call.
type LLMTool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments, as JSON; nil for none.
	Parameters []byte
}

// LLMRequest is one llm.chat call of a handler.
type LLMRequest struct {
	// Bot is the bot making the call.
	Bot string
	// Settings are the bot's llm settings.
	Settings LLMSettings
	// Allow is the bot's http_allow list: the model API's host is reachable
	// without being in it, but only the addresses it names literally may be
	// private ones.
	Allow []string
	// Messages is the conversation, oldest first.
	Messages []LLMMessage
	// Model overrides Settings.Model when set.
	Model string
	// Temperature is sent when not nil.
	Temperature *float64
	// MaxTokens bounds the answer's tokens; zero sends no bound.
	MaxTokens int
	// JSON asks for a JSON object as the answer.
	JSON bool
	// Tools are the functions the model may call.
	Tools []LLMTool
	// ToolChoice is "auto", "none", "required" or a tool's name; empty
	// leaves it to the model.
	ToolChoice string
	// Stream asks for the answer as it is generated.
	Stream bool
	// OnText, when set with Stream, receives each new piece of the answer's
	// text. It must not block.
	OnText func(text string)
	// MaxAnswerBytes caps the answer's text and tool calls together.
	MaxAnswerBytes int
}

// LLMResponse is a model's answer.
type LLMResponse struct {
	Text         string
	ToolCalls    []LLMToolCall
	FinishReason string
	// Model is the model that answered, as the API names it.
	Model string
	// InputTokens and OutputTokens are the usage the API reported.
	InputTokens, OutputTokens int
}

// Limits of the llm module.
const (
	maxLLMMessages     = 256
	maxLLMTools        = 64
	maxLLMRequestBytes = 256 << 10
	maxLLMMaxTokens    = 1 << 20
	maxLLMNameBytes    = 256
)

// openLLM builds the llm module: calls to the bot's language model.
//
//	llm.chat{messages = {...}, model =, temperature =, max_tokens =, json =, tools =,
//	         tool_choice =, stream =, timeout_ms =}
//	  -> {text =, tool_calls =, finish_reason =, usage = {input_tokens =, output_tokens =}, model =}
//	   | nil, message
func (v *vm) openLLM() *lua.LTable {
	t := v.L.CreateTable(0, 1)
	t.RawSetString("chat", v.L.NewFunction(v.llmChat))
	return t
}

func (v *vm) llmChat(L *lua.LState) int {
	c := v.requireCall(L, "llm")
	opts := L.CheckTable(1)
	v.materialize(opts)
	req := &LLMRequest{Bot: c.Key.Bot, Settings: c.LLM, Allow: c.HTTPAllow, MaxAnswerBytes: v.maxHTTPBody}
	size := v.llmArgs(L, opts, req)
	if size > maxLLMRequestBytes {
		raiseLimit(L, "llm.chat: the request is larger than %d KiB", maxLLMRequestBytes>>10)
	}
	var timeout time.Duration
	if n, ok := opts.RawGetString("timeout_ms").(lua.LNumber); ok && n > 0 {
		timeout = time.Duration(float64(n) * float64(time.Millisecond))
	}
	v.countHTTPCall(L, "llm")
	if v.llm == nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("llm: not available"))
		return 2
	}
	if c.LLM.BaseURL == "" {
		L.Push(lua.LNil)
		L.Push(lua.LString("llm: the bot has no model API (setting llm_base_url)"))
		return 2
	}
	if req.Stream {
		if s := msg.StreamOf(v.ctx); s != nil {
			req.OnText = s.Write
		}
	}
	var resp *LLMResponse
	err := v.hostIO(func(ctx context.Context) (err error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		resp, err = v.llm.Chat(ctx, req)
		return err
	})
	if resp != nil {
		// A failed call may still have cost tokens.
		v.llmCalls++
		v.llmInput += resp.InputTokens
		v.llmOutput += resp.OutputTokens
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(llmFailure(err)))
		return 2
	}
	n := len(resp.Text) + len(resp.FinishReason) + len(resp.Model)
	for _, tc := range resp.ToolCalls {
		n += len(tc.ID) + len(tc.Name) + len(tc.Arguments) + 3*decodedSlotBytes
	}
	charge(L, n)
	L.Push(v.llmResult(resp))
	return 1
}

// llmFailure is the message scripts get for a failed call: the
// implementation's own words, or what ended the call.
func llmFailure(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "llm: timed out"
	case errors.Is(err, context.Canceled):
		return "llm: cancelled"
	}
	return err.Error()
}

// countHTTPCall counts one outbound request of module against the call's
// max_http_calls, raising when it is one too many.
func (v *vm) countHTTPCall(L *lua.LState, module string) {
	v.httpCalls++
	limit := v.call.MaxHTTPCalls
	if limit == 0 {
		limit = DefaultMaxHTTPCalls
	}
	if limit < 0 || v.httpCalls > limit {
		raiseLimit(L, "%s: more than %d requests in one turn", module, max(limit, 0))
	}
}

// llmArgs reads llm.chat's options into req and returns the request's size
// in bytes, roughly as sent.
func (v *vm) llmArgs(L *lua.LState, opts *lua.LTable, req *LLMRequest) int {
	size := 0
	str := func(name string, max int) string {
		switch s := opts.RawGetString(name).(type) {
		case *lua.LNilType:
			return ""
		case lua.LString:
			if len(s) > max {
				L.ArgError(1, fmt.Sprintf("%s is longer than %d bytes", name, max))
			}
			return string(s)
		default:
			L.ArgError(1, name+" must be a string")
		}
		return ""
	}
	req.Model = str("model", maxLLMNameBytes)
	req.ToolChoice = str("tool_choice", maxLLMNameBytes)
	switch x := opts.RawGetString("temperature").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		f := float64(x)
		if !(f >= 0 && f <= 2) {
			L.ArgError(1, "temperature must be between 0 and 2")
		}
		req.Temperature = &f
	default:
		L.ArgError(1, "temperature must be a number")
	}
	switch x := opts.RawGetString("max_tokens").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		f := float64(x)
		if !(f >= 1 && f <= maxLLMMaxTokens) || f != math.Trunc(f) {
			L.ArgError(1, fmt.Sprintf("max_tokens must be a whole number from 1 to %d", maxLLMMaxTokens))
		}
		req.MaxTokens = int(f)
	default:
		L.ArgError(1, "max_tokens must be a number")
	}
	req.JSON = lua.LVAsBool(opts.RawGetString("json"))
	req.Stream = lua.LVAsBool(opts.RawGetString("stream"))

	msgs, ok := opts.RawGetString("messages").(*lua.LTable)
	if !ok || msgs.Len() == 0 {
		L.ArgError(1, "messages must be a list of {role =, content =} tables")
	}
	n := msgs.Len()
	if n > maxLLMMessages {
		raiseLimit(L, "llm.chat: more than %d messages", maxLLMMessages)
	}
	req.Messages = make([]LLMMessage, 0, n)
	for i := 1; i <= n; i++ {
		m, ok := msgs.RawGetInt(i).(*lua.LTable)
		if !ok {
			L.ArgError(1, fmt.Sprintf("messages[%d] must be a table", i))
		}
		v.materialize(m)
		lm := LLMMessage{Role: lua.LVAsString(m.RawGetString("role"))}
		switch lm.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			L.ArgError(1, fmt.Sprintf("messages[%d].role must be system, developer, user, assistant or tool", i))
		}
		switch c := m.RawGetString("content").(type) {
		case lua.LString:
			lm.Content = string(c)
		case lua.LNumber:
			lm.Content = c.String()
		case *lua.LNilType:
		default:
			L.ArgError(1, fmt.Sprintf("messages[%d].content must be a string", i))
		}
		lm.ToolCallID = lua.LVAsString(m.RawGetString("tool_call_id"))
		if lm.Role == "tool" && lm.ToolCallID == "" {
			L.ArgError(1, fmt.Sprintf("messages[%d]: a tool message needs tool_call_id", i))
		}
		if calls, ok := m.RawGetString("tool_calls").(*lua.LTable); ok {
			for j := 1; j <= calls.Len(); j++ {
				tc, ok := calls.RawGetInt(j).(*lua.LTable)
				if !ok {
					L.ArgError(1, fmt.Sprintf("messages[%d].tool_calls[%d] must be a table", i, j))
				}
				call := LLMToolCall{ID: lua.LVAsString(tc.RawGetString("id")), Name: lua.LVAsString(tc.RawGetString("name"))}
				switch a := tc.RawGetString("arguments").(type) {
				case lua.LString:
					call.Arguments = string(a)
				case *lua.LTable:
					call.Arguments = string(v.llmJSON(L, a, "arguments"))
				case *lua.LNilType:
					call.Arguments = "{}"
				default:
					L.ArgError(1, fmt.Sprintf("messages[%d].tool_calls[%d].arguments must be a string or a table", i, j))
				}
				size += len(call.ID) + len(call.Name) + len(call.Arguments) + 64
				lm.ToolCalls = append(lm.ToolCalls, call)
			}
		}
		size += len(lm.Content) + len(lm.ToolCallID) + 32
		if size > maxLLMRequestBytes {
			raiseLimit(L, "llm.chat: the request is larger than %d KiB", maxLLMRequestBytes>>10)
		}
		req.Messages = append(req.Messages, lm)
	}

	if tools, ok := opts.RawGetString("tools").(*lua.LTable); ok {
		if tools.Len() > maxLLMTools {
			raiseLimit(L, "llm.chat: more than %d tools", maxLLMTools)
		}
		for i := 1; i <= tools.Len(); i++ {
			t, ok := tools.RawGetInt(i).(*lua.LTable)
			if !ok {
				L.ArgError(1, fmt.Sprintf("tools[%d] must be a table", i))
			}
			v.materialize(t)
			// {type = "function", ["function"] = {...}}, as the API writes
			// it, or the function's table itself.
			if fn, ok := t.RawGetString("function").(*lua.LTable); ok {
				t = fn
			}
			tool := LLMTool{Name: lua.LVAsString(t.RawGetString("name")),
				Description: lua.LVAsString(t.RawGetString("description"))}
			if !validToolName(tool.Name) {
				L.ArgError(1, fmt.Sprintf("tools[%d].name must be 1-64 letters, digits, '_' or '-'", i))
			}
			if p, ok := t.RawGetString("parameters").(*lua.LTable); ok {
				tool.Parameters = v.llmJSON(L, p, "parameters")
			}
			size += len(tool.Name) + len(tool.Description) + len(tool.Parameters) + 64
			req.Tools = append(req.Tools, tool)
		}
	}
	return size
}

// llmJSON encodes a table of llm.chat's options as JSON.
func (v *vm) llmJSON(L *lua.LState, t *lua.LTable, name string) []byte {
	e := encoder{max: maxLLMRequestBytes, materialize: v.materialize, root: name}
	if _, err := e.encode(t, 0); err != nil {
		if ee := (*encodeError)(nil); errors.As(err, &ee) && ee.kind == KindLimit {
			raiseLimit(L, "llm.chat: %s", err.Error())
		}
		L.ArgError(1, err.Error())
	}
	return e.buf
}

// validToolName reports whether s is a function name the API takes.
func validToolName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// llmResult is the answer as scripts get it.
func (v *vm) llmResult(r *LLMResponse) *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 5)
	t.RawSetString("text", lua.LString(r.Text))
	calls := L.CreateTable(len(r.ToolCalls), 0)
	for _, tc := range r.ToolCalls {
		c := L.CreateTable(0, 3)
		c.RawSetString("id", lua.LString(tc.ID))
		c.RawSetString("name", lua.LString(tc.Name))
		c.RawSetString("arguments", lua.LString(tc.Arguments))
		calls.Append(c)
	}
	t.RawSetString("tool_calls", calls)
	t.RawSetString("finish_reason", lua.LString(r.FinishReason))
	usage := L.CreateTable(0, 2)
	usage.RawSetString("input_tokens", lua.LNumber(r.InputTokens))
	usage.RawSetString("output_tokens", lua.LNumber(r.OutputTokens))
	t.RawSetString("usage", usage)
	t.RawSetString("model", lua.LString(r.Model))
	return t
}
