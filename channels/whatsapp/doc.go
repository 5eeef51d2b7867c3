// Package whatsapp is the WhatsApp Cloud API channel ("whatsapp"): Meta
// posts the business account's webhook notifications, signed with
// X-Hub-Signature-256; Parley acknowledges them at once and answers later
// through POST {api_base_url}/{phone_number_id}/messages, with reply buttons
// for up to 3 options and a list for up to 10.
//
// Settings: app_secret, verify_token, access_token (a system user's token
// with whatsapp_business_messaging), phone_number_id (the business number
// that answers; messages to the account's other numbers are ignored) and
// optionally api_base_url (default https://graph.facebook.com/v21.0).
//
// Normalization: text, a reply button or list choice (its id, which is the
// option itself), a template quick-reply button (its payload) and media with
// a caption become events; statuses (sent, delivered, read), reactions and
// system notices are acknowledged and ignored. The event ID is the wamid,
// the user and the conversation are the sender's WhatsApp id (phone number).
//
// Concurrency: an [Adapter] is safe for concurrent use.
//
// The user manual is docs/channels/whatsapp.md.
package whatsapp
