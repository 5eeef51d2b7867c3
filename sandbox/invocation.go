package sandbox

import (
	"errors"
	"time"
)

// Outcome classifies an [Invocation].
type Outcome string

// Outcomes of invocations.
const (
	// OutcomeOK means the handler returned a reply.
	OutcomeOK Outcome = "ok"
	// OutcomeError means the handler failed: a Lua error, a bad return
	// value, a broken contract.
	OutcomeError Outcome = "error"
	// OutcomeTimeout means the handler ran out of its time budget or its
	// caller gave up on it.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeLimit means a cap stopped the handler: a size limit, the
	// heap guard, the http request quota.
	OutcomeLimit Outcome = "limit"
	// OutcomeRejected means the handler never ran because its bot had too
	// many turns running (decided by the caller, not by the Runtime).
	OutcomeRejected Outcome = "rejected"
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
	// Duration is the call's wall-clock time (Result.Duration).
	Duration time.Duration
	// Compute is the wall-clock time less host I/O waits (Result.Compute),
	// the basis for billing.
	Compute time.Duration
	// Instructions is the number of Lua VM instructions run.
	Instructions int64
	// HTTPCalls is the number of outbound http requests made.
	HTTPCalls int
	// ColdStart and WarmStart tell whether the call built a VM or reused
	// an idle one (Result.ColdStart, Result.WarmStart); both are false when
	// it never got a VM.
	ColdStart bool
	WarmStart bool
	// Outcome is how the call ended.
	Outcome Outcome
	// Error is the failure as the script author should read it, with the
	// script name and line ("OrderPizza.lua:12: boom"); empty when ok.
	Error string
	// Line is the Lua line of the failure, 0 when unknown.
	Line int
	// Logs are the handler's log lines.
	Logs []string
}

// NewInvocation describes a call from its Call, and the Result and error
// that Run returned.
func NewInvocation(c *Call, res Result, err error) Invocation {
	inv := Invocation{
		Bot:          c.Key.Bot,
		Intent:       c.Key.Intent,
		Version:      c.Key.Version,
		Duration:     res.Duration,
		Compute:      res.Compute,
		Instructions: res.Instructions,
		HTTPCalls:    res.HTTPCalls,
		ColdStart:    res.ColdStart,
		WarmStart:    res.WarmStart,
		Outcome:      OutcomeOK,
		Logs:         res.Logs,
		Start:        time.Now().Add(-res.Duration),
	}
	if c.Event != nil {
		inv.Channel, inv.Conversation = c.Event.Channel, c.Event.Conversation
	}
	if err == nil {
		return inv
	}
	inv.Outcome = OutcomeOf(err)
	inv.Error = err.Error()
	var se *ScriptError
	if errors.As(err, &se) {
		inv.Line = se.Line
	}
	return inv
}

// OutcomeOf classifies an error returned by [Runtime.Run].
func OutcomeOf(err error) Outcome {
	var se *ScriptError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &se) && se.Kind == KindTimeout:
		return OutcomeTimeout
	case errors.As(err, &se) && se.Kind == KindLimit:
		return OutcomeLimit
	case errors.As(err, &se):
		return OutcomeError
	}
	// The caller's context ended, or the runtime closed.
	return OutcomeTimeout
}
