// Package xmlx escapes text for XML documents written by hand: TwiML for
// Twilio, SSML for the voice channels and the sandbox's ssml module. It
// imports nothing but the standard library, so any package may use it; its
// functions are pure and safe for concurrent use.
package xmlx
