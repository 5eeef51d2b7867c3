// Package seal encrypts values at rest: bots' secrets and channels' secret
// settings, before they are sent to Redis or written to the embedded
// store's snapshot. It uses AES-256-GCM from the standard library, a random
// nonce per value, and a context (the bot and the value's name) that is
// authenticated with the value, so a sealed value copied to another bot or
// name does not open. Each sealed value names its key's id, so keys can
// rotate: a [Keyring] seals under its current key and opens under any of
// its keys.
//
//	kr, err := seal.New(current, previous)
//	s, err := kr.Seal([]byte("sk-..."), "secret", bot, "OPENAI_KEY")
//	// s: "enc:v1:1f2e3d4c:..."
//	v, err := kr.Open(s, "secret", bot, "OPENAI_KEY")
//
// Concurrency: a Keyring is immutable and safe for concurrent use. The
// user manual is docs/secrets.md.
package seal
