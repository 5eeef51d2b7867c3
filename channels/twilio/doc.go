// Package twilio holds what Parley's Twilio channels share, the algorithm of
// the X-Twilio-Signature header that Twilio puts on every webhook request,
// and the Twilio Messaging channel ("twilio": SMS, MMS and WhatsApp through
// Twilio).
//
//	if !twilio.ValidSignature(authToken, webhookURL, form, r.Header.Get(twilio.SignatureHeader)) {
//		// refuse the request
//	}
//
// The messaging channel answers in the webhook's own response with TwiML,
// one <Message> per reply; what SMS cannot show is written as text under
// it (channels.Plain: options, numbered buttons, links, cards), and a typed
// number picks a button of the previous turn. Media are attached on
// WhatsApp and, with the mms setting, on MMS numbers. Its
// settings are auth_token (signs the webhooks), optionally account_sid
// (messages for another account are refused) and webhook_url: the URL
// configured for the number in Twilio, which is what Twilio signs. Without
// it the URL is the request's as the gateway reports it ([channels.Request]
// URL: the Host header, or what a trusted proxy forwarded), which is right
// only when nothing in front of Parley rewrites the URL. The adapter itself
// never reads X-Forwarded-* headers. The event ID is the
// MessageSid, so a retried webhook runs the handler once and gets the same
// answer; the user and the conversation are the sender's number
// (whatsapp:+number for WhatsApp). Status callbacks are acknowledged with an
// empty <Response/>.
//
// The functions are pure, and the [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/twilio-sms.md.
package twilio
