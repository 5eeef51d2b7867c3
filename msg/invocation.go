package msg

import "time"

// CallOutcome classifies an [Invocation]: how one handler call ended.
type CallOutcome string

// Outcomes of invocations.
const (
	// CallOK means the handler returned a reply.
	CallOK CallOutcome = "ok"
	// CallError means the handler failed: a Lua error, a bad return
	// value, a broken contract.
	CallError CallOutcome = "error"
	// CallTimeout means the handler ran out of its time budget or its
	// caller gave up on it.
	CallTimeout CallOutcome = "timeout"
	// CallLimit means a cap stopped the handler: a size limit, the
	// heap guard, the http request quota.
	CallLimit CallOutcome = "limit"
	// CallRejected means the handler never ran because its bot had too
	// many turns running (decided by the caller, not by the sandbox).
	CallRejected CallOutcome = "rejected"
)

// Invocation is the metering record of one handler call: what ran, how it
// ended, what it cost and what it logged.
type Invocation struct {
	// Bot, Intent and Version identify the handler.
	Bot     string
	Intent  string
	Version int
	// Channel and Conversation say which conversation the turn belonged
	// to: the channel and the platform's conversation id.
	Channel      string
	Conversation string
	// Start is when the call started.
	Start time.Time
	// Duration is the call's wall-clock time (the sandbox Result.Duration).
	Duration time.Duration
	// Compute is the wall-clock time less host I/O waits (Result.Compute),
	// the basis for billing.
	Compute time.Duration
	// Instructions is the number of Lua VM instructions run.
	Instructions int64
	// HTTPCalls is the number of outbound http requests made, llm calls
	// included.
	HTTPCalls int
	// LLMCalls is the number of llm calls that reached the model, and
	// LLMInput and LLMOutput the input and output tokens they used.
	LLMCalls  int
	LLMInput  int
	LLMOutput int
	// ColdStart and WarmStart tell whether the call built a VM or reused
	// an idle one (Result.ColdStart, Result.WarmStart); both are false when
	// it never got a VM.
	ColdStart bool
	WarmStart bool
	// Outcome is how the call ended.
	Outcome CallOutcome
	// Error is the failure as the script author should read it, with the
	// script name and line ("OrderPizza.lua:12: boom"); empty when ok.
	Error string
	// Line is the Lua line of the failure, 0 when unknown.
	Line int
	// Logs are the handler's log lines.
	Logs []string
}
