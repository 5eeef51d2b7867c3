package msg

// Handoff asks for a conversation to be handed to a person: the bot stops
// answering it until an agent or the idle timeout gives it back.
type Handoff struct {
	// Queue is the team or queue of agents the conversation waits in
	// ("support"); lowercase letters, digits, '_' and '-', at most 64.
	Queue string `json:"queue"`
	// Reason tells the agents why the bot handed over (at most 500
	// characters).
	Reason string `json:"reason,omitempty"`
}

// DefaultHandoffQueue is the queue of a handoff that names none.
const DefaultHandoffQueue = "default"

// MaxHandoffReason bounds a handoff's reason, in characters.
const MaxHandoffReason = 500

// ValidHandoffQueue reports whether q is a queue name: 1 to 64 lowercase
// letters, digits, '_' or '-'.
func ValidHandoffQueue(q string) bool {
	if q == "" || len(q) > 64 {
		return false
	}
	for _, c := range []byte(q) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
