// Package kvstore is the bot-wide key/value store behind the sandbox's store
// module, in Redis: values that outlive conversations (a menu, counters, an
// API token), namespaced per bot and bounded by quotas.
//
//	kv := kvstore.New(rdb, kvstore.Config{KeyPrefix: "parley:"})
//	rt := sandbox.New(sandbox.Config{KV: kv})
//
// # Keys
//
//	<prefix>kv:{<bot>}:v:<key>   STRING  the value (with PX when it has a TTL)
//	<prefix>kv:{<bot>}:idx       ZSET    the bot's keys, scored by expiry (ms, +inf for none)
//
// Both share the {<bot>} hash tag, so the set script that checks the key
// quota and writes the value runs in one Redis Cluster slot. The quota
// counts live keys: expired members are pruned from the index by the same
// script before it counts.
//
// # Quotas
//
// Config.MaxKeys bounds the keys of one bot (a new key beyond it is refused;
// overwriting an existing key is always allowed), Config.MaxValueBytes the
// size of one value, and Config.MaxKeyBytes the length of a key. Refusals
// wrap [sandbox.ErrQuota], so handlers see their text.
//
// Concurrency: a Store is safe for concurrent use. The quota check and the
// write are one atomic script; two handlers racing for the last free key
// cannot both get it.
//
// The user manual is docs/handlers.md (the store module).
package kvstore
