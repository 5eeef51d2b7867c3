// Package slack is the Slack channel: the Events API (messages in channels
// and direct messages, app mentions), interactivity (clicks on the buttons
// Parley renders for reply options) and slash commands.
//
// Every request is verified with Slack's v0 signature over the raw body
// (HMAC-SHA256 with the app's signing secret) and must carry a timestamp
// within five minutes of the gateway's clock. The url_verification handshake
// is answered with its challenge. Messages from bots (the bot itself
// included), edits, joins and other subtypes are acknowledged and ignored.
//
// Slack wants an answer within 3 seconds, so events are processed
// asynchronously: the webhook is acknowledged with an empty 200 and the reply
// goes out through chat.postMessage with the bot token, in the thread the
// message came from. Options become buttons; a click comes back as a message
// with the option's text. Buttons, cards and media are rendered in Block Kit
// (rich.go); a click on a payload button (block_actions) is a turn with the
// payload as its postback.
//
// Settings (Slack's names): signing_secret, bot_token, and api_base_url
// (default https://slack.com/api; tests point it at a fake server).
//
// Conversations are Slack channels ("C123"), or threads ("C123:1531431954.000073").
// Event ids are the delivery ids Slack repeats on retries: event_id, or the
// trigger_id of a slash command or a click.
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/slack.md.
package slack
