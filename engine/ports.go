package engine

import (
	"context"
	"reflect"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/rate"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// The interfaces below are what an Engine needs from the services around
// it. internal/app wires the concrete ones (*bots.Catalog,
// *sessions.Store, *sandbox.Runtime, *ratelimit.Limiter) and holds the
// compile-time guards that they satisfy them. Every implementation must be
// safe for concurrent use.

// BotSource resolves a bot by name.
type BotSource interface {
	// Bot returns the bot's current snapshot. It fails with an error that
	// matches bots.ErrBotNotFound (errors.Is) when there is no such bot;
	// any other error means the source could not answer, and the turn
	// fails with ErrUnavailable. The snapshot is shared: the engine only
	// reads it. It should answer without I/O on the hot path.
	Bot(ctx context.Context, name string) (*bots.Bot, error)
}

// Conversations stores conversation state and serializes the turns of one
// conversation.
//
// A turn is Begin, then exactly one of Commit or Release, unless Begin
// failed or returned a Turn with Duplicate set (that turn holds nothing and
// is neither committed nor released).
type Conversations interface {
	// Begin waits for the conversation's earlier turns to finish (until
	// ctx ends), takes it for at most opts.Lease and loads its state; a
	// new conversation has State.Turns 0. When opts.MessageID was already
	// committed, the Turn carries the remembered answer in Duplicate.
	// It fails with an error matching sessions.ErrErased when the
	// conversation or its user was erased after opts.Received.
	Begin(ctx context.Context, bot string, conv msg.ConversationKey, opts sessions.Options) (*sessions.Turn, error)
	// Commit saves c atomically (state, history entry, remembered answer)
	// and frees the conversation. On error nothing was written; an erasure
	// meanwhile fails with an error matching sessions.ErrErased.
	Commit(ctx context.Context, t *sessions.Turn, c sessions.Commit) error
	// Release frees the conversation and changes nothing else. It must
	// work even when ctx is already done.
	Release(ctx context.Context, t *sessions.Turn) error
	// Get returns a conversation's state without taking it; ok is false
	// when it has none.
	Get(ctx context.Context, bot string, conv msg.ConversationKey) (st sessions.State, ok bool, err error)
	// History returns the conversation's recent turns, newest first.
	History(ctx context.Context, bot string, conv msg.ConversationKey) ([]sessions.HistoryEntry, error)
}

// Runner runs one handler call in the sandbox.
type Runner interface {
	// Run calls c.Program's handler with c.Event and c.Session, within
	// c.Timeout and the call's other bounds. A failing handler returns an
	// error (a *sandbox.ScriptError, with Kind sandbox.KindTimeout when it
	// ran out of time) and a Result whose Session is nil; Logs and Duration
	// are filled either way.
	Run(ctx context.Context, c sandbox.Call) (sandbox.Result, error)
}

// Limiter enforces the bots' rate limits.
type Limiter interface {
	// Allow checks one turn of a conversation against lim and, when it is
	// allowed, counts it. Zero limits allow the turn. Allow fails open:
	// when it cannot tell, the turn is allowed. A refusal names the limit
	// (Scope) and when the turn would be allowed (RetryAfter).
	Allow(ctx context.Context, bot, conversation string, lim rate.Limits) ratelimit.Decision
}

// Handoffs keeps the conversations handed to a person
// (*handoff.Manager): while a person owns a conversation, the bot runs no
// handler for it.
type Handoffs interface {
	// Hold returns the check of whether a person owns the conversation of
	// ev, which the turn sends in the round trip that begins it
	// (sessions.Options.Extra) and reads with [HoldCheck.Result].
	Hold(bot *bots.Bot, ev *msg.Event) HoldCheck
	// Start hands the conversation of ev to a person, at the request of the
	// handler of intent; a conversation a person owns already stays as it is.
	Start(ctx context.Context, bot *bots.Bot, ev *msg.Event, intent string, h msg.Handoff) error
}

// HoldCheck is one turn's handoff check: it records the user's message in
// a conversation a person owns.
type HoldCheck interface {
	sessions.Extra
	// Result reports whether a person owns the conversation (held); first
	// is true for the first message since the handoff, which gets the
	// bot's handoff_notice. Called after sessions.Begin, it reads the
	// answer of the command Begin sent, or runs the check itself when
	// Begin could not send it.
	Result(ctx context.Context) (held, first bool, err error)
}

// isNil reports whether v is nil or a nil pointer inside an interface, such
// as an unset *ratelimit.Limiter passed as a Limiter.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
