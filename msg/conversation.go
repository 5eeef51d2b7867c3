package msg

import "strings"

// ConversationKey is a conversation's identity in every store of a bot
// (session, history, remembered answers, pinned versions, transcripts,
// analytics, invocation logs, queued and parked events, rate limits): the
// channel it happens on and the platform's id for it, "telegram:123". Ids
// are the platforms' own, so two channels may use the same one (a Telegram
// chat 123 and a Messenger user 123); the key keeps them apart, and no
// channel can name a conversation of another.
//
// Derive it with [KeyOf] or [Event.Key], never by hand. Channel names hold
// no colon, so the key splits back at its first colon ([ConversationKey.Split]).
// It is also the combined id the management API documents for a
// conversation: the channel, a colon, the platform's id.
type ConversationKey string

// KeyOf is the key of the conversation with the platform id conversation
// on channel.
func KeyOf(channel, conversation string) ConversationKey {
	return ConversationKey(channel + ":" + conversation)
}

// Key is the key of the event's conversation.
func (e *Event) Key() ConversationKey { return KeyOf(e.Channel, e.Conversation) }

// Split returns the channel and the platform's conversation id; ok is false
// for a string that is no key (no colon, or an empty channel).
func (k ConversationKey) Split() (channel, conversation string, ok bool) {
	channel, conversation, ok = strings.Cut(string(k), ":")
	return channel, conversation, ok && channel != ""
}
