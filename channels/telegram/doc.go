// Package telegram is the Telegram channel: Bot API webhooks with text
// messages (commands included) and clicks on inline keyboard buttons.
//
// Telegram signs nothing; setWebhook's secret_token comes back in the
// X-Telegram-Bot-Api-Secret-Token header of every update, and a request
// without the right one (compared in constant time) gets 401. Edited
// messages, channel posts, media without text and messages from bots are
// acknowledged and ignored.
//
// Updates are acknowledged at once and processed asynchronously (Telegram
// holds back the bot's next updates until one is acknowledged). Replies go out
// with sendMessage; options and buttons become an inline keyboard, cards
// photos with a caption and their own keyboard, media sendPhoto, sendAudio,
// sendVideo or sendDocument (rich.go). A click is answered with
// answerCallbackQuery and comes back as the option's text, or as the
// button's payload (callback_data holds at most 64 bytes: a longer payload
// travels as a msg.ChoiceRef the engine resolves from the session).
//
// Settings (the Bot API's names): secret_token, bot_token, and api_base_url
// (default https://api.telegram.org; tests point it at a fake server).
//
// Conversations are chats ("1111111"), or forum topics ("-100123:7"); event
// ids are update_id, which Telegram repeats when it retries an update.
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/telegram.md.
package telegram
