// Package alexa is the Alexa custom skill channel ("alexa"): the skill's
// HTTPS endpoint is POST /hooks/{bot}/alexa, and each request Alexa sends is
// a turn answered synchronously with Alexa's response JSON.
//
// Requests become events this way: LaunchRequest is the intent "welcome";
// IntentRequest is its intent with the slot values (a value resolved to an
// entity gives the entity's name, with "<slot>.id" and "<slot>.spoken"
// beside it); Amazon's built-in intents become "help", "stop", "cancel",
// "yes" and "no" (with that word as the text), and AMAZON.FallbackIntent an
// event without an intent, routed by Parley; SessionEndedRequest is the
// intent "session_ended" and gets the empty answer Alexa expects. Other
// request types are acknowledged without a turn.
//
// Answers carry the speech as SSML, the reprompt, a simple card (a Standard
// card with the first https image of a rich reply, whose buttons, cards and
// media are also spoken; see rich.go), and
// shouldEndSession; a reply whose expect names a slot of the current intent,
// or that asks a yes/no question about it, becomes Dialog.ElicitSlot or
// Dialog.ConfirmIntent when the intent has a dialog model, and an intent the
// bot has no handler for is delegated to the dialog model (see
// [voice.Answer.Next]).
//
// Every request is verified as Amazon requires of skills hosted outside
// Lambda: the SignatureCertChainUrl's form, the certificate chain to a
// trusted root with echo-api.amazon.com among its names, the Signature-256
// RSA-SHA256 signature over the raw body, a timestamp within 150 seconds, and
// the configured skill id. The cheap checks (the headers' form, the
// timestamp, the skill id) come first: only a request that passes them can
// make the adapter fetch a certificate. Each certificate URL is fetched by
// one request at a time, at most four distinct URLs at once (a request that
// would need a fifth is refused), and at most 32 results are cached until
// they expire. The setting verify_signature=false skips the certificate and
// signature checks for local testing, and every such request is logged as a
// warning.
//
//	a := alexa.New(alexa.Config{Logger: log})              // production: system roots, HTTP fetch
//	a := alexa.New(alexa.Config{Roots: pool, FetchCertificate: fake}) // tests: a local CA
//
// Concurrency: an Adapter is safe for concurrent use; the certificate cache
// is shared by all bots.
//
// The user manual is docs/channels/alexa.md.
package alexa
