package voice

import (
	"strings"

	"github.com/parleyhq/parley/intents"
)

// amazonIntents maps Amazon's built-in intents (Alexa and Lex V2 share the
// names) to Parley intents, with the word the user said for each, so that a
// handler written for text channels also works for them.
var amazonIntents = map[string]struct{ intent, text string }{
	"AMAZON.HelpIntent":     {"help", "help"},
	"AMAZON.StopIntent":     {intents.StopIntent, "stop"},
	"AMAZON.CancelIntent":   {intents.CancelIntent, "cancel"},
	"AMAZON.YesIntent":      {"yes", "yes"},
	"AMAZON.NoIntent":       {"no", "no"},
	"AMAZON.FallbackIntent": {"", ""}, // nothing matched: Parley routes the turn
	"FallbackIntent":        {"", ""}, // Lex V2's default fallback intent
}

// AmazonIntent maps an Alexa or Lex intent name to the event's intent and,
// for built-in intents that stand for a word ("yes", "stop"), its text.
// Other names are returned unchanged with no text.
func AmazonIntent(name string) (intent, text string) {
	if m, ok := amazonIntents[name]; ok {
		return m.intent, m.text
	}
	return name, ""
}

// maxIntentName is the longest intent name Parley accepts.
const maxIntentName = 64

// IntentName turns a platform's display name ("Order Pizza", "order.status")
// into a Parley intent name: runs of characters other than letters, digits,
// '_', '.' and '-' become one '_', a name not starting with a letter gets an
// "I" in front, and it is cut to 64 characters.
func IntentName(display string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.TrimSpace(display) {
		ok := r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
		if !ok {
			if !under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = true
			continue
		}
		under = false
		b.WriteRune(r)
	}
	name := strings.TrimRight(b.String(), "_")
	if name == "" {
		return ""
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		name = "I" + name
	}
	if len(name) > maxIntentName {
		name = name[:maxIntentName]
	}
	return name
}
