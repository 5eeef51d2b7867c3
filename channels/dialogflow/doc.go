// Package dialogflow is the Dialogflow ES (v2) fulfillment webhook channel
// ("dialogflow"): Dialogflow matches the intent and extracts parameters, and
// calls POST /hooks/{bot}/dialogflow for intents with fulfillment enabled;
// Parley runs the handler of that intent and answers with a WebhookResponse.
//
// The matched intent's display name is the event's intent (characters Parley
// does not allow in intent names become '_': "Order Pizza" -> "Order_Pizza");
// the Default Welcome Intent (action input.welcome) is "welcome" and fallback
// intents (action input.unknown) leave routing to Parley (expect, NLU,
// fallback). Parameters become slots; queryText is the text; the session id
// is the conversation.
//
// The answer is fulfillmentText plus a text message, and a TELEPHONY
// synthesize-speech message when the handler returned SSML, for Dialogflow's
// phone gateway. Buttons, options, cards and images are Dialogflow's
// quickReplies, card and image messages, for every platform and for the
// integration the request came from; the turn's choices are kept in an
// output context (parley_choices) so that the next query naming one (a
// pressed button's text, a title, a number) gets the button's payload as
// its postback. The channel data "dialogflow" is merged into the response.
// Reprompts and ending the call are configured on the intent in
// Dialogflow itself ("end of conversation"); Parley clears its own session
// when the handler ends the conversation.
//
// Dialogflow ES has no request signature: configure basic auth (username,
// password) or a custom header (header_name, header_value) on the
// fulfillment, and the same in the channel's settings.
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/dialogflow.md.
package dialogflow
