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
// Every key of a bot carries the hash tag {bot}, so each multi-key update is
// atomic on one Redis Cluster slot.
//
// Concurrency: a Catalog is safe for concurrent use; a *Bot snapshot is
// immutable once returned.
package bots
