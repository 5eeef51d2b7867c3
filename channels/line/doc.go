// Package line is the LINE Messaging API channel ("line"): LINE posts the
// channel's webhook events, signed with X-Line-Signature; Parley
// acknowledges them at once and answers later with the event's reply token
// while it is fresh, else with a push message.
//
// Settings: channel_secret (signs the webhooks), channel_access_token (for
// the reply and push calls) and optionally api_base_url (default
// https://api.line.me).
//
// Normalization: a text message becomes an event with its text, a postback
// one with the postback data as its postback (and no text), other messages (stickers, images, locations)
// an event without text; follows, joins, leaves, unsends, reads and events
// in standby mode are acknowledged and ignored. The event ID is the
// webhookEventId, which a redelivery keeps; the conversation is the group,
// the room or the user the message came from. An event more than
// [MaxEventAge] from the clock is dropped as a replay, and a webhook of only
// such events is refused.
//
// Rendering ([Messages]): a reply's text with buttons is a Flex bubble,
// its cards Flex carousels, its https images image messages, its options
// quick-reply buttons, and its channel data "line" is merged into its last
// message; what LINE cannot show is sent as text.
//
// Concurrency: an [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/line.md.
package line
