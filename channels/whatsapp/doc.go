// Package whatsapp is the WhatsApp Cloud API channel ("whatsapp"): Meta
// posts the business account's webhook notifications, signed with
// X-Hub-Signature-256; Parley acknowledges them at once and answers later
// through POST {api_base_url}/{phone_number_id}/messages.
//
// Settings: app_secret, verify_token, access_token (a system user's token
// with whatsapp_business_messaging), phone_number_id (the business number
// that answers; messages to the account's other numbers are ignored) and
// optionally api_base_url (default https://graph.facebook.com/v21.0).
//
// Normalization: text, a reply button or list choice, a template
// quick-reply button and media with a caption become events; statuses
// (sent, delivered, read), reactions and system notices are acknowledged
// and ignored. A reply button or list row that offered a reply's button
// gives the event its payload as the postback and its title as the text;
// one that offered an option gives the option as the text; a template's
// quick-reply button gives its payload and text. The event ID is the wamid,
// the user and the conversation are the sender's WhatsApp id (phone number).
//
// Rendering ([Messages]): a reply's buttons and options are reply buttons
// (up to 3 with distinct titles) or a list (up to 10 rows; the rest as
// text), its links are written in its text, its media are image, audio,
// video and document messages by link with their caption, and each card is
// an image-headed message with reply buttons (or an image and a list, or an
// image with a caption). The channel data "whatsapp" is merged into the
// reply's last request. Reply ids are [channels.PayloadValue] and
// [channels.OptionValue]; what WhatsApp cannot show is sent as text by
// [channels.Plain], and a typed number picks one of its numbered buttons.
//
// Concurrency: an [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/whatsapp.md.
package whatsapp
