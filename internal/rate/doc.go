// Package rate holds how a rate limit is written and read ("100/s",
// "6000/m"): the [Rate] and the [Limits] of one turn. It is a leaf, so that
// the catalog can validate a bot's settings without the Redis limiter, which
// lives in package ratelimit.
package rate
