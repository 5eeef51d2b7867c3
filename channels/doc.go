// Package channels defines what a channel adapter is: the piece that turns one
// platform's webhook into Parley events and renders the answers back in that
// platform's own format. Each platform lives in its own sub-package.
//
// An [Adapter] is pure protocol: it verifies and parses a [Request] and renders
// [msg.TurnResult]s; it never touches Redis, Lua or HTTP routing. The
// gateway looks adapters up in a [Registry] built once at start-up.
//
// Concurrency: adapters are shared by all requests and must be safe for
// concurrent use; a Request belongs to one goroutine.
//
// The user manual is docs/channels/README.md.
package channels
