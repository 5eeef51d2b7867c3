// Package analytics records every turn in Redis and answers questions about
// them: time series and totals (turns, conversations, unique users,
// fallback and error rates, latency percentiles), grouped and filtered by
// channel, intent, source and outcome; the most frequent utterances that
// nothing understood; conversations and their transcripts. It also erases a
// user's data on request, and feeds the Prometheus metrics of package metrics.
//
//	svc := analytics.New(rdb, analytics.Config{KeyPrefix: "parley:", Sessions: store, Metrics: m})
//	go svc.Run(ctx)                          // flushes every second, and everything at the end
//	svc.Observe(ctx, analytics.Turn{...})    // from the engine's observer: never blocks
//	rep, err := svc.Query(ctx, "pizzabot", analytics.Query{From: from, To: to, Step: analytics.Hour,
//		GroupBy: []string{"intent"}})
//
// # Recording
//
// [Service.Observe] appends the turn to a bounded in-memory buffer and
// returns; a turn never waits for analytics and costs no Redis round trip.
// When the buffer is full the turn is not recorded and is counted in
// parley_analytics_dropped_turns_total{reason="buffer_full"}. [Service.Run]
// flushes the buffer every FlushInterval (sooner when it is half full), and
// once more when its context ends, so a graceful shutdown loses nothing. A
// flush sums its turns in memory and writes them in two steps: the user
// index (one script call per user shard; it also says who is new and who
// was erased), then everything else (one merge script per bucket hash,
// PFADDs of each minute's users, one transcript script per conversation
// shard). A user whose index this process wrote lately, in a conversation
// it already put there, costs two reads instead of the user script (the
// index's first-seen time, which tells that no erasure or purge came
// since, and the erasure marker). Each step is sent in rounds of one script
// call (at most 16 users or conversations) and the flush yields the
// processor while it plans, so that the turns running beside it wait
// little. A batch that fails three times is dropped and
// counted (reason="store"); a network error in the middle of a pipeline can
// count part of a batch twice when it is retried.
//
// # Keys
//
// With the default prefix "parley:" and bucket stamps in UTC
// (minute 202611251407, hour 2026112514, day 20261125):
//
//	an:<bot>:<m|h|d>:<stamp>         hash   a bucket's counts: field * (all turns), c|<channel>,
//	                                        i|<intent>, s|<source>, o|<outcome> (one per value)
//	an:<bot>:<m|h|d>:<stamp>:x       hash   the cube: one field per channel|intent|outcome
//	an:{<bot>}:u:<m|h|d>:<stamp>     HLL    users of a bucket (and :<channel> per channel)
//	an:<bot>:fb:<day>                zset   the day's fallback utterances by count (top 10000)
//	an:{<bot>:c<s>}:tr:<channel>:<id>  list  transcript, JSON entries, bounded, per-bot retention
//	an:{<bot>:c<s>}:cv:<channel>:<id>  hash  user, channel, started, last, turns, sessions, ended
//	an:<bot>:cl:<day>                zset   conversations (<channel>:<id>) active that day, scored by last turn
//	an:<bot>:settings                hash   the bot's transcript settings
//	an:{<bot>:u<s>}:user|convs|fb|erased:<user hash>   the user index: when first seen, the
//	                                        user's conversations and fallback utterances, the
//	                                        time of the last erasure
//
// <s> is one of 16 shards (a hex digit) of the conversation or user id; one
// script call per shard writes all of a flush's transcripts or user index
// entries of that shard.
//
// A field of a bucket holds all its counts as "index:value" pairs (turns,
// conversations started and ended, new users, latency and handler time
// sums, confidence sum and count, the five outcomes, the five sources, the
// latency histogram bins, then the postback source); the merge script lua/merge.lua adds a flush's
// counts to it, so a flush costs one script call per bucket hash, and a
// query reads one field per bucket (totals), one small hash per bucket
// (one dimension) or the cube (several). Bucket keys expire at the end of
// their bucket plus the retention of their step; nothing is ever listed
// with KEYS or SCAN: a query computes the key names of its range. The user
// index holds a hash of the user id, never the id itself. Hash tags group
// only what one command or script touches: a bot's HyperLogLogs (one
// PFCOUNT unions them), and each user or conversation shard.
//
// # Percentiles
//
// Latencies are counted in fixed bins (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per
// decade from 0.1 ms to 60 s), so bins of any buckets add up. A percentile
// is interpolated inside the bin that holds it: it lies in the same bin as
// the exact value, at most a bin's width (a third of the value) away.
//
// Concurrency: a Service is safe for concurrent use; Run must be called once.
//
// The user manual is docs/analytics.md and docs/privacy.md.
package analytics
