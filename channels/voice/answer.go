package voice

import (
	"strings"

	"github.com/parleyhq/parley/msg"
)

// DefaultApology is said when a turn could not run at all (the store is
// unreachable, the conversation stayed busy), or when a reply had nothing
// valid to say.
const DefaultApology = "Sorry, I can't answer right now. Please try again in a moment."

// Speech is something a voice channel says.
type Speech struct {
	// SSML is a complete, valid <speak> document.
	SSML string
	// Text is the plain-text form, for cards, text fields and logs.
	Text string
}

// IsZero reports whether there is nothing to say.
func (s Speech) IsZero() bool { return s.SSML == "" }

// FromText is the speech of plain text, SSML-escaped.
func FromText(text string) Speech {
	text = strings.TrimSpace(text)
	if text == "" {
		return Speech{}
	}
	ssml := TextToSSML(text)
	for n := len(text); len(ssml) > MaxSSMLBytes; {
		n = n * 3 / 4
		text = Truncate(text, n)
		ssml = TextToSSML(text)
	}
	return Speech{SSML: ssml, Text: text}
}

// FromSSML is the speech of a handler's SSML. A fragment without a <speak>
// root is wrapped in one. Invalid SSML is an *InvalidSSMLError.
func FromSSML(doc string) (Speech, error) {
	doc = strings.TrimSpace(doc)
	if doc == "" {
		return Speech{}, nil
	}
	if !strings.HasPrefix(doc, "<speak") && !strings.HasPrefix(doc, "<?xml") {
		doc = "<speak>" + doc + "</speak>"
	}
	text, err := parseSSML(doc)
	if err != nil {
		return Speech{}, err
	}
	return Speech{SSML: doc, Text: text}, nil
}

// Truncate shortens s to at most n bytes, at a word boundary when it can.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	if i := strings.LastIndexByte(s[:cut], ' '); i > n/2 {
		cut = i
	}
	return strings.TrimSpace(s[:cut])
}

// say is one reply's speech: its SSML when valid, else its text.
func say(text, ssml string) (Speech, error) {
	if ssml != "" {
		sp, err := FromSSML(ssml)
		if err == nil {
			if sp.Text == "" {
				sp.Text = strings.TrimSpace(text)
			}
			return sp, nil
		}
		if fb := FromText(text); !fb.IsZero() {
			return fb, err
		}
		return FromText(DefaultApology), err
	}
	// Text that is itself an SSML document (a reprompt written as SSML).
	if t := strings.TrimSpace(text); strings.HasPrefix(t, "<speak") {
		sp, err := FromSSML(t)
		if err == nil {
			return sp, nil
		}
		return FromText(DefaultApology), err
	}
	return FromText(text), nil
}

// join concatenates speeches into one document.
func join(parts []Speech) Speech {
	switch len(parts) {
	case 0:
		return Speech{}
	case 1:
		return parts[0]
	}
	var ssml, text []string
	for _, p := range parts {
		if p.IsZero() {
			continue
		}
		ssml = append(ssml, Inner(p.SSML))
		text = append(text, p.Text)
	}
	if len(ssml) == 0 {
		return Speech{}
	}
	return Speech{SSML: "<speak>" + strings.Join(ssml, " ") + "</speak>", Text: strings.Join(text, " ")}
}

// Answer is a turn's result as a voice channel renders it.
type Answer struct {
	// Speech is everything the turn says, replies joined.
	Speech Speech
	// Reprompt is said when the user stays silent; zero when there is none.
	Reprompt Speech
	// Options are the replies' quick-reply choices (speech recognition hints).
	Options []string
	// Expect is the intent, or slot, the handler expects the next turn to answer.
	Expect string
	// End is true when the conversation ends with this turn.
	End bool
	// Failed is true when the handler failed or timed out; Speech is then the
	// bot's error reply.
	Failed bool
	// Unhandled is true when the bot has no handler for the turn and it got the
	// built-in fallback text.
	Unhandled bool
	// HasSSML is true when a handler's own SSML is part of Speech, for
	// platforms that take text and SSML in different fields.
	HasSSML bool
	// Intent is the intent the turn was routed to; empty when no handler ran.
	Intent string
	// SSMLErrors are the handler's SSML documents that were refused (and
	// spoken from text instead).
	SSMLErrors []error
}

// NewAnswer shapes a turn result for a voice channel.
func NewAnswer(r *msg.TurnResult) Answer {
	a := Answer{
		End:       r.EndConversation,
		Failed:    r.Outcome == msg.OutcomeError || r.Outcome == msg.OutcomeTimeout,
		Unhandled: r.Decision.Source == msg.SourceBuiltin && r.Outcome == msg.OutcomeFallback,
		Intent:    r.Decision.Intent,
	}
	var parts, reprompts []Speech
	for _, rep := range r.Replies {
		sp, err := say(rep.Text, rep.SSML)
		if err != nil {
			a.SSMLErrors = append(a.SSMLErrors, err)
		} else if rep.SSML != "" {
			a.HasSSML = true
		}
		if !sp.IsZero() {
			parts = append(parts, sp)
		}
		if rep.Reprompt != "" {
			rp, err := say(rep.Reprompt, "")
			if err != nil {
				a.SSMLErrors = append(a.SSMLErrors, err)
			}
			reprompts = append(reprompts, rp)
		}
		a.Options = append(a.Options, rep.Options...)
		if rep.Expect != "" {
			a.Expect = rep.Expect
		}
	}
	a.Speech, a.Reprompt = join(parts), join(reprompts)
	return a
}

// Apology is the answer to a turn that could not run at all.
func Apology() Answer {
	return Answer{Speech: FromText(DefaultApology), Failed: true}
}

// Step is what a platform with its own dialog management (Alexa, Lex) is
// told to do next.
type Step int

// Dialog steps.
const (
	// Listen: say the answer and listen for whatever the user says next.
	Listen Step = iota
	// Close: say the answer; the conversation (or the platform's intent) is done.
	Close
	// Fail: say the apology; the platform's intent failed.
	Fail
	// ElicitSlot: say the answer, which asks for one slot of the current intent.
	ElicitSlot
	// ConfirmIntent: say the answer, a yes/no question about the current intent.
	ConfirmIntent
	// Delegate: say nothing; the platform's own dialog model goes on.
	Delegate
)

func (s Step) String() string {
	return [...]string{"listen", "close", "fail", "elicit-slot", "confirm-intent", "delegate"}[s]
}

// Dialog is the platform's dialog state for the request being answered.
type Dialog struct {
	// Intent is the platform's intent, as the platform names it; empty for
	// requests without one (a launch, a fallback).
	Intent string
	// Slots are the names of the intent's slots.
	Slots []string
	// Managed is true when the platform is running a dialog model for the
	// intent and can carry on by itself (Alexa's dialogState STARTED or
	// IN_PROGRESS, Lex's dialog code hook).
	Managed bool
}

// Next chooses the dialog step from the handler's answer:
//
//   - a failed turn fails the intent; an ending turn closes;
//   - a turn no handler answered, in a dialog the platform manages, is
//     delegated to the platform;
//   - expect naming a slot of the current intent elicits that slot;
//   - expect naming the current intent, with the options "yes" and "no",
//     asks the platform to confirm the intent;
//   - a reply with nothing to say, in a managed dialog, delegates;
//   - anything else is said, and the user's next words are routed by Parley.
func (a Answer) Next(d Dialog) (step Step, slot string) {
	switch {
	case a.Failed:
		return Fail, ""
	case a.End:
		return Close, ""
	case a.Unhandled && d.Managed:
		return Delegate, ""
	}
	if a.Expect != "" && d.Intent != "" {
		for _, s := range d.Slots {
			if s == a.Expect {
				return ElicitSlot, s
			}
		}
		if a.Expect == d.Intent && yesNo(a.Options) {
			return ConfirmIntent, ""
		}
	}
	if a.Speech.IsZero() && d.Managed && a.Expect == "" {
		return Delegate, ""
	}
	return Listen, ""
}

// yesNo reports whether options are exactly a yes and a no.
func yesNo(options []string) bool {
	if len(options) != 2 {
		return false
	}
	a, b := strings.ToLower(strings.TrimSpace(options[0])), strings.ToLower(strings.TrimSpace(options[1]))
	return (a == "yes" && b == "no") || (a == "no" && b == "yes")
}
