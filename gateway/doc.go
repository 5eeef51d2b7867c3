// Package gateway is Parley's HTTP front door: platform webhooks under
// /hooks/{bot}/{channel}, the management API under /v1, and health checks.
//
// It knows HTTP and nothing else: channel adapters verify and parse webhooks,
// a [Dispatcher] runs turns, and a [Catalog] stores bots. Every error leaves
// through one function that decides the status and writes
// {"error": {"code": "...", "message": "..."}}; a panic anywhere in a handler
// becomes a 500 of that shape, never a dropped connection. A webhook to an
// unknown bot or channel, or one that fails verification, gets one neutral
// 401 whatever the reason (the reason is logged, and shown to a caller with
// the admin key), so that outsiders cannot list bots. Forwarded headers
// count only from the trusted proxies; a body over the limit is read on a
// little before the 413, so that the client can read it.
//
// Concurrency: a Server is safe for concurrent use.
//
// The user manual is docs/http-api.md.
package gateway
