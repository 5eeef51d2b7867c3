package nlu

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// DrawConfig describes small bots drawn from a large labelled data set, to
// measure the classifier on data of the size a real bot has: a few intents
// with a few examples each, scored on unseen utterances of those intents
// and on unrelated ones. Zero values mean the defaults.
type DrawConfig struct {
	// Intents is how many in-scope intents each draw has (default 12).
	Intents int `json:"intents"`
	// Examples is how many training examples each intent has (default 8).
	Examples int `json:"examples"`
	// OutOfScope is how many unrelated utterances each draw is scored on
	// (default 200): half from the test set's out-of-scope utterances, the
	// rest from its utterances of intents not drawn (fewer when there are
	// not that many).
	OutOfScope int `json:"out_of_scope"`
	// Draws is how many draws EvaluateDraws averages over (default 5).
	Draws int `json:"draws"`
	// Seed seeds the first draw; draw i uses Seed+i (default 1).
	Seed uint64 `json:"seed"`
}

func (c DrawConfig) withDefaults() DrawConfig {
	if c.Intents <= 0 {
		c.Intents = 12
	}
	if c.Examples <= 0 {
		c.Examples = 8
	}
	if c.OutOfScope <= 0 {
		c.OutOfScope = 200
	}
	if c.Draws <= 0 {
		c.Draws = 5
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Draw picks a small bot from pool: cfg.Intents of its in-scope intents
// with at least cfg.Examples examples, and cfg.Examples examples of each,
// chosen by a shuffle seeded with seed (the same draw every time). The test
// set holds every utterance of test whose intent was drawn, and
// cfg.OutOfScope unrelated ones (labelled [OutOfScope]). The pool's own
// out-of-scope examples and its slots are not part of the draw: a small bot
// rarely has either.
func Draw(pool Data, test Labeled, cfg DrawConfig, seed uint64) (Data, Labeled, error) {
	cfg = cfg.withDefaults()
	if len(test.Texts) != len(test.Intents) {
		return Data{}, Labeled{}, fmt.Errorf("test set: %d texts, %d intents", len(test.Texts), len(test.Intents))
	}
	var eligible []string
	for _, name := range pool.intentNames() {
		if name != OutOfScope && len(pool.Intents[name]) >= cfg.Examples {
			eligible = append(eligible, name)
		}
	}
	if len(eligible) < cfg.Intents {
		return Data{}, Labeled{}, fmt.Errorf("%d intents with %d examples or more, want %d", len(eligible), cfg.Examples, cfg.Intents)
	}
	rng := rand.New(rand.NewPCG(seed, 0xd7a3))
	rng.Shuffle(len(eligible), func(i, j int) { eligible[i], eligible[j] = eligible[j], eligible[i] })
	drawn := make(map[string]bool, cfg.Intents)
	train := Data{Intents: make(map[string][]string, cfg.Intents)}
	for _, name := range eligible[:cfg.Intents] {
		drawn[name] = true
		ex := slices.Clone(pool.Intents[name])
		rng.Shuffle(len(ex), func(i, j int) { ex[i], ex[j] = ex[j], ex[i] })
		train.Intents[name] = ex[:cfg.Examples]
	}
	var out Labeled
	var oos, other []string
	for i, intent := range test.Intents {
		switch {
		case drawn[intent]:
			out.add(test.Texts[i], intent)
		case intent == OutOfScope:
			oos = append(oos, test.Texts[i])
		default:
			other = append(other, test.Texts[i])
		}
	}
	if len(out.Texts) == 0 {
		return Data{}, Labeled{}, fmt.Errorf("no test utterances of the drawn intents")
	}
	rng.Shuffle(len(oos), func(i, j int) { oos[i], oos[j] = oos[j], oos[i] })
	rng.Shuffle(len(other), func(i, j int) { other[i], other[j] = other[j], other[i] })
	nOOS := min(len(oos), cfg.OutOfScope/2)
	nOther := min(len(other), cfg.OutOfScope-nOOS)
	nOOS = min(len(oos), cfg.OutOfScope-nOther)
	for _, t := range oos[:nOOS] {
		out.add(t, OutOfScope)
	}
	for _, t := range other[:nOther] {
		out.add(t, OutOfScope)
	}
	return train, out, nil
}

// DrawsReport is the result of [EvaluateDraws]: one report per draw and
// their summary.
type DrawsReport struct {
	Config DrawConfig `json:"config"`
	// Draws are the reports of the draws, in order.
	Draws []*Report `json:"draws"`
	// Accuracy, TopAccuracy, OOSRecall and Threshold summarize the draws'
	// figures of the same names.
	Accuracy    Spread `json:"in_scope_accuracy"`
	TopAccuracy Spread `json:"top_intent_accuracy"`
	OOSRecall   Spread `json:"oos_recall"`
	Threshold   Spread `json:"threshold"`
}

// Spread summarizes one figure over several draws.
type Spread struct {
	Mean float64 `json:"mean"`
	// Std is the standard deviation over the draws.
	Std float64 `json:"std"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

func spreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := Spread{Min: xs[0], Max: xs[0]}
	for _, x := range xs {
		s.Mean += x
		s.Min, s.Max = min(s.Min, x), max(s.Max, x)
	}
	s.Mean /= float64(len(xs))
	for _, x := range xs {
		s.Std += (x - s.Mean) * (x - s.Mean)
	}
	s.Std = math.Sqrt(s.Std / float64(len(xs)))
	return s
}

// EvaluateDraws draws cfg.Draws small bots from pool and test (see [Draw];
// draw i is seeded with cfg.Seed+i), trains each with opts and scores it
// with its own threshold, or with threshold when that is above zero.
func EvaluateDraws(ctx context.Context, pool Data, test Labeled, cfg DrawConfig, opts Options, threshold float64) (*DrawsReport, error) {
	cfg = cfg.withDefaults()
	out := &DrawsReport{Config: cfg}
	var acc, top, rec, thr []float64
	for i := range cfg.Draws {
		train, t, err := Draw(pool, test, cfg, cfg.Seed+uint64(i))
		if err != nil {
			return nil, err
		}
		r, _, err := EvaluateThreshold(ctx, train, t, opts, threshold)
		if err != nil {
			return nil, fmt.Errorf("draw %d: %w", i, err)
		}
		out.Draws = append(out.Draws, r)
		acc, top = append(acc, r.Accuracy), append(top, r.TopAccuracy)
		rec, thr = append(rec, r.OOSRecall), append(thr, r.Threshold)
	}
	out.Accuracy, out.TopAccuracy = spreadOf(acc), spreadOf(top)
	out.OOSRecall, out.Threshold = spreadOf(rec), spreadOf(thr)
	return out, nil
}

// String formats the summary for people: one line per figure with its mean,
// standard deviation and range over the draws.
func (r *DrawsReport) String() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "%d draws of %d intents x %d examples, each scored on the unseen utterances of its intents and %d unrelated ones\n",
		len(r.Draws), c.Intents, c.Examples, c.OutOfScope)
	line := func(name string, s Spread, pct bool) {
		k := 1.0
		unit := ""
		if pct {
			k, unit = 100, " %"
		}
		fmt.Fprintf(&b, "%-20s mean %6.2f%s  std %5.2f  min %6.2f  max %6.2f\n", name, k*s.Mean, unit, k*s.Std, k*s.Min, k*s.Max)
	}
	line("in-scope accuracy", r.Accuracy, true)
	line("out-of-scope recall", r.OOSRecall, true)
	line("best intent", r.TopAccuracy, true)
	line("threshold", r.Threshold, false)
	return b.String()
}

// DrawConfigFor returns draws of the size of d: as many in-scope intents,
// each with the median number of examples of d's in-scope intents, to see
// how a bot of that size does on a large data set's utterances.
func DrawConfigFor(d Data) DrawConfig {
	var sizes []int
	for name, ex := range d.Intents {
		if name != OutOfScope && len(ex) > 0 {
			sizes = append(sizes, len(ex))
		}
	}
	if len(sizes) == 0 {
		return DrawConfig{}.withDefaults()
	}
	slices.Sort(sizes)
	return DrawConfig{Intents: len(sizes), Examples: sizes[len(sizes)/2]}.withDefaults()
}
