// Package adminapi is Parley's management API: bots, channels, intents and
// their canaries, NLU, secrets (whose values it never shows), schedules,
// dead letters, logs, usage, analytics, erasure and human handoffs under /v1, every route behind the admin key, and the console's
// static files under /console/. [API.Mount] adds the routes to the router
// that the gateway serves.
//
// Every handler returns an error; one adapter writes it with apierr.Write,
// whose status, code and message come from the error itself
// ({"error": {"code": "...", "message": "..."}}).
//
// Concurrency: an API is safe for concurrent use.
package adminapi
