// Package webchat keeps the outboxes of the web channel's conversations in
// Redis, so that a browser's live connection (WebSocket), on any replica,
// gets every answer of its conversation: the replies to what the user sent
// and what the bot pushes later (schedules, human agents).
//
// Each conversation's outbox is a Redis stream,
// "<prefix>web:{<bot>:<hash>}:out" (the hash is the one the session keys
// use, of the bot and the conversation key, so that the key names no one),
// capped at Config.MaxLen entries and expiring Config.TTL after the last
// append. An entry's id is the stream's: a client that saw it asks for what
// came after it and gets each later answer once.
//
// Append publishes the outbox key on one Pub/Sub channel,
// "<prefix>web:wake". Each replica's [Outbox.Run] holds one subscription to
// it and wakes the followers of that outbox; a follower also reads its
// outbox every Config.CatchUp, so a lost notice (Pub/Sub drops what is
// published while a subscriber reconnects) delays an answer, never drops
// it.
//
//	box := webchat.New(rdb, webchat.Config{KeyPrefix: "parley:"})
//	go box.Run(ctx)
//	f, _ := box.Follow(ctx, "pizzabot", "alice", after)
//	defer f.Close()
//	entries, err := f.Next(ctx)
//
// Concurrency: an Outbox is safe for concurrent use; a [Follower] belongs
// to one goroutine.
package webchat
