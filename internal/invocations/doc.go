// Package invocations records handler invocations in Redis: the recent
// invocations of each bot, for debugging (GET /v1/bots/{bot}/logs), and
// per-day usage totals, the basis for billing by compute used
// (GET /v1/bots/{bot}/usage).
//
//	rec := invocations.New(rdb, invocations.Config{KeyPrefix: "parley:", Logger: log})
//	go rec.Run(ctx)            // flushes in the background, and once more at the end
//	rec.Record(ctx, inv)       // from the engine, never blocks
//	entries, _ := rec.Recent(ctx, "pizzabot", invocations.Query{Outcome: "error"})
//	days, _ := rec.Usage(ctx, "pizzabot", from, to)
//
// # Writing without a round trip on the turn
//
// Record only puts the invocation into a bounded in-process buffer; Run
// writes the buffer in batches, one pipeline per batch (every
// Config.FlushInterval or when Config.BatchSize invocations are waiting),
// and flushes what is left when its context ends. When the buffer is full,
// or Redis fails a batch, invocations are dropped and counted
// ([Recorder.Dropped]): metering is best effort, at most a buffer's worth
// is lost in a crash, and a retried pipeline may count a batch twice.
//
// # Following
//
// A batch is pushed onto a bot's recent list by a script (lua/record.lua)
// that gives each entry an id, "<redis ms>-<seq>", above the id at the
// list's head, so ids grow in push order across replicas. While some
// [Feed] marks the bot as followed, the script also publishes the batch's
// last id on the bot's Pub/Sub channel; a feed then reads the list after
// the last entry it delivered ([Recorder.Follow] has the details).
//
//	feed, _ := rec.Follow(ctx, "pizzabot", invocations.FollowQuery{Outcome: "error"})
//	defer feed.Close()
//	for { entries, err := feed.Next(ctx); ... }
//
// # Keys
//
//	<prefix>inv:<bot>:recent          LIST   newest first, JSON entries with ids, trimmed to Config.MaxRecent, TTL 30 days
//	<prefix>inv:<bot>:day:<YYYYMMDD>  HASH   invocations, compute_us, instructions, http_calls, outcome:<o>; TTL 400 days
//	<prefix>logs:followed             ZSET   followed bots, scored by when their mark expires (30s after a feed renews it)
//	<prefix>logs:live:<bot>           Pub/Sub channel: the last id of each batch pushed while the bot is followed
//
// No key is written together with another atomically, so none carries a
// hash tag: on a cluster one bot's keys spread over the shards.
//
// Concurrency: a Recorder is safe for concurrent use; Run must be called
// once. A Feed is used by one goroutine at a time.
//
// The user manual is docs/http-api.md ("Invocation logs and usage").
package invocations
