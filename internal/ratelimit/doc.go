// Package ratelimit enforces per-bot and per-conversation rate limits in
// Redis, so that they hold across all replicas.
//
// A limit is a [Rate] such as "100/s" or "6000/m": a sustained rate of
// Count turns per Period, with bursts of up to Count turns at once. It is
// enforced with the generic cell rate algorithm (GCRA): each limit is one
// Redis key holding the time at which the next turn would fit, so a check
// costs one key per limit, no counters per window, and the key expires as
// soon as the limit is back to full.
//
//	lim := ratelimit.New(rdb, ratelimit.Config{KeyPrefix: "parley:", Logger: log})
//	d := lim.Allow(ctx, "pizzabot", "u1", rate.Limits{Bot: perBot, Conversation: perUser})
//	if !d.Allowed {
//		// refuse the turn; the client may try again after d.RetryAfter
//	}
//
// Both limits of a turn are checked and counted by one embedded Lua script
// (lua/allow.lua), in one round trip: a turn counts against both limits
// only when both allow it, so a conversation that is over its own limit
// does not use up its bot's. The keys, "<prefix>rl:{<bot>}" and
// "<prefix>rl:{<bot>}:c:<hash of the conversation>", share the bot's hash tag, so the
// script stays in one Redis Cluster slot. The time is Redis's own (TIME),
// so replicas with skewed clocks agree.
//
// Why not github.com/go-redis/redis_rate: it runs the same algorithm (and
// runs on the embedded store too), but it checks one key per call, so two
// limits would take two round trips and a turn refused by the second would
// still have been counted by the first; and it puts a fixed "rate:" prefix
// before every key instead of the configured one. The script here is about
// forty lines.
//
// Allow fails open: when Redis does not answer within Config.Timeout, the
// turn is allowed and a warning is logged. A limiter outage never loses a
// turn; a store that is really down is reported by the session store,
// which every turn needs anyway.
//
// Concurrency: a Limiter is safe for concurrent use.
//
// The user manual is docs/handlers.md ("Isolation") and docs/configuration.md.
package ratelimit
