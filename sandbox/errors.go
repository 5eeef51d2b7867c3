package sandbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// ErrorKind classifies a [ScriptError].
type ErrorKind string

// Kinds of script errors.
const (
	// KindSyntax means the source does not parse or compile.
	KindSyntax ErrorKind = "syntax"
	// KindRuntime means the script raised a Lua error, or returned or stored
	// a value the host cannot accept.
	KindRuntime ErrorKind = "runtime"
	// KindTimeout means the script ran past its own time budget.
	KindTimeout ErrorKind = "timeout"
	// KindInvalid means the script runs but breaks the handler contract,
	// for example it defines no global function handle.
	KindInvalid ErrorKind = "invalid"
	// KindLimit means the script or its output is larger than a configured cap.
	KindLimit ErrorKind = "limit"
)

// ScriptError is a failure caused by a handler script rather than by the host.
// It reads like a Lua error: "OrderPizza.lua:12: syntax error near 'x'".
type ScriptError struct {
	// Script is the program name the script was compiled under.
	Script string
	// Kind classifies the failure.
	Kind ErrorKind
	// Line is the 1-based line in the script, or 0 when the failure has no
	// position (an oversized reply, a bad return value).
	Line int
	// Message describes the failure without the script name or line.
	Message string
}

// Error formats the error as "script:line: message", or "script: message"
// when there is no line.
func (e *ScriptError) Error() string {
	if e.Line > 0 {
		return e.Script + ":" + strconv.Itoa(e.Line) + ": " + e.Message
	}
	return e.Script + ": " + e.Message
}

// HTTPStatus is 400 (Bad Request): the script is at fault. The number is
// written out because the sandbox does not import net/http.
func (e *ScriptError) HTTPStatus() int { return 400 }

// ErrorCode is "lua_" and the kind ("lua_syntax").
func (e *ScriptError) ErrorCode() string { return "lua_" + string(e.Kind) }

// ErrorDetails gives the line (0 without one).
func (e *ScriptError) ErrorDetails() map[string]any { return map[string]any{"line": e.Line} }

// ErrClosed is returned by [Runtime.Run] after [Runtime.Close].
var ErrClosed = errors.New("sandbox: runtime closed")

// newScriptError builds a ScriptError without a line.
func newScriptError(script string, kind ErrorKind, format string, args ...any) *ScriptError {
	return &ScriptError{Script: script, Kind: kind, Message: clipMessage(fmt.Sprintf(format, args...))}
}

// clipMessage caps an error message like a log line: a script chooses its
// error values (error(string.rep("x", 1e6))) and its source text, and both
// end up in logs, invocation logs and API answers.
func clipMessage(s string) string {
	if len(s) <= maxLogLineBytes {
		return s
	}
	return truncateUTF8(s, maxLogLineBytes) + "…"
}

// fromParseError converts a gopher-lua parse error.
func fromParseError(script, source string, err error) *ScriptError {
	var pe *parse.Error
	if !errors.As(err, &pe) {
		return &ScriptError{Script: script, Kind: KindSyntax, Message: clipMessage(strings.TrimSpace(err.Error()))}
	}
	msg := strings.TrimSpace(pe.Message)
	line := pe.Pos.Line
	if line == parse.EOF {
		line = strings.Count(source, "\n") + 1
		msg += " at end of file"
	} else if pe.Token != "" {
		msg += " near '" + pe.Token + "'"
	}
	return &ScriptError{Script: script, Kind: KindSyntax, Line: line, Message: clipMessage(msg)}
}

// fromLuaError converts an error returned by PCall into a ScriptError of the
// given kind, splitting "script:12: message" into line and message.
func fromLuaError(script string, kind ErrorKind, err error) *ScriptError {
	var msg string
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		msg = ae.Object.String()
		if ae.Type == lua.ApiErrorPanic {
			msg = panicMessage(msg)
		}
	} else {
		msg = err.Error()
	}
	line, rest := splitPosition(script, msg)
	return &ScriptError{Script: script, Kind: kind, Line: line, Message: clipMessage(rest)}
}

// timeoutError reports that a call ran past its own budget; the position of
// the instruction that was interrupted is kept when the VM reported one.
func timeoutError(script string, err error, d time.Duration) *ScriptError {
	se := fromLuaError(script, KindTimeout, err)
	se.Message = "timed out after " + d.String()
	return se
}

// panicMessage turns a recovered Go panic inside the VM into a message for
// script authors.
func panicMessage(msg string) string {
	if strings.Contains(msg, "callstack overflow") {
		return "stack overflow"
	}
	return "internal error: " + msg
}

// splitPosition strips a leading "script:line:" from a Lua error message.
// Positions of other chunks are left in the message.
func splitPosition(script, msg string) (int, string) {
	rest, ok := strings.CutPrefix(msg, script+":")
	if !ok {
		return 0, msg
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ':' {
		return 0, msg
	}
	line, err := strconv.Atoi(rest[:i])
	if err != nil {
		return 0, msg
	}
	return line, strings.TrimSpace(rest[i+1:])
}
