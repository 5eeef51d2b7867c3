// Package handoff hands conversations to people and back. While a person
// owns a conversation, the engine runs no handler for it: the user's
// messages are recorded (transcript, analytics) and shown to the agents,
// and the first one gets the bot's handoff_notice. Agents list the
// conversations, claim them, write to the user through the channel's send
// API, and release them; the bot's handback intent then runs. A
// conversation silent for the bot's handoff_idle_timeout is released too.
//
//	st := handoff.NewStore(rdb, "parley:")
//	m := handoff.New(handoff.Config{Store: st, Bots: catalog, Runner: eng, Channels: registry})
//	go m.Run(ctx) // releases idle conversations
//
// State lives in Redis under the bot's hash tag ({<bot>}): a hash per
// conversation (named by a pseudonym of its msg.ConversationKey), the open
// handoffs by time, per queue, and their idle deadlines. Every change is
// one script, so replicas agree; a release hands the conversation's state
// to exactly one caller, which is how the idle sweep that every replica
// runs releases each conversation once. [Webhook] tells a bot's
// handoff_webhook_url of handoffs and releases, signed ([Sign]), through
// the egress rules of handlers' http calls.
//
// Concurrency: a Store, Manager and Webhook are safe for concurrent use.
//
// The user manual is docs/handoff.md.
package handoff
