package sandbox

import (
	"errors"
	"time"

	"github.com/parleyhq/parley/msg"
)

// NewInvocation describes a call from its Call, and the Result and error
// that Run returned.
func NewInvocation(c *Call, res Result, err error) msg.Invocation {
	inv := msg.Invocation{
		Bot:          c.Key.Bot,
		Intent:       c.Key.Intent,
		Version:      c.Key.Version,
		Duration:     res.Duration,
		Compute:      res.Compute,
		Instructions: res.Instructions,
		HTTPCalls:    res.HTTPCalls,
		LLMCalls:     res.LLMCalls,
		LLMInput:     res.LLMInputTokens,
		LLMOutput:    res.LLMOutputTokens,
		ColdStart:    res.ColdStart,
		WarmStart:    res.WarmStart,
		Outcome:      msg.CallOK,
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
func OutcomeOf(err error) msg.CallOutcome {
	var se *ScriptError
	switch {
	case err == nil:
		return msg.CallOK
	case errors.As(err, &se) && se.Kind == KindTimeout:
		return msg.CallTimeout
	case errors.As(err, &se) && se.Kind == KindLimit:
		return msg.CallLimit
	case errors.As(err, &se):
		return msg.CallError
	}
	// The caller's context ended, or the runtime closed.
	return msg.CallTimeout
}
