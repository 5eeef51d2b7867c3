// Package dialogflowcx is the Dialogflow CX (v3) webhook channel
// ("dialogflow-cx"): a flow's fulfillment calls POST /hooks/{bot}/dialogflow-cx
// and Parley answers with a WebhookResponse.
//
// The webhook's tag names the Parley intent to run (set the tag to the
// handler's name in the CX console); without a tag, the matched intent's
// display name is used ("Default Welcome Intent" is "welcome"). The
// session's parameters and the matched intent's resolved parameters become
// slots; the text or transcript is the text; the session id is the
// conversation.
//
// The answer is fulfillment_response text messages (and output audio SSML when
// the handler returned SSML), the routing state mirrored in session
// parameters (parley_intent, parley_expect: conditions in the flow can use
// them), and, when the handler ends the conversation, a transition to the
// current flow's END_SESSION page. Buttons, cards and media are a custom
// payload of Dialogflow CX Messenger rich content (chips, info, image and
// link button elements); the turn's choices are kept in the session
// parameter parley_choices so that the next text naming one (a chip's text,
// a title, a number) gets the button's payload as its postback. The
// channel data "dialogflow-cx" is merged into the response.
//
// CX has no request signature: configure basic auth (username, password) or a
// header (header_name, header_value) on the webhook, and the same in the
// channel's settings.
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/dialogflow.md.
package dialogflowcx
