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
// Each bot runs at most its max_concurrent_turns handlers at once; a turn
// beyond that waits briefly in a bounded queue, then fails with a
// [*BusyError] (errors.Is(err, ErrBusy)) that the gateway answers with 429.
// Every handler call, rejected ones included, is reported to
// Config.Invocations as a [sandbox.Invocation] for invocation logs and
// usage metering.
//
// Concurrency: an Engine is safe for concurrent use; turns of one
// conversation are serialized by the session store.
package engine
