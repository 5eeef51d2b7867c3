package intents

import (
	"sort"
	"strings"
	"unicode"
)

// DefaultExampleThreshold is the minimum keyword-overlap score at which the
// example matcher's best candidate is accepted by routing.
const DefaultExampleThreshold = 0.5

// ExampleMatcher is the baseline classifier: an utterance that equals one of
// an intent's examples (ignoring case and punctuation) scores 1; otherwise the
// score is the best Jaccard overlap of content words with any example.
// It is built once per NLU upload and is read-only afterwards.
type ExampleMatcher struct {
	exact    map[string]string // normalized example -> intent
	examples []example
}

type example struct {
	intent string
	words  map[string]struct{}
}

// maxCandidates bounds how many suggestions a classification returns.
const maxCandidates = 3

// NewExampleMatcher builds a matcher from example utterances per intent.
// Intents are visited in sorted order so that equal examples resolve the same
// way every time.
func NewExampleMatcher(examples map[string][]string) *ExampleMatcher {
	m := &ExampleMatcher{exact: make(map[string]string)}
	names := make([]string, 0, len(examples))
	for name := range examples {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, utterance := range examples[name] {
			tokens := tokenize(utterance)
			if len(tokens) == 0 {
				continue
			}
			key := strings.Join(tokens, " ")
			if _, taken := m.exact[key]; !taken {
				m.exact[key] = name
			}
			words := contentWords(tokens)
			if len(words) > 0 {
				m.examples = append(m.examples, example{intent: name, words: words})
			}
		}
	}
	return m
}

// Classify implements [Classifier].
func (m *ExampleMatcher) Classify(text string) []Candidate {
	tokens := tokenize(text)
	if len(tokens) == 0 {
		return nil
	}
	if name, ok := m.exact[strings.Join(tokens, " ")]; ok {
		return []Candidate{{Intent: name, Confidence: 1}}
	}
	words := contentWords(tokens)
	if len(words) == 0 {
		return nil
	}
	best := make(map[string]float64)
	for _, ex := range m.examples {
		if s := jaccard(words, ex.words); s > best[ex.intent] {
			best[ex.intent] = s
		}
	}
	if len(best) == 0 {
		return nil
	}
	out := make([]Candidate, 0, len(best))
	for name, score := range best {
		out = append(out, Candidate{Intent: name, Confidence: score})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Confidence != out[j].Confidence {
			return out[i].Confidence > out[j].Confidence
		}
		return out[i].Intent < out[j].Intent
	})
	if len(out) > maxCandidates {
		out = out[:maxCandidates]
	}
	return out
}

func tokenize(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// stopWords carry no intent on their own; they are ignored by the overlap score
// but still count for exact matches.
var stopWords = map[string]struct{}{
	"a": {}, "an": {}, "the": {}, "i": {}, "me": {}, "my": {}, "you": {}, "your": {},
	"to": {}, "of": {}, "and": {}, "or": {}, "is": {}, "are": {}, "be": {}, "it": {},
	"please": {}, "can": {}, "could": {}, "would": {}, "do": {}, "for": {}, "in": {},
	"on": {}, "at": {}, "with": {}, "some": {}, "want": {}, "like": {}, "i'd": {}, "i'm": {},
}

func contentWords(tokens []string) map[string]struct{} {
	words := make(map[string]struct{}, len(tokens))
	for _, t := range tokens {
		if _, stop := stopWords[t]; !stop {
			words[t] = struct{}{}
		}
	}
	return words
}

func jaccard(a, b map[string]struct{}) float64 {
	shared := 0
	for w := range a {
		if _, ok := b[w]; ok {
			shared++
		}
	}
	if shared == 0 {
		return 0
	}
	return float64(shared) / float64(len(a)+len(b)-shared)
}
