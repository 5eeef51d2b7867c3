package msg

// Source says how a turn's intent was chosen.
type Source string

// Sources, in routing precedence order.
const (
	SourcePlatform   Source = "platform"
	SourcePostback   Source = "postback"
	SourceExpect     Source = "expect"
	SourceClassifier Source = "classifier"
	SourceFallback   Source = "fallback"
	SourceBuiltin    Source = "builtin"
)

// Candidate is one intent a classifier considered, with its confidence.
type Candidate struct {
	Intent     string  `json:"intent"`
	Confidence float64 `json:"confidence"`
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
