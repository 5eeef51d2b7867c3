// Package engine runs conversation turns: for one normalized event it loads
// the bot, takes the conversation's session, routes the event to an intent,
// runs that intent's Lua handler in the sandbox, and commits the new session
// state, or releases it untouched when the handler failed.
//
//	turn, err := eng.Run(ctx, &intents.Event{Bot: "pizzabot", User: "u1", Conversation: "u1", Text: "hi"})
//
// A turn costs two Redis round trips on the hot path (begin and commit); the
// bot itself comes from the catalog's in-process snapshot.
//
// The handler version comes from [bots.Handler.Select]: a conversation stays,
// per intent, on the version that answered its first turn of that intent
// while the bot still serves it (stable, canary or previous), and a new
// conversation may land on a canary. The pin is saved in
// sessions.State.Versions by the turn's commit, so it costs no extra round
// trip; a failed turn pins nothing.
//
// Each bot runs at most its max_concurrent_turns handlers at once; a turn
// beyond that waits briefly in a bounded queue, then fails with a
// [*BusyError] (errors.Is(err, ErrBusy)) that the gateway answers with 429.
// Once it holds the conversation and is not a retry of an answered message,
// a turn is checked against the bot's rate_limit_per_bot and
// rate_limit_per_user (Config.Limiter, enforced in
// Redis across replicas); a turn over either fails with a *BusyError too,
// naming the limit and when the turn would be allowed. The check fails
// open: when Redis cannot answer, the turn runs.
// Every handler call, rejected ones included, is reported to
// Config.Invocations as a [sandbox.Invocation] for invocation logs and
// usage metering.
//
// Concurrency: an Engine is safe for concurrent use; turns of one
// conversation are serialized by the session store.
//
// The map of the code is docs/architecture.md (the path of a turn).
package engine
