// Package gateway is Parley's HTTP front door: platform webhooks under
// /hooks/{bot}/{channel}, health checks (/healthz, /readyz) and /metrics.
// It builds the one router; the management API (package adminapi) adds its
// routes through [Config].Admin.
//
// Channel adapters verify and parse webhooks and a [Dispatcher] runs turns.
// Handlers return an error, written by apierr.Write as
// {"error": {"code": "...", "message": "..."}} with the status the error
// itself reports; a panic becomes a 500 of that shape. A webhook to an
// unknown bot or channel, or one that fails verification, gets one neutral
// 401 whatever the reason (logged, and shown to a caller with the admin
// key), so that outsiders cannot list bots. Forwarded headers count only
// from the trusted proxies.
//
// Concurrency: a Server is safe for concurrent use.
//
// The user manual is docs/http-api.md.
package gateway
