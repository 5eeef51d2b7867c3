// Package queue is the durable queue behind asynchronous chat channels: the
// gateway acknowledges a webhook at once and enqueues its events; workers on
// every replica run the turns and send the replies through the channel's
// [channels.Sender].
//
// Events live in P Redis Streams (partitions), each with its own hash tag so
// the queue works on Redis Cluster. An event goes to partition
// hash(bot, conversation) mod P, so a conversation's events stay in order.
// Enqueue is one script: a SET NX marker on the platform's delivery id (a
// retried webhook is acknowledged without being enqueued again) and an XADD.
//
// Each partition is processed by one replica at a time, which holds a renewed
// lease on it; replicas announce themselves and each takes a fair share of
// the partitions. A replica that takes over a partition first claims the
// previous owner's pending entries (XAUTOCLAIM) and processes them in order.
// Processing is at-least-once with idempotent effects: the turn is
// idempotent per event id (the engine remembers answers), a sent marker stops
// a reclaimed entry from being sent twice, and the entry is acknowledged
// last. Failed turns and sends are retried with backoff, honouring the
// platform's Retry-After; what still fails goes to the bot's dead letters,
// which can be listed, replayed and deleted. A turn refused because the bot
// is over a limit ([Later]) is retried after its delay without counting as
// a try, for up to Config.MaxDelay in all.
//
// The queue is bounded: a partition holding Config.MaxPending events
// refuses more with [ErrFull] (the gateway answers 503, and the platform
// delivers the webhook again later).
//
// Example:
//
//	q := queue.New(rdb, queue.Config{Runner: runner, Sender: senderFor, Settings: settingsFor})
//	go q.Run(ctx)                       // workers, until ctx ends
//	fresh, err := q.Enqueue(ctx, event) // from a webhook; fresh is false for a retry
//
// Concurrency: a Queue is safe for concurrent use. Run is called once per
// process; reads are short polls (no blocking command holds a pooled
// connection), and an Enqueue wakes the partition in the same process at once.
package queue
