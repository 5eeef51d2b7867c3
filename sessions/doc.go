// Package sessions keeps conversation state in Redis and serializes the turns
// of one conversation.
//
// A turn is [Store.Begin] (one round trip: take the conversation lock, load
// the state, or find that this message was already answered; a caller's
// [Extra] command rides along, such as the handoff check), the handler,
// then [Store.Commit] (one round trip: save the state, append history,
// remember the answer for retries, release the lock) or [Store.Release] when
// the turn failed and nothing may change.
//
//	turn, err := store.Begin(ctx, "pizzabot", ev.Key(), sessions.Options{MessageID: "m1", User: ev.User})
//	if turn.Duplicate != nil { return turn.Duplicate } // a retry: answer it the same way
//	turn.State.Data["count"] = 1
//	err = store.Commit(ctx, turn, sessions.Commit{History: &entry, Answer: body})
//
// Begin sends plain commands (SET NX GET for the lock, then one MGET of the
// erasure marker, the state and the message's marker), not a script: a
// script call costs Redis several times the commands it runs. Commit is a
// script, since it must write only while the lock is still the turn's.
//
// A conversation is named by its [msg.ConversationKey] (channel and
// platform id), so equal ids on two channels never share state. Every key
// of one conversation carries the hash tag {bot:<hash of the key>}, so each
// script and MGET touches a single Redis Cluster slot and no key name holds
// an id.
// State expires after a sliding TTL. The lock is a lease with a random
// token that Commit checks, so a turn that outlived its lease cannot
// overwrite a newer turn's state.
//
// Begin also adds the conversation to its user's index (in the same round
// trip), which [Store.ForgetUser] reads when the user is erased, and
// [Store.Erase] removes a conversation. Both leave a marker holding the
// erasure time (for Config.ErasureTTL), so a message received before the
// erasure is refused with [ErrErased] when it arrives later, and a turn
// running meanwhile commits nothing.
//
// Concurrency: a Store is safe for concurrent use. Turns of one conversation
// queue first in process (in arrival order) and then on the Redis lock, so
// several gateway replicas sharing one Redis never interleave a conversation.
package sessions
