// Package messenger is the Facebook Messenger and Instagram Messaging
// channel ("messenger"): Meta posts the page's (or Instagram account's)
// webhook notifications, signed with X-Hub-Signature-256; Parley
// acknowledges them at once and answers later through the Send API
// (POST {api_base_url}/me/messages).
//
// Settings: app_secret (signs the webhooks), verify_token (the subscription
// handshake), access_token (the page access token the Send API needs) and
// optionally api_base_url (default https://graph.facebook.com/v21.0).
//
// Normalization: a text message becomes an event with its text; a postback
// button becomes one with its payload as the postback and its title as the
// text; a quick reply is a postback when it offered a reply's button, and
// the option itself as the text when it offered an option. Echoes of the
// page's own messages, reads, deliveries, reactions and edits are
// acknowledged and ignored. The event ID is the message's mid, the user and
// the conversation are the sender's page-scoped id (PSID or IGSID); the raw
// payload is the messaging item with the notification's "object" ("page" or
// "instagram") added.
//
// Rendering ([Messages]): a reply's text with buttons is a button template
// (three buttons, links first; the other postbacks become quick replies),
// media are attachments (captions follow as text), cards are generic
// templates of up to ten elements, options are quick replies (13 in all),
// and a reply's channel data "messenger" is merged into its last request.
// Payloads and options travel as [channels.PayloadValue] and
// [channels.OptionValue]. What Messenger cannot show (a link that is not
// http(s), files on Instagram, quick replies beyond 13) is sent as text by
// [channels.Plain], and a typed number picks one of its numbered buttons.
//
// Concurrency: an [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/messenger.md.
package messenger
