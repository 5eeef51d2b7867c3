// Package store opens the Redis that all of Parley's shared state lives in,
// and hands it out as a [redis.UniversalClient].
//
// There are two kinds of store behind the same client type:
//
//   - A real Redis, chosen by [Config.URL]: a redis:// or rediss:// URL for a
//     standalone server, or several comma-separated addresses (or
//     ?cluster=true) for Redis Cluster. [Open] pings it once, bounded by
//     [Config.ConnectTimeout], so a wrong address fails at start-up with a
//     clear message instead of on the first request.
//   - An embedded store when the URL is empty: an in-process miniredis
//     listening on a random loopback port, behind a random password that
//     only this process knows. It is snapshotted to
//     DataDir/snapshot.json every [Config.SnapshotInterval] when something
//     changed, and once more by [Store.Close]; [Open] restores the snapshot.
//
// Example:
//
//	st, err := store.Open(ctx, store.Config{URL: cfg.RedisURL, Logger: log})
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	go st.Run(ctx) // TTL clock and snapshots of the embedded store
//	rdb := st.Client()
//
// # The embedded store
//
// miniredis does not let time pass on its own: TTLs only shrink when it is
// told so. [Store.Run] is that clock. It advances TTLs from a monotonic clock
// every 100ms (less often when the data set is so large that a tick costs
// more than about 5% of the time), so an expiry is precise to about one tick
// in either direction: a key may outlive its TTL by up to a tick, and a key
// set just before a tick may expire up to a tick early. Don't give keys TTLs
// of less than a second and expect them to hold exactly. Without Run, TTLs
// stand still (they are caught up at the next snapshot and at Close). TIME
// and (P)EXPIREAT always use the live wall clock.
//
// The snapshot is point-in-time: while it is copied, commands sent through
// [Store.Client] wait (about 8ms per thousand keys of mixed types), so an
// atomic multi-key change (MULTI/EXEC or a Lua script) is either wholly in
// a snapshot or not at all. Pub/Sub and blocking commands (BLPOP, XREAD
// ... BLOCK and the like) don't wait. A periodic snapshot is only taken
// when a command that can write ran since the last one; Close always saves.
//
// Snapshots hold strings, hashes (with field TTLs), lists, sets, sorted
// sets and streams (entries, and consumer groups with their last delivered
// ID; pending entries are not kept, so a group restarts just before its
// oldest pending entry and those entries are delivered again). Each key's
// expiry is stored as an absolute time, so time spent stopped counts and a
// key that expired meanwhile is not restored. HyperLogLogs cannot be read
// out of miniredis and are skipped with a warning, as are keys outside
// database 0: the embedded store is database 0 only.
//
// The snapshot is written to a temporary file in DataDir, synced, and
// renamed over the old one, so a crash leaves either the old or the new
// snapshot. DataDir is created with mode 0700, the snapshot with 0600, and
// on Unix systems a lock file keeps two processes from using the same
// DataDir. A snapshot
// that cannot be read stops [Open] with an error naming the file; Parley
// never silently starts empty.
//
// The embedded store suits one Parley process with a modest data set (up
// to some tens of thousands of keys). Use a real Redis for more, or for
// several Parley processes.
//
// # Concurrency
//
// A [Store] and its client are safe for concurrent use. Run at most one
// [Store.Run] at a time. [Store.Close] may be called while Run is running:
// Run then returns nil. Close is idempotent.
//
// The user manual is docs/operations.md ("Stores").
package store
