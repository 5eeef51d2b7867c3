// Package jsonx holds JSON helpers for writers that build JSON by hand on a
// hot path (the sandbox's json module, analytics transcripts) and must agree
// with encoding/json byte for byte. It imports nothing but the standard
// library, so any package may use it; its functions are pure and safe for
// concurrent use.
package jsonx
