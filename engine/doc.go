// Package engine runs conversation turns: for one normalized event it loads
// the bot, takes the conversation, routes the event to an intent, runs that
// intent's handler and commits the new state, or releases the conversation
// untouched when the handler failed.
//
//	eng := engine.New(engine.Config{Bots: catalog, Sessions: store, Runtime: runtime})
//	turn, err := eng.Run(ctx, &msg.Event{Bot: "pizzabot", Channel: "web", User: "u1", Conversation: "u1", Text: "hi"})
//
// The engine uses its surroundings through the small interfaces it
// declares ([BotSource], [Conversations], [Runner], [Limiter], [Handoffs]);
// a nil Limiter means no rate limits, nil Handoffs no handoffs. A message in
// a conversation a person owns (see [Handoffs]) runs no handler: it is a
// Turn with outcome human and, the first time, the bot's handoff_notice. A failing handler is a Turn with the bot's
// error reply; Run fails only when the turn could not run: an unknown bot
// (bots.ErrBotNotFound), [ErrUnavailable], [ErrErased], or a [*BusyError]
// (errors.Is(err, ErrBusy)) when the bot is at max_concurrent_turns or over
// a rate limit. A retry of
// an answered message gets the remembered answer; the handler version
// pinned per intent (canaries, see docs/http-api.md) is saved with the commit.
//
// Concurrency: an Engine is safe for concurrent use; turns of one
// conversation are serialized by [Conversations].
//
// The map of the code is docs/architecture.md (the path of a turn).
package engine
