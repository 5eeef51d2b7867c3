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
// Concurrency: an Engine is safe for concurrent use; turns of one
// conversation are serialized by the session store.
package engine
