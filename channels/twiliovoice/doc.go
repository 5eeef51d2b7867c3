// Package twiliovoice is the Twilio Programmable Voice channel
// ("twilio-voice"): a phone call is a conversation, each thing the caller
// says is a turn, and every answer is TwiML.
//
// The number's "A call comes in" webhook points at
// POST /hooks/{bot}/twilio-voice. The incoming call becomes a turn with the
// intent "welcome" (the bot's welcome handler, or a default greeting). The
// answer is said inside a <Gather input="speech"> whose action is the same
// URL with a turn counter (?turn=N), so the caller's next words come back as
// SpeechResult, and each retry of a turn carries the same message id. A reply
// with a reprompt gets a second <Gather> that says it after silence; an
// ending reply is said and followed by <Hangup/>.
//
//	<Response><Gather input="speech" action="https://bot.example.com/hooks/b/twilio-voice?turn=1"
//	  speechTimeout="auto" language="en-US"><Say>How can I help?</Say></Gather><Hangup/></Response>
//
// A reply's payload buttons (its own and its cards') are offered by number
// after the text ("Say 1 for Order, or 2 for Menu"), in a Gather that takes
// keys and speech and whose action URL carries the choices
// (&choices=base64url JSON, covered by Twilio's signature), so that the
// caller's key, number or title comes back as the button's payload. Cards'
// titles are said and audio media played; links, images, video and files
// cannot be heard and are left out.
//
// Every request must carry a valid X-Twilio-Signature, computed over the
// configured webhook_url (plus the turn counter) so that proxies in front of
// Parley do not break it. Settings: auth_token, webhook_url, and optionally
// voice (e.g. "Polly.Joanna"; SSML from handlers is passed on only to Polly
// and Google voices) and language (BCP 47, default en-US).
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/twilio-voice.md.
package twiliovoice
