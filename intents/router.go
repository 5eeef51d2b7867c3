package intents

// Source says how a turn's intent was chosen.
type Source string

// Sources, in routing precedence order.
const (
	SourcePlatform   Source = "platform"
	SourceExpect     Source = "expect"
	SourceClassifier Source = "classifier"
	SourceFallback   Source = "fallback"
	SourceBuiltin    Source = "builtin"
)

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

// Candidate is one intent a classifier considered, with its confidence.
type Candidate struct {
	Intent     string  `json:"intent"`
	Confidence float64 `json:"confidence"`
}

// Classifier maps free text to intents. Implementations must be safe for
// concurrent use and must not do I/O.
type Classifier interface {
	// Classify returns candidates best first; an empty result means no match.
	Classify(text string) []Candidate
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

// Decision is the router's verdict for one turn.
type Decision struct {
	// Intent is the handler to run; empty when Source is SourceBuiltin.
	Intent string `json:"intent"`
	// Source says which rule chose Intent.
	Source Source `json:"source"`
	// Confidence is the classifier's or platform's confidence, when known.
	Confidence float64 `json:"confidence,omitempty"`
	// Candidates are the classifier's suggestions when the turn fell back,
	// so a fallback handler can ask "did you mean ...?".
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Route decides which handler answers ev. The precedence is: an intent the
// platform resolved, the intent the previous turn expected, the classifier's
// best match above the threshold, the bot's fallback handler, and finally the
// built-in apology. A rule only wins when the bot has a handler for its intent.
// A [Lifecycle] intent the bot does not handle goes straight to the built-in
// answer.
func Route(ev *Event, in RouteInput) Decision {
	has := in.Has
	if has == nil {
		has = func(string) bool { return false }
	}
	if ev.Intent != "" && has(ev.Intent) {
		return Decision{Intent: ev.Intent, Source: SourcePlatform, Confidence: ev.Confidence}
	}
	if Lifecycle(ev.Intent) {
		return Decision{Source: SourceBuiltin}
	}
	if in.Expect != "" && has(in.Expect) {
		return Decision{Intent: in.Expect, Source: SourceExpect}
	}
	var candidates []Candidate
	if in.Classifier != nil && ev.Text != "" {
		candidates = in.Classifier.Classify(ev.Text)
		for _, c := range candidates {
			if c.Confidence < in.Threshold || !has(c.Intent) {
				continue
			}
			return Decision{Intent: c.Intent, Source: SourceClassifier, Confidence: c.Confidence}
		}
	}
	if has(FallbackIntent) {
		return Decision{Intent: FallbackIntent, Source: SourceFallback, Candidates: candidates}
	}
	return Decision{Source: SourceBuiltin, Candidates: candidates}
}
