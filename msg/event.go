package msg

import (
	"encoding/json"
	"time"
)

// Event is one inbound user turn, normalized from whatever channel it came on.
type Event struct {
	// ID identifies the message on its platform; retries of one webhook carry
	// the same ID, which is what de-duplication keys on. Empty means unknown.
	ID string `json:"id"`
	// IDMadeUp is set when Parley made the ID up because the caller sent
	// none (the web channel's requests without "id"): no retry can carry
	// it, so the turn's answer is not remembered for one.
	IDMadeUp bool `json:"-"`
	// Bot is the tenant the message is addressed to.
	Bot string `json:"bot"`
	// Channel is the adapter name ("web", "slack", "alexa", ...).
	Channel string `json:"channel"`
	// User identifies the sender within the channel.
	User string `json:"user"`
	// Conversation groups turns that share one session.
	Conversation string `json:"conversation"`
	// Text is what the user said or typed; may be empty for button presses.
	Text string `json:"text"`
	// Postback is the payload of a button the user pressed (a Telegram
	// callback query, a Slack block action, a Messenger postback, a web
	// {"postback": ...}); empty for a typed or spoken message.
	Postback string `json:"postback,omitempty"`
	// Choice names a button of the previous turn for a channel that cannot
	// carry its payload back as is: the number the user typed ("2") on a
	// channel that shows buttons as numbered lines, or the [ChoiceRef] of a
	// payload too long for the platform's button value. The engine resolves
	// it against the choices the session kept (see [ResolveChoice]) and sets
	// Postback; a Choice that names nothing leaves the event as it was.
	Choice string `json:"choice,omitempty"`
	// Intent is set when the platform already resolved it (Alexa, Dialogflow,
	// a button payload); empty means Parley must route the text.
	Intent string `json:"intent,omitempty"`
	// Confidence is the platform's or classifier's confidence in Intent, 0..1.
	Confidence float64 `json:"confidence,omitempty"`
	// Slots are entity values extracted from the message, by name.
	Slots map[string]string `json:"slots,omitempty"`
	// Locale is a BCP 47 tag such as "en-US", when the platform tells it.
	Locale string `json:"locale,omitempty"`
	// Voice is true for spoken channels, so handlers can answer with SSML.
	Voice bool `json:"voice,omitempty"`
	// Timestamp is when the platform says the message was sent.
	Timestamp time.Time `json:"timestamp"`
	// Received is when Parley received the message (the queue stamps it at
	// enqueue, the engine at the turn when it is zero). A message received
	// before its conversation or user was erased is dropped.
	Received time.Time `json:"received,omitzero"`
	// Raw is the platform payload as received, for handlers that need a field
	// the normalized event does not carry.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Reply is a handler's answer to one turn.
type Reply struct {
	// Text is the plain-text answer.
	Text string `json:"text,omitempty"`
	// SSML is the spoken form for voice channels; when empty, voice channels speak Text.
	SSML string `json:"ssml,omitempty"`
	// Reprompt is said when the user stays silent (voice) or may be shown as a hint.
	Reprompt string `json:"reprompt,omitempty"`
	// Options are quick-reply choices, rendered as buttons where the channel has them.
	Options []string `json:"options,omitempty"`
	// Buttons are actions under the reply's text: a payload sent back as a
	// postback when pressed, or a link.
	Buttons []Button `json:"buttons,omitempty"`
	// Cards are titled items with an image and buttons; several make a carousel.
	Cards []Card `json:"cards,omitempty"`
	// Media are images, audio, video or files sent with the reply.
	Media []Media `json:"media,omitempty"`
	// ChannelData is raw, platform-specific content by channel kind
	// ("slack", "telegram", ...), merged into that channel's message as given.
	ChannelData map[string]json.RawMessage `json:"channel_data,omitempty"`
	// EndConversation closes the conversation: its session is cleared after this turn.
	EndConversation bool `json:"end_conversation,omitempty"`
	// Expect routes the next turn of this conversation to the named intent.
	Expect string `json:"expect,omitempty"`
	// Sensitive marks the turn's user text as not to be stored in transcripts.
	Sensitive bool `json:"sensitive,omitempty"`
	// Handoff, when set, hands the conversation to a person after this
	// reply: the bot stops answering it until it is released.
	Handoff *Handoff `json:"handoff,omitempty"`
}

// Outcome classifies how a turn ended.
type Outcome string

// Turn outcomes.
const (
	OutcomeHandled  Outcome = "handled"
	OutcomeFallback Outcome = "fallback"
	OutcomeError    Outcome = "error"
	OutcomeTimeout  Outcome = "timeout"
	// OutcomeHuman is a user's message in a conversation a person owns
	// (handed off): recorded, shown to the agents, and run by no handler.
	OutcomeHuman Outcome = "human"
)

// TurnResult is what one processed event produced, as channels render it.
type TurnResult struct {
	// Event is the event that was processed.
	Event *Event `json:"-"`
	// Conversation is the conversation the turn belongs to.
	Conversation string `json:"conversation"`
	// Decision is how the turn was routed.
	Decision Decision `json:"decision"`
	// Replies are the answers to send, in order.
	Replies []Reply `json:"replies"`
	// EndConversation is true when the conversation ended with this turn.
	EndConversation bool `json:"end_conversation"`
	// Outcome says whether a handler answered, the turn fell back, or failed.
	Outcome Outcome `json:"outcome"`
	// Duplicate is true when the event was a retry answered from memory.
	Duplicate bool `json:"duplicate,omitempty"`
}
