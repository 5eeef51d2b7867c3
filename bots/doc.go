// Package bots is the catalog of tenants: each bot's settings, connected
// channels, versioned Lua handlers and NLU examples, kept in Redis so every
// gateway replica serves the same thing.
//
// Writes go straight to Redis (a new handler version is compiled first and
// rejected with its line number if it does not compile), bump the bot's
// generation counter and are announced on a Pub/Sub channel. Reads come from
// an in-process snapshot per bot: [Catalog.Bot] loads it on first use and
// [Catalog.Run] drops it when a change is announced, or when a periodic
// generation check finds a change whose announcement was missed.
//
// # Versions and rollouts
//
// Each intent serves at most three compiled versions, kept in every
// snapshot ([Handler]): the stable one, a canary for a share of new
// conversations ([Catalog.PutCanary], chosen by [Bucket], a deterministic
// hash of intent and conversation id), and the previous stable version after
// [Catalog.PromoteCanary]. The engine pins each conversation, per intent, to
// the version [Handler.Select] gave its first turn of that intent, and keeps
// it there until the conversation ends. The rules:
//
//   - a pin to a version still served holds;
//   - otherwise (a new conversation, or a pin to a version no longer served)
//     the conversation gets the canary when its bucket is below the
//     canary's percent, else the stable version;
//   - promotion keeps the old stable version as previous, so conversations
//     that began on it finish on it;
//   - aborting a canary ([Catalog.AbortCanary]) moves its conversations to
//     the stable version;
//   - a plain upload ([Catalog.PutHandler]) and [Catalog.Rollback] leave one
//     version served, so every conversation moves to it at its next turn; a
//     plain upload of new code is refused with a [*CanaryConflictError]
//     while a canary runs.
//
// Every key of a bot carries the hash tag {bot}, so each multi-key update is
// atomic on one Redis Cluster slot.
//
// Concurrency: a Catalog is safe for concurrent use; a *Bot snapshot is
// immutable once returned.
package bots
