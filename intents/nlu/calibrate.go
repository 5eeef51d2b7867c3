package nlu

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
)

// Cross-validation used for calibration: the data is split in cvFolds folds
// (stratified by intent) and the first cvRounds of them are held out in
// turn. With one round of three, a third of the examples get scores from a
// model that never saw them, at two thirds of the cost of one training.
const (
	cvFolds  = 3
	cvRounds = 1
)

// heldOut is one example scored by a model that did not train on it.
type heldOut struct {
	class  int
	scores []float32
}

// calibrate fits the softmax temperature and the default threshold on
// held-out scores from cross-validation on the training data itself.
//
// The temperature minimizes the negative log-likelihood of the true classes;
// the threshold minimizes the cost of routing mistakes (see fitThreshold).
func (m *Model) calibrate(ctx context.Context, samples []sample, near [][]int32, opts Options) error {
	held, err := m.crossValidate(ctx, samples, near, opts)
	if err != nil {
		return err
	}
	if len(held) == 0 {
		return nil
	}
	m.temperature = fitTemperature(held, m.oos < 0)
	m.tuned = m.fitThreshold(held)
	return nil
}

// crossValidate trains on all folds but one, cvRounds times, and returns the
// held-out examples with their scores.
func (m *Model) crossValidate(ctx context.Context, samples []sample, near [][]int32, opts Options) ([]heldOut, error) {
	nc := len(m.classes)
	fold := make([]int, len(samples))
	perClass := make([][]int, nc)
	for i, s := range samples {
		perClass[s.class] = append(perClass[s.class], i)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	for _, idx := range perClass {
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		for r, i := range idx {
			fold[i] = r % cvFolds
		}
	}
	var held []heldOut
	for round := range cvRounds {
		var train, test []sample
		var trainNear [][]int32
		for i, s := range samples {
			if fold[i] == round {
				test = append(test, s)
			} else {
				train = append(train, s)
				if near != nil {
					trainNear = append(trainNear, near[i])
				}
			}
		}
		if len(test) == 0 || len(train) == 0 {
			continue
		}
		cv := &Model{vectorizer: m.vectorizer, classes: m.classes, oos: m.oos}
		if err := cv.fit(ctx, train, trainNear, opts); err != nil {
			return nil, err
		}
		for _, s := range test {
			sc := slices.Clone(cv.bias)
			cv.addScores(sc, s.vec)
			held = append(held, heldOut{class: s.class, scores: sc})
		}
	}
	return held, nil
}

// fitTemperature minimizes the mean negative log-likelihood over held-out
// scores by golden-section search on log T.
func fitTemperature(held []heldOut, none bool) float32 {
	// Scores relative to each example's best, so every exponent is <= 0,
	// with the implicit "none of them" score 0 last when the model has no
	// out-of-scope class (see probabilities).
	rel := make([][]float32, len(held))
	for i, h := range held {
		best := slices.Max(h.scores)
		if none {
			best = max(best, 0)
		}
		rel[i] = make([]float32, len(h.scores), len(h.scores)+1)
		for c, x := range h.scores {
			rel[i][c] = x - best
		}
		if none {
			rel[i] = append(rel[i], -best)
		}
	}
	nll := func(logT float64) float64 {
		inv := float32(math.Exp(-logT))
		total := 0.0
		for i, h := range held {
			var z float32
			for _, x := range rel[i] {
				if x*inv >= -30 {
					z += exp32(x * inv)
				}
			}
			total += math.Log(float64(z)) - float64(rel[i][h.class]*inv)
		}
		return total / float64(len(held))
	}
	lo, hi := math.Log(0.005), math.Log(2.0)
	phi := (math.Sqrt(5) - 1) / 2
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	fa, fb := nll(a), nll(b)
	for range 28 {
		if fa < fb {
			hi, b, fb = b, a, fa
			a = hi - phi*(hi-lo)
			fa = nll(a)
		} else {
			lo, a, fa = a, b, fb
			b = lo + phi*(hi-lo)
			fb = nll(b)
		}
	}
	return float32(math.Exp((lo + hi) / 2))
}

// falseFallbackCost is the cost of sending an in-scope message to fallback,
// relative to routing a message to the wrong intent (or an out-of-scope one
// to any intent), which costs 1. A fallback handler can still offer the
// candidates ("did you mean ...?"), so it is the milder mistake.
const falseFallbackCost = 0.75

// fitThreshold picks the default threshold on held-out probabilities: the
// one with the least total cost of mistakes, where an example below the
// threshold costs falseFallbackCost if it is in scope (0 if out of scope)
// and one above it costs 1 if its best intent is wrong (always, for an
// out-of-scope example).
func (m *Model) fitThreshold(held []heldOut) float32 {
	type point struct {
		p       float32 // best in-scope probability
		correct bool    // in scope and the best intent is right
		oos     bool
	}
	pts := make([]point, len(held))
	sc := make([]float32, len(m.classes))
	for i, h := range held {
		copy(sc, h.scores)
		m.probabilities(sc)
		best := -1
		for c, p := range sc {
			if c != m.oos && (best < 0 || p > sc[best]) {
				best = c
			}
		}
		pts[i] = point{p: sc[best], correct: best == h.class, oos: h.class == m.oos}
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.p, b.p) })
	// With the threshold at or below every point, the cost is one per
	// accepted mistake. Raising it past a point changes that point's cost.
	cost := 0.0
	for _, p := range pts {
		if !p.correct {
			cost++
		}
	}
	bestCost, bestK := cost, 0
	for k, p := range pts {
		switch {
		case p.oos:
			cost--
		case p.correct:
			cost += falseFallbackCost
		default:
			cost += falseFallbackCost - 1
		}
		if k+1 < len(pts) && pts[k+1].p == p.p {
			continue
		}
		if cost < bestCost-1e-9 {
			bestCost, bestK = cost, k+1
		}
	}
	switch bestK {
	case 0:
		return pts[0].p
	case len(pts):
		return pts[len(pts)-1].p
	}
	return (pts[bestK-1].p + pts[bestK].p) / 2
}
