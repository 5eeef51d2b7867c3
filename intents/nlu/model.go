package nlu

import (
	"math"
	"slices"
	"time"

	"github.com/parleyhq/parley/msg"
)

// Defaults used when a model is not calibrated (a single intent, or no
// intent with two examples): the softmax temperature over SVM scores and the
// threshold.
const (
	defaultTemperature = 0.25
	defaultThreshold   = 0.5
)

// MaxCandidates bounds how many intents Classify returns.
const MaxCandidates = 3

// Model is a trained classifier with its slot extractor. It is immutable and
// safe for concurrent use. Build one with [Train] or [UnmarshalModel].
type Model struct {
	vectorizer
	classes     []string
	oos         int       // index of the out-of-scope class, or -1
	rows        []uint32  // by column: where its weights start in cls and w; one more at the end
	cls         []uint16  // the class of each stored weight
	w           []int8    // stored weights, quantized per row: all of a dense row, the non-zero ones of others
	rowScale    []float32 // by column: the weight of 1 in its row of w
	bias        []float32
	temperature float32 // softmax temperature over the scores
	none        float32 // score of "none of them"; added to the out-of-scope class's when there is one
	tuned       float32 // default threshold, calibrated or fixed
	threshold   float64 // the data's own threshold; 0 means tuned
	calHeldOut  int     // in-scope examples the calibration scored; 0: not calibrated
	calStandIns int     // examples of left-out intents it scored as out of scope
	version     int     // format version it was decoded from; 0: trained here
	slots       *slotExtractor
}

// Calibration describes how a model's confidences and default threshold
// were set.
type Calibration struct {
	// Threshold is the default threshold: calibrated, or 0.5 when the
	// model is not calibrated. The data's threshold, when it has one,
	// replaces it (see [Model.Threshold]).
	Threshold float64 `json:"threshold"`
	// Temperature divides the scores before the softmax; None is the
	// score of "none of these intents" (see [Model.Classify]).
	Temperature float64 `json:"temperature"`
	None        float64 `json:"none"`
	// HeldOut is how many in-scope examples cross-validation scored with a
	// model that had not seen them; zero when the model is not calibrated.
	HeldOut int `json:"held_out"`
	// StandIns is how many examples of intents left out of a model stood
	// in for out-of-scope messages (zero when the data has out-of-scope
	// examples of its own, or fewer than four intents).
	StandIns int `json:"stand_ins"`
}

// Calibration returns how the model's confidences and default threshold
// were set.
func (m *Model) Calibration() Calibration {
	return Calibration{Threshold: float64(m.tuned), Temperature: float64(m.temperature), None: float64(m.none),
		HeldOut: m.calHeldOut, StandIns: m.calStandIns}
}

// Outdated reports whether the model was decoded from an older format
// version (see [FormatVersion]). It still classifies as it did in the
// release that trained it; training again on the same data gives a model
// of this release's calibration.
func (m *Model) Outdated() bool {
	return m.version != 0 && m.version < FormatVersion
}

func (m *Model) setClasses(names []string) {
	m.classes = names
	m.oos = -1
	for i, n := range names {
		if n == OutOfScope {
			m.oos = i
		}
	}
}

// Intents returns the in-scope intents the model knows, sorted.
func (m *Model) Intents() []string {
	out := make([]string, 0, len(m.classes))
	for i, n := range m.classes {
		if i != m.oos {
			out = append(out, n)
		}
	}
	return out
}

// Threshold is the confidence below which a message should go to the
// fallback handler: the data's threshold when it has one, else the one
// calibrated in training.
func (m *Model) Threshold() float64 {
	if m.threshold > 0 {
		return m.threshold
	}
	return float64(m.tuned)
}

// scores fills s.scores with one score per class for text.
func (m *Model) scores(s *scratch, text string) []float32 {
	m.vectorize(s, text)
	s.scores = append(s.scores[:0], m.bias...)
	for k, e := range s.vec {
		sl := &m.table[s.slots[k]]
		m.addRow(s.scores, e.val*sl.scale, sl.lo, sl.hi)
	}
	return s.scores
}

// addScores adds the weights of vec's features to sc (by column, for
// models that share a vectorizer with another, as in cross-validation).
func (m *Model) addScores(sc []float32, vec []entry) {
	for _, e := range vec {
		m.addRow(sc, e.val*m.rowScale[e.col], m.rows[e.col], m.rows[e.col+1])
	}
}

// int8Float converts int8 weights (indexed as uint8) to float32.
var int8Float = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(int8(uint8(i)))
	}
	return t
}()

// addRow adds v times the row of weights w[lo:hi] to sc. A row holds either
// all its weights (common features, which matter to most intents) or only
// the non-zero ones with their classes (most features matter to a few
// intents), as int8 with a scale per row. The weights are immutable, so the
// race detector is off for this inner loop (go:norace).
//
//go:norace
func (m *Model) addRow(sc []float32, v float32, lo, hi uint32) {
	w := m.w[lo:hi]
	if len(w) == len(sc) {
		o := sc[:len(w)]
		c := 0
		for ; c+4 <= len(w); c += 4 {
			r := w[c : c+4 : c+4]
			oo := o[c : c+4 : c+4]
			oo[0] += v * int8Float[uint8(r[0])]
			oo[1] += v * int8Float[uint8(r[1])]
			oo[2] += v * int8Float[uint8(r[2])]
			oo[3] += v * int8Float[uint8(r[3])]
		}
		for ; c < len(w); c++ {
			o[c] += v * int8Float[uint8(w[c])]
		}
		return
	}
	cls := m.cls[lo:hi]
	cls = cls[:len(w)]
	for k, c := range cls {
		sc[c] += v * int8Float[uint8(w[k])]
	}
}

// probabilities turns scores into a softmax, in place. Without a trained
// out-of-scope class, the softmax includes "none of them" with the
// calibrated score m.none (0, the decision boundary of every one-vs-rest
// classifier, when not calibrated), so a message every classifier rejects
// gets low confidences everywhere, even with a single intent; with one,
// m.none is added to that class's score. Classes more than 30 temperatures
// below the best get probability 0 (below 1e-13) without computing the
// exponential.
func (m *Model) probabilities(sc []float32) {
	if m.oos >= 0 {
		sc[m.oos] += m.none
	}
	best := slices.Max(sc)
	var sum float32
	inv := 1 / m.temperature
	if m.oos < 0 {
		best = max(best, m.none)
		sum = exp32(max((m.none-best)*inv, -30))
	}
	for i, x := range sc {
		z := (x - best) * inv
		if z < -30 {
			sc[i] = 0
			continue
		}
		e := exp32(z)
		sc[i] = e
		sum += e
	}
	for i := range sc {
		sc[i] /= sum
	}
}

// Classify implements [intents.Classifier]: the most likely in-scope intents,
// best first, with calibrated probabilities. The out-of-scope class takes its
// share of the probability without being listed, so a message that looks out
// of scope gets low confidences everywhere.
func (m *Model) Classify(text string) []msg.Candidate {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	sc := m.scores(s, text)
	if len(s.vec) == 0 {
		return nil
	}
	m.probabilities(sc)
	var top [MaxCandidates]int
	n := 0
	for c, p := range sc {
		if c == m.oos {
			continue
		}
		if n < MaxCandidates {
			n++
		} else if p <= sc[top[n-1]] {
			continue
		}
		i := n - 1
		for i > 0 && p > sc[top[i-1]] {
			top[i] = top[i-1]
			i--
		}
		top[i] = c
	}
	out := make([]msg.Candidate, n)
	for i := range n {
		out[i] = msg.Candidate{Intent: m.classes[top[i]], Confidence: float64(sc[top[i]])}
	}
	return out
}

// Slots extracts slot values from text, by slot name, with dates relative
// to now. It returns nil when there are none.
func (m *Model) Slots(text string) map[string]string {
	return m.SlotsAt(text, time.Now())
}

// SlotsAt is Slots with dates relative to now (for "tomorrow", "friday").
func (m *Model) SlotsAt(text string, now time.Time) map[string]string {
	if m.slots == nil {
		return nil
	}
	return m.slots.extract(text, now)
}

// exp32 is e^z for z in [-30, 0], to about 2e-7 relative error: 2^(z log2 e)
// split into an integer power of two, set in the exponent bits, and a
// degree-6 polynomial for the fraction. It is several times faster than
// math.Exp and gives the same result everywhere.
func exp32(z float32) float32 {
	x := z * 1.442695041
	fi := float32(int32(x))
	if fi > x {
		fi--
	}
	f := x - fi // [0, 1)
	p := float32(1.535336188319500e-4)
	p = p*f + 1.339887440266574e-3
	p = p*f + 9.618437357674640e-3
	p = p*f + 5.550332471162809e-2
	p = p*f + 2.402264791363012e-1
	p = p*f + 6.931472028550421e-1
	p = p*f + 1
	return p * math.Float32frombits(uint32(int32(fi)+127)<<23)
}
