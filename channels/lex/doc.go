// Package lex is the Amazon Lex V2 code hook channel ("lex"). Lex V2 calls
// code hooks as AWS Lambda functions, so a small forwarding function posts
// each Lex V2 event, unchanged, to POST /hooks/{bot}/lex and returns Parley's
// answer as its result (docs/channels/lex.md has one).
//
// The session's intent is the event's intent (Amazon's built-in intents are
// mapped as on Alexa: "help", "stop", "cancel", "yes", "no", and the fallback
// intent leaves routing to Parley); slots are the interpreted values (with
// "<slot>.spoken" when the user said something else); inputTranscript is the
// text; the Lex session id is the conversation.
//
// The answer is a Lex V2 response whose dialog action follows the handler's
// reply (see [voice.Answer.Next]): Close when it ends the conversation (the
// intent Fulfilled) or failed (Failed), ElicitSlot when expect names a slot
// of the intent, ConfirmIntent for a yes/no question about the intent,
// Delegate when the bot has no handler (or the handler said nothing) in a
// dialog code hook, and ElicitIntent otherwise, so that the user's next words
// come back to Parley. Session attributes are kept, with Parley's routing
// state added (parley_intent, parley_expect).
//
// Buttons, options and cards are ImageResponseCards for a text client (up
// to 5 buttons a card, the rest as text) and spoken choices ("Say 1 for
// Order") for a voice client; the turn's choices are kept in the session
// attribute parley_choices, so that the next input naming one (a button's
// value, a title, a keyed or spoken number) gets the button's payload as
// its postback. The channel data "lex" is merged into the response.
//
// Authentication is basic auth (username, password) or a header
// (header_name, header_value) that the forwarding function sends.
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/lex.md.
package lex
