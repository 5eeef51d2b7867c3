// Package discord is the Discord interactions channel ("discord"): Discord
// posts slash commands and button presses to the application's
// Interactions Endpoint URL, signed with Ed25519 over the timestamp and the
// body, and waits 3 seconds for the answer, which Parley gives in the same
// HTTP response (an interaction response with the reply, its options and
// buttons as components, its cards and images as embeds; see rich.go).
// PING is answered with PONG.
//
// Settings: public_key (the application's public key, hex) and optionally
// application_id (interactions for another application are refused).
//
// Normalization: a slash command becomes an event whose intent is the
// command's name, with its options as slots and "/name value ..." as text; a
// press of an option's button becomes an event with the option as text, of
// a payload button one with the payload as postback (the custom_id encodes
// which, see channels.Pressed), and a select menu one with the chosen
// values as text. The
// event ID is the interaction id, the conversation the channel, the user the
// member's or DM user's id, the locale the user's.
//
// Concurrency: an [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/discord.md.
package discord
