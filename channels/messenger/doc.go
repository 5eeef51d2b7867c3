// Package messenger is the Facebook Messenger and Instagram Messaging
// channel ("messenger"): Meta posts the page's (or Instagram account's)
// webhook notifications, signed with X-Hub-Signature-256; Parley
// acknowledges them at once and answers later through the Send API
// (POST {api_base_url}/me/messages), with quick replies for a reply's options.
//
// Settings: app_secret (signs the webhooks), verify_token (the subscription
// handshake), access_token (the page access token the Send API needs) and
// optionally api_base_url (default https://graph.facebook.com/v21.0).
//
// Normalization: a text message becomes an event with its text; a quick
// reply or a postback button becomes an event whose text is the payload
// (Parley's quick replies carry the option itself). Echoes of the page's own
// messages, reads, deliveries, reactions and edits are acknowledged and
// ignored. The event ID is the message's mid, the user and the conversation
// are the sender's page-scoped id (PSID or IGSID).
//
// Concurrency: an [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/messenger.md.
package messenger
