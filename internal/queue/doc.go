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
// which can be listed, replayed and deleted.
//
// A turn refused because the bot is over a limit ([Later]) does not hold up
// its partition: the entry is parked, moved to a list of its conversation
// beside the stream (keys under the partition's hash tag) with a due time,
// by one script that also acknowledges it; every later entry of that
// conversation queues behind it there, and the partition goes on with
// other conversations at once. When due, the conversation's parked entries
// run in order, before any newer entry of it; a parked entry leaves the
// list only once answered (with the sent marker, in one script) or
// dead-lettered, so a replica dying meanwhile loses nothing. A refusal does
// not count as a try while the delays add up to Config.MaxDelay at most;
// past that it counts, and the event goes to the dead letters after
// Config.MaxAttempts.
//
// An event's partition and parked list follow its conversation's
// [msg.ConversationKey] (bot, channel and platform id). Erasing a user
// removes the user's parked events and dead letters ([Queue.Forget]); an
// event received before the erasure that is still in a stream is refused
// by the runner, which wraps the refusal with [Discard], and is dropped
// without a dead letter.
//
// The queue is bounded: a partition holding Config.MaxPending events,
// parked ones included, refuses more with [ErrFull] (the gateway answers
// 503, and the platform delivers the webhook again later).
//
// Example:
//
//	q := queue.New(rdb, queue.Config{Runner: runner, Sender: senderFor, Settings: settingsFor})
//	go q.Run(ctx)                       // workers, until ctx ends
//	fresh, err := q.Enqueue(ctx, event) // from a webhook; fresh is false for a retry
//
// Concurrency: a Queue is safe for concurrent use. Run is called once per
// process. Reads never block (no blocking command holds a pooled
// connection): a partition whose read found nothing waits until an Enqueue
// in the same process wakes it, at once, or until Run's one watcher, which
// looks at the streams of all the idle partitions in one pipelined round
// trip every Config.PollInterval, finds an event enqueued elsewhere.
// Only a partition's lease holder changes its parked entries (the scripts
// check the lease), so it keeps their due times in memory.
//
// The user manual is docs/channels/reliability.md.
package queue
