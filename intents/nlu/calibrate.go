package nlu

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
)

// Cross-validation used for calibration. The data is split in folds,
// stratified by intent, and some of them are held out in turn. Large data
// (DefaultCalibrationMin examples or more) holds out the first cvRounds of
// cvFolds: with one round of three, a third of the examples get scores from
// a model that never saw them, at two thirds of the cost of one training.
// Smaller data, whose trainings take milliseconds, holds out every one of
// smallFolds folds, so that nearly every example is scored.
const (
	cvFolds    = 3
	cvRounds   = 1
	smallFolds = proxyGroups
)

// Intents the model has not seen stand in for out-of-scope messages when
// the data has fewer than minOOSExamples of its own: the intents are split
// in proxyGroups groups, and each cross-validation round r also leaves out
// the intents of group r. The model of that round scores their examples as
// it would a message about something the bot does not do. All together,
// these stand-ins weigh proxyShare times as much as the in-scope examples,
// as if one message in eight were out of scope.
//
// With fewer than minProxyIntents intents there are no stand-ins: of the
// two intents that would remain, one is "everything else" to the other, so
// the model would be sure of itself on any message. Such data, without
// out-of-scope examples, keeps at least the default threshold.
const (
	minOOSExamples  = 20
	proxyGroups     = 6
	proxyShare      = 1.0 / 7
	minProxyIntents = 4
)

// thresholdBags is how many bootstrap resamples of the held-out examples
// fitThreshold averages the threshold over for small data: with a hundred
// examples the cheapest threshold jumps from one gap between them to
// another, and the average is steadier.
const thresholdBags = 64

// heldOut is one example scored by a model that did not train on it. Its
// class is the out-of-scope class for the examples of intents the model did
// not have; for a model without one, that is len(scores), the implicit
// "none of them".
type heldOut struct {
	class  int
	scores []float32
	weight float64
	proxy  bool // of an intent the model did not have
}

// calibrate fits the probabilities' parameters and the default threshold on
// held-out scores: cross-validation on the training data itself, with
// intents left out when the data has few out-of-scope examples (see
// proxyGroups).
//
// The parameters minimize the negative log-likelihood of the true classes
// (fitSoftmax; fitTemperature for large data with out-of-scope examples of
// its own); the threshold minimizes the cost of routing mistakes (see
// fitThreshold).
func (m *Model) calibrate(ctx context.Context, samples []sample, near [][]int32, opts Options) error {
	small := len(samples) < DefaultCalibrationMin
	folds, rounds := cvFolds, cvRounds
	if small {
		folds, rounds = smallFolds, smallFolds
	}
	fold := m.folds(samples, folds, opts.Seed)
	group := m.proxyGroups(samples, opts.Seed)
	var held []heldOut
	for r := range rounds {
		left := -1
		if group != nil {
			left = r % proxyGroups
		}
		h, err := m.heldOutRound(ctx, samples, near, opts, func(i int) bool { return fold[i] == r }, group, left)
		if err != nil {
			return err
		}
		held = append(held, h...)
	}
	var inScope, proxies int
	for _, h := range held {
		switch {
		case h.proxy:
			proxies++
		case h.class != m.oos:
			inScope++
		}
	}
	if inScope == 0 {
		return nil // no intent with two examples: nothing to learn from
	}
	for i := range held {
		if held[i].proxy {
			held[i].weight = proxyShare * float64(inScope) / float64(proxies)
		}
	}
	m.calHeldOut, m.calStandIns = inScope, proxies
	if small || group != nil {
		m.temperature, m.none = fitSoftmax(held, m.oos)
	} else {
		m.temperature = fitTemperature(held, m.oos < 0)
	}
	bags := 0
	if small {
		bags = thresholdBags
	}
	m.tuned = m.fitThreshold(held, bags, opts.Seed)
	if proxies == 0 && len(held) == inScope {
		// Nothing showed what the model does with a message it should
		// not answer (fewer than four intents and no out-of-scope
		// examples): the calibration may make the threshold stricter than
		// the default, never looser.
		m.tuned = max(m.tuned, defaultThreshold)
	}
	return nil
}

// folds assigns the examples to folds, stratified by intent, by a seeded
// shuffle; an intent's only example is in none (-1): it is always trained on.
func (m *Model) folds(samples []sample, folds int, seed uint64) []int {
	fold := make([]int, len(samples))
	perClass := make([][]int, len(m.classes))
	for i, s := range samples {
		perClass[s.class] = append(perClass[s.class], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, idx := range perClass {
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		for r, i := range idx {
			fold[i] = r % folds
			if len(idx) < 2 {
				fold[i] = -1
			}
		}
	}
	return fold
}

// proxyGroups assigns the in-scope intents to proxyGroups groups by a seeded
// shuffle (the out-of-scope class to none, -1), or returns nil when the data
// is not to have stand-ins for out-of-scope messages: it has enough of its
// own, or too few intents.
func (m *Model) proxyGroups(samples []sample, seed uint64) []int {
	var intents []int
	for c := range m.classes {
		if c != m.oos {
			intents = append(intents, c)
		}
	}
	oos := 0
	for _, s := range samples {
		if s.class == m.oos {
			oos++
		}
	}
	if len(intents) < minProxyIntents || oos >= minOOSExamples {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x1ea7e))
	rng.Shuffle(len(intents), func(a, b int) { intents[a], intents[b] = intents[b], intents[a] })
	group := make([]int, len(m.classes))
	for i := range group {
		group[i] = -1
	}
	for r, c := range intents {
		group[c] = r % proxyGroups
	}
	return group
}

// heldOutRound trains a model on the examples that are neither test
// examples nor of an intent in group left, and scores the others. Test
// examples keep their class; the examples of the left-out intents are out of
// scope to that model: their class is the out-of-scope one (len(m.classes)
// when there is none), and their scores for the left-out intents, which the
// model does not have, are -Inf. With left < 0 no intent is left out.
func (m *Model) heldOutRound(ctx context.Context, samples []sample, near [][]int32, opts Options, test func(i int) bool, group []int, left int) ([]heldOut, error) {
	out := func(class int) bool { return left >= 0 && group[class] == left }
	none := m.oos
	if none < 0 {
		none = len(m.classes)
	}
	var train, scored []sample
	var trainNear [][]int32
	for i, s := range samples {
		if out(s.class) || test(i) {
			scored = append(scored, s)
			continue
		}
		train = append(train, s)
		if near != nil {
			trainNear = append(trainNear, near[i])
		}
	}
	if len(scored) == 0 || len(train) == 0 {
		return nil, nil
	}
	cv := &Model{vectorizer: m.vectorizer, classes: m.classes, oos: m.oos}
	if err := cv.fit(ctx, train, trainNear, opts); err != nil {
		return nil, err
	}
	held := make([]heldOut, 0, len(scored))
	for _, s := range scored {
		sc := slices.Clone(cv.bias)
		cv.addScores(sc, s.vec)
		h := heldOut{class: s.class, scores: sc, weight: 1}
		if out(s.class) {
			h.class, h.proxy = none, true
			for c := range sc {
				if out(c) {
					sc[c] = float32(math.Inf(-1))
				}
			}
		}
		held = append(held, h)
	}
	return held, nil
}

// fitSoftmax fits the two parameters of the probabilities: the temperature
// T and the score of "none of them" (added to the out-of-scope class's
// score when there is one; see probabilities), by
// minimizing the weighted negative log-likelihood of the held-out classes.
// In terms of a = 1/T and b = none/T every logit is linear (a*score, plus b
// for "none"), so the objective is convex and Newton's method, with a
// step halved until it improves, finds its minimum in a few iterations.
func fitSoftmax(held []heldOut, oos int) (temperature, none float32) {
	type logit struct {
		s    float64 // score
		none bool
	}
	rows := make([][]logit, len(held))
	target := make([]int, len(held))
	for i, h := range held {
		row := make([]logit, 0, len(h.scores)+1)
		target[i] = -1
		for c, x := range h.scores {
			if math.IsInf(float64(x), -1) {
				continue
			}
			if c == h.class {
				target[i] = len(row)
			}
			row = append(row, logit{s: float64(x), none: c == oos})
		}
		if oos < 0 {
			if h.class == len(h.scores) {
				target[i] = len(row)
			}
			row = append(row, logit{none: true})
		}
		rows[i] = row
	}
	// nll returns the objective and, when grad is true, its gradient and
	// Hessian in (a, b).
	p := make([]float64, 0, 16)
	nll := func(a, b float64, grad bool) (f float64, g [2]float64, h [3]float64) {
		// A weak prior keeps b finite when no example is out of scope
		// (then "none" is never right, and b would run to -Inf).
		f = noneRidge * b * b / 2
		g[1], h[2] = noneRidge*b, noneRidge
		for i, row := range rows {
			w := held[i].weight
			if target[i] < 0 || w == 0 {
				continue
			}
			p = p[:0]
			top := math.Inf(-1)
			for _, l := range row {
				z := a * l.s
				if l.none {
					z += b
				}
				p = append(p, z)
				top = max(top, z)
			}
			sum := 0.0
			for k, z := range p {
				p[k] = math.Exp(z - top)
				sum += p[k]
			}
			f += w * (math.Log(sum) + top - (a*row[target[i]].s + b*bool01(row[target[i]].none)))
			if !grad {
				continue
			}
			var es, en, ess, esn float64
			for k, l := range row {
				q := p[k] / sum
				n := bool01(l.none)
				es += q * l.s
				en += q * n
				ess += q * l.s * l.s
				esn += q * l.s * n
			}
			t := row[target[i]]
			g[0] += w * (es - t.s)
			g[1] += w * (en - bool01(t.none))
			h[0] += w * (ess - es*es)
			h[1] += w * (esn - es*en)
			h[2] += w * (en - en*en)
		}
		return f, g, h
	}
	a, b := 1/defaultTemperature, 0.0
	f, g, h := nll(a, b, true)
	for range 50 {
		// Newton's step; the tiny ridge on a keeps the Hessian invertible
		// when every example is certain whatever the temperature.
		h0, h1, h2 := h[0]+1e-6, h[1], h[2]
		det := h0*h2 - h1*h1
		if det <= 0 {
			break
		}
		da := -(h2*g[0] - h1*g[1]) / det
		db := -(h0*g[1] - h1*g[0]) / det
		step := 1.0
		improved := false
		for range 30 {
			na, nb := a+step*da, b+step*db
			if na > 0 {
				if nf, _, _ := nll(na, nb, false); nf < f {
					a, b = na, nb
					improved = true
					break
				}
			}
			step /= 2
		}
		if !improved {
			break
		}
		last := f
		f, g, h = nll(a, b, true)
		if last-f < 1e-9*max(1, math.Abs(f)) {
			break
		}
	}
	a = min(max(a, 1/2.0), 1/0.005)
	return float32(1 / a), float32(b / a)
}

// noneRidge is the strength of the prior on b = none/T in fitSoftmax, in
// examples' worth.
const noneRidge = 1

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fitTemperature minimizes the weighted mean negative log-likelihood over
// held-out scores by golden-section search on log T.
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
		total, weights := 0.0, 0.0
		for i, h := range held {
			var z float32
			for _, x := range rel[i] {
				if x*inv >= -30 {
					z += exp32(x * inv)
				}
			}
			total += h.weight * (math.Log(float64(z)) - float64(rel[i][h.class]*inv))
			weights += h.weight
		}
		return total / weights
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
// out-of-scope example), each times the example's weight. With bags above
// zero it is the mean of that threshold over as many bootstrap resamples.
func (m *Model) fitThreshold(held []heldOut, bags int, seed uint64) float32 {
	pts := make([]thresholdPoint, len(held))
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
		oos := h.class == m.oos || h.class == len(m.classes)
		pts[i] = thresholdPoint{p: sc[best], correct: best == h.class, oos: oos, weight: h.weight}
	}
	slices.SortFunc(pts, func(a, b thresholdPoint) int { return cmp.Compare(a.p, b.p) })
	if bags == 0 {
		return bestThreshold(pts)
	}
	// The bootstrap resamples each example a Poisson(1) number of times,
	// which keeps pts sorted.
	rng := rand.New(rand.NewPCG(seed, 0xba65))
	bag := make([]thresholdPoint, len(pts))
	sum := 0.0
	for range bags {
		copy(bag, pts)
		for i := range bag {
			bag[i].weight *= float64(poisson1(rng))
		}
		sum += float64(bestThreshold(bag))
	}
	return float32(sum / float64(bags))
}

// poisson1 draws from the Poisson distribution of mean 1 (Knuth's method).
func poisson1(rng *rand.Rand) int {
	k, p := 0, rng.Float64()
	for p > 1/math.E {
		p *= rng.Float64()
		k++
	}
	return k
}

// thresholdPoint is one held-out example as fitThreshold sees it.
type thresholdPoint struct {
	p       float32 // best in-scope probability
	correct bool    // in scope and the best intent is right
	oos     bool
	weight  float64
}

// bestThreshold returns the threshold of least cost over pts, sorted by p.
func bestThreshold(pts []thresholdPoint) float32 {
	// With the threshold at or below every point, the cost is one per
	// accepted mistake. Raising it past a point changes that point's cost.
	cost := 0.0
	for _, p := range pts {
		if !p.correct {
			cost += p.weight
		}
	}
	bestCost, bestK := cost, 0
	for k, p := range pts {
		switch {
		case p.oos:
			cost -= p.weight
		case p.correct:
			cost += falseFallbackCost * p.weight
		default:
			cost += (falseFallbackCost - 1) * p.weight
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
