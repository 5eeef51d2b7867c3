package intents

import "github.com/parleyhq/parley/msg"

// FallbackIntent is the handler that answers turns no other handler matched.
const FallbackIntent = "fallback"

// DefaultFallbackText is the built-in answer when a bot has no fallback handler.
const DefaultFallbackText = "Sorry, I didn't get that."

// Lifecycle intents: what voice channels send for the platform's own requests
// rather than for something the user said. A bot answers each with a handler
// of that name; without one, the turn gets the built-in answer below and never
// falls through to an expected intent, the classifier or the fallback handler
// (a user who says "stop" in the middle of a question must be let go).
const (
	// WelcomeIntent starts a conversation: an incoming call, a skill launch.
	WelcomeIntent = "welcome"
	// StopIntent and CancelIntent are the user asking to leave.
	StopIntent   = "stop"
	CancelIntent = "cancel"
	// SessionEndedIntent is the platform closing the conversation (the user
	// hung up or stayed silent); whatever the bot answers is not delivered.
	SessionEndedIntent = "session_ended"
)

// Built-in answers to lifecycle intents the bot has no handler for.
const (
	DefaultWelcomeText = "Hello! How can I help you?"
	DefaultGoodbyeText = "Goodbye."
)

// Lifecycle reports whether intent is a lifecycle intent.
func Lifecycle(intent string) bool {
	switch intent {
	case WelcomeIntent, StopIntent, CancelIntent, SessionEndedIntent:
		return true
	}
	return false
}

// BuiltinAnswer is the built-in reply to a lifecycle intent the bot does not
// handle: the greeting, or a goodbye that ends the conversation. ok is false
// for any other intent, which gets the fallback text.
func BuiltinAnswer(intent string) (text string, end, ok bool) {
	switch intent {
	case WelcomeIntent:
		return DefaultWelcomeText, false, true
	case StopIntent, CancelIntent, SessionEndedIntent:
		return DefaultGoodbyeText, true, true
	}
	return "", false, false
}

// Classifier maps free text to intents. Implementations must be safe for
// concurrent use and must not do I/O.
type Classifier interface {
	// Classify returns candidates best first; an empty result means no match.
	Classify(text string) []msg.Candidate
}

// RouteInput is what routing needs beyond the event itself.
type RouteInput struct {
	// Expect is the intent the previous turn asked the next one to go to.
	Expect string
	// Has reports whether the bot has a handler for an intent.
	Has func(intent string) bool
	// Classifier may be nil when the bot has no NLU data.
	Classifier Classifier
	// Threshold is the minimum classifier confidence to accept; 0 accepts any match.
	Threshold float64
}

// Route decides which handler answers ev. The precedence is: an intent the
// platform resolved, a button press whose payload names one of the bot's
// intents, the intent the previous turn expected, the classifier's best
// match above the threshold, the bot's fallback handler, and finally the
// built-in apology. A rule only wins when the bot has a handler for its intent.
// A [Lifecycle] intent the bot does not handle goes straight to the built-in
// answer. For a button press (ev.Postback set) the classifier reads the
// payload instead of the text.
func Route(ev *msg.Event, in RouteInput) msg.Decision {
	has := in.Has
	if has == nil {
		has = func(string) bool { return false }
	}
	if ev.Intent != "" && has(ev.Intent) {
		return msg.Decision{Intent: ev.Intent, Source: msg.SourcePlatform, Confidence: ev.Confidence}
	}
	if Lifecycle(ev.Intent) {
		return msg.Decision{Source: msg.SourceBuiltin}
	}
	if ev.Postback != "" && has(ev.Postback) {
		return msg.Decision{Intent: ev.Postback, Source: msg.SourcePostback, Confidence: 1}
	}
	if in.Expect != "" && has(in.Expect) {
		return msg.Decision{Intent: in.Expect, Source: msg.SourceExpect}
	}
	var candidates []msg.Candidate
	if text := RoutedText(ev); in.Classifier != nil && text != "" {
		candidates = in.Classifier.Classify(text)
		for _, c := range candidates {
			if c.Confidence < in.Threshold || !has(c.Intent) {
				continue
			}
			return msg.Decision{Intent: c.Intent, Source: msg.SourceClassifier, Confidence: c.Confidence}
		}
	}
	if has(FallbackIntent) {
		return msg.Decision{Intent: FallbackIntent, Source: msg.SourceFallback, Candidates: candidates}
	}
	return msg.Decision{Source: msg.SourceBuiltin, Candidates: candidates}
}

// RoutedText is what the classifier reads of ev: the payload of a pressed
// button, or else the text.
func RoutedText(ev *msg.Event) string {
	if ev.Postback != "" {
		return ev.Postback
	}
	return ev.Text
}
