// Package voice holds what Parley's voice channels (Alexa, Twilio Voice,
// Dialogflow ES and CX, Amazon Lex V2) share: turning a handler's reply into
// something a speech synthesizer accepts, choosing the next dialog step, and
// the shared-secret authentication of the webhook-style channels.
//
// A handler may answer with text only, which is spoken SSML-escaped, or with
// its own SSML, which is checked here before it reaches the platform: a reply
// whose SSML is malformed, or uses elements no platform speaks, is spoken from
// its text instead (or, without text, as an apology), never sent on.
//
//	a := voice.NewAnswer(results[0])
//	a.Speech.SSML // "<speak>Large or small?</speak>"
//	step, slot := a.Next(voice.Dialog{Intent: "OrderPizza", Slots: []string{"size"}})
//	// step == voice.ElicitSlot, slot == "size" when the handler said expect = "size"
//
// Everything here is pure functions over plain data: safe for concurrent use.
//
// The user manual is docs/channels/voice.md.
package voice
