// Package bots is the catalog of tenants: each bot's settings, channels,
// versioned Lua handlers (stable, canary, previous) and NLU data, kept in
// Redis so every gateway replica serves the same thing.
//
// Writes go to Redis (a handler is compiled first and refused with its line
// number if it does not compile), bump the bot's generation and are
// announced to the other replicas. [Catalog.Bot] serves an immutable
// snapshot per bot, with every version a conversation may be pinned to
// already compiled; [Catalog.Run] drops snapshots when a change is announced
// or a missed announcement is found. Every key of a bot carries the hash tag
// {bot}, so each multi-key update is atomic on one Redis Cluster slot.
//
// A bot's secrets ([Catalog.PutSecret]) and its channels' settings are
// sealed (internal/seal) before they reach Redis, bound to the bot and the
// name, and opened only into the snapshot in memory: [Catalog.Secret]
// answers from it, without a round trip. [Catalog.SealStored] seals at
// start what is still in clear or under a previous key.
//
// Concurrency: a Catalog is safe for concurrent use; a *Bot is immutable
// once returned. Large NLU data trains in the background under the
// Catalog's own context: [Catalog.Close] cancels those trainings and waits
// for them. The user manual is docs/http-api.md ("Versions, canaries and
// rollbacks"), docs/configuration.md (bot settings) and docs/nlu.md.
package bots
