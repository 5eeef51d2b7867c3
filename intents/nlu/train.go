package nlu

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// Options tune training. Zero values mean the defaults, which are what the
// figures in docs/benchmarks.md were measured with.
type Options struct {
	// Workers is how many goroutines train classes in parallel (default
	// GOMAXPROCS). The model does not depend on it.
	Workers int
	// Seed seeds the example order of the solver (default 2).
	Seed uint64
	// C is the SVM's inverse regularization strength (default 2).
	C float64
	// MaxEpochs bounds the solver's passes over the data per intent (default 40).
	MaxEpochs int
	// Bits is log2 of the hash buckets per feature block (default 18).
	Bits int
	// MinN and MaxN are the character n-gram lengths (default 3 and 4).
	MinN, MaxN int
	// WordWeight is the word block's share of each vector's squared norm
	// (default 0.5; the rest is character n-grams).
	WordWeight float64
	// Neighbors is how many most similar other intents each example is a
	// negative for (default 20; at least the number of intents - 1 means all).
	Neighbors int
	// OOSWeight multiplies C for out-of-scope examples (default 1).
	OOSWeight float64
	// MinDF drops features seen in fewer examples (default 1: keep all).
	MinDF int
	// Calibrate, when false, keeps the fixed softmax temperature (0.25)
	// and default threshold (0.5) instead of fitting them by
	// cross-validation on the training data (default true).
	Calibrate *bool
}

// DefaultCalibrationMin is the number of examples from which Train calibrates
// with one round of three-fold cross-validation, to bound its cost; smaller
// data is calibrated on every fold of six, and its threshold averaged over
// bootstrap resamples (see docs/nlu.md).
const DefaultCalibrationMin = 1000

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.C <= 0 {
		o.C = 2
	}
	if o.MaxEpochs <= 0 {
		o.MaxEpochs = 40
	}
	if o.Bits <= 0 {
		o.Bits = 18
	}
	o.Bits = min(o.Bits, 22)
	if o.MinN <= 0 {
		o.MinN = 3
	}
	if o.MaxN <= 0 {
		o.MaxN = 4
	}
	o.MaxN = max(o.MaxN, o.MinN)
	if o.WordWeight <= 0 || o.WordWeight >= 1 {
		o.WordWeight = 0.5
	}
	if o.Neighbors == 0 {
		o.Neighbors = 20
	}
	if o.OOSWeight <= 0 {
		o.OOSWeight = 1
	}
	if o.MinDF <= 0 {
		o.MinDF = 1
	}
	return o
}

// ErrNoData means the data has no examples to learn from.
var ErrNoData = errors.New("nlu: no examples")

// sample is one training example: its class and its sparse vector.
type sample struct {
	class int
	vec   []entry
}

// Train builds a model from d. It is deterministic: the same data and
// options give the same model, byte for byte. ctx bounds the time it takes.
func Train(ctx context.Context, d Data, opts Options) (*Model, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	names := d.intentNames()
	texts, classes := flatten(d, names)
	if len(texts) == 0 {
		return nil, ErrNoData
	}
	m := &Model{threshold: d.Threshold}
	m.setClasses(names)
	m.vectorizer = buildVocabulary(texts, featureConfig{
		Bits: uint8(opts.Bits), MinN: uint8(opts.MinN), MaxN: uint8(opts.MaxN),
		WordWeight: float32(opts.WordWeight),
	}, opts.MinDF)
	samples := m.samples(texts, classes)
	var near [][]int32
	if len(m.classes) > 1 {
		near = neighbors(samples, len(m.classes), len(m.idf), opts)
	}
	if err := m.fit(ctx, samples, near, opts); err != nil {
		return nil, err
	}
	m.link()
	m.temperature = defaultTemperature
	m.tuned = defaultThreshold
	calibrate := true
	if opts.Calibrate != nil {
		calibrate = *opts.Calibrate
	}
	if calibrate && len(m.classes) > 1 {
		if err := m.calibrate(ctx, samples, near, opts); err != nil {
			return nil, err
		}
	}
	m.slots = newSlotExtractor(d)
	return m, nil
}

// flatten lists the examples without markup with their class indices, in
// sorted intent order.
func flatten(d Data, names []string) (texts []string, classes []int) {
	for i, name := range names {
		for _, ex := range d.Intents[name] {
			texts = append(texts, ParseExample(ex).Text)
			classes = append(classes, i)
		}
	}
	return texts, classes
}

// buildVocabulary assigns a column to every bucket seen in at least minDF
// examples, in bucket order, word block first, and computes smoothed IDF
// weights: ln((1+n)/(1+df)) + 1.
func buildVocabulary(texts []string, fc featureConfig, minDF int) vectorizer {
	df := make(map[uint32]int32)
	s := new(scratch)
	for _, t := range texts {
		s.normalize(t)
		s.buckets(fc)
		s.count()
		for _, id := range s.uniq {
			df[id]++
		}
	}
	ids := make([]uint32, 0, len(df))
	for id, n := range df {
		if int(n) >= minDF {
			ids = append(ids, id)
		}
	}
	// Most frequent first: the weights of the features nearly every message
	// has are then next to each other in memory.
	slices.SortFunc(ids, func(a, b uint32) int {
		if df[a] != df[b] {
			return int(df[b] - df[a])
		}
		return cmp.Compare(a, b)
	})
	v := vectorizer{fc: fc, keys: make([]uint32, len(ids)), idf: make([]float32, len(ids))}
	n := float64(len(texts))
	for col, id := range ids {
		v.keys[col] = fc.key(id)
		v.idf[col] = float32(math.Log((1+n)/(1+float64(df[id]))) + 1)
	}
	v.idfUnkn = float32(math.Log(1+n) + 1)
	v.index()
	return v
}

// samples vectorizes the training texts.
func (m *Model) samples(texts []string, classes []int) []sample {
	out := make([]sample, len(texts))
	s := new(scratch)
	for i, t := range texts {
		m.vectorize(s, t)
		out[i] = sample{class: classes[i], vec: slices.Clone(s.vec)}
	}
	return out
}

// fit trains one linear L2-regularized, squared-hinge-loss SVM per class
// against all others (the dual coordinate descent of LIBLINEAR, with
// shrinking), classes in parallel, and stores the weights feature-major.
func (m *Model) fit(ctx context.Context, samples []sample, near [][]int32, opts Options) error {
	nc, nf := len(m.classes), len(m.idf)
	if nc == 1 {
		// One intent: nothing to tell apart. Its score is the similarity to
		// its examples' centroid, scaled like a trained score.
		w := make([]float32, nf)
		for _, s := range samples {
			for _, e := range s.vec {
				w[e.col] += e.val
			}
		}
		var norm float64
		for _, x := range w {
			norm += float64(x * x)
		}
		if norm > 0 {
			scale := float32(2 / math.Sqrt(norm))
			for i := range w {
				w[i] *= scale
			}
		}
		w = append(w, -1) // the bias
		m.quantize([]classWeights{sparse(w)}, nf)
		return nil
	}
	subsets := confusable(samples, near, nc)
	weights := make([]classWeights, nc)
	var wg sync.WaitGroup
	next := make(chan int)
	errc := make(chan error, opts.Workers)
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				w, err := trainBinary(ctx, samples, subsets[c], c, m.oos, nf, opts, opts.Seed+uint64(c))
				if err != nil {
					errc <- err
					return
				}
				weights[c] = sparse(w)
			}
		}()
	}
	var err error
feed:
	for c := range nc {
		select {
		case next <- c:
		case err = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		return err
	}
	m.quantize(weights, nf)
	return nil
}

// classWeights are one class's trained weights, without the zeros.
type classWeights struct {
	cols []int32
	vals []float32
	bias float32
}

// sparse keeps the non-zero weights of w (bias last). Most are zero: a class
// trains only on the examples near it, so the features it never meets keep
// weight zero, and training holds only these instead of a dense matrix.
//
//go:norace
func sparse(w []float32) classWeights {
	nf := len(w) - 1
	cw := classWeights{bias: w[nf]}
	for f, x := range w[:nf] {
		if x != 0 {
			cw.cols = append(cw.cols, int32(f))
			cw.vals = append(cw.vals, x)
		}
	}
	return cw
}

// denseRow: a row with at least 1/denseRow of its weights non-zero is stored
// whole, which is faster to add up than with class indices.
const denseRow = 3

// quantize stores the weights feature-major, as int8 with one scale per
// feature (row), keeping only the weights that do not round to zero: most
// features matter to a few intents, so rows are short and classification
// reads little memory, at a cost in accuracy too small to measure. It runs
// without the race detector (go:norace): it touches only its own slices,
// millions of times.
//
//go:norace
func (m *Model) quantize(classes []classWeights, nf int) {
	nc := len(classes)
	m.bias = make([]float32, nc)
	m.rowScale = make([]float32, nf)
	for c, cw := range classes {
		m.bias[c] = cw.bias
		for k, f := range cw.cols {
			m.rowScale[f] = max(m.rowScale[f], cw.vals[k], -cw.vals[k])
		}
	}
	for f := range m.rowScale {
		m.rowScale[f] /= 127
	}
	q := func(f int32, x float32) int8 { return int8(math.Round(float64(x / m.rowScale[f]))) }
	nz := make([]int32, nf)
	for _, cw := range classes {
		for k, f := range cw.cols {
			if q(f, cw.vals[k]) != 0 {
				nz[f]++
			}
		}
	}
	m.rows = make([]uint32, nf+1)
	for f, n := range nz {
		if int(n)*denseRow >= nc {
			n = int32(nc) // dense: every class, zeros included
		}
		m.rows[f+1] = m.rows[f] + uint32(n)
	}
	m.cls = make([]uint16, m.rows[nf])
	m.w = make([]int8, m.rows[nf])
	next := slices.Clone(m.rows[:nf])
	for f := range nf {
		if m.rows[f+1]-m.rows[f] == uint32(nc) {
			for c := range nc {
				m.cls[m.rows[f]+uint32(c)] = uint16(c)
			}
		}
	}
	for c, cw := range classes {
		for k, f := range cw.cols {
			v := q(f, cw.vals[k])
			if m.rows[f+1]-m.rows[f] == uint32(nc) {
				m.w[m.rows[f]+uint32(c)] = v
			} else if v != 0 {
				m.cls[next[f]] = uint16(c)
				m.w[next[f]] = v
				next[f]++
			}
		}
	}
}

// link stores each column's weight scale and range in its lookup slot.
func (m *Model) link() {
	for i := range m.table {
		sl := &m.table[i]
		if sl.key != 0 {
			sl.scale, sl.lo, sl.hi = m.rowScale[sl.col], m.rows[sl.col], m.rows[sl.col+1]
		}
	}
}

// confusable picks, for each class, the examples its binary classifier trains
// on: its own, and those of other classes whose nearest classes include it.
// Examples far from a class would end with zero weight in its SVM anyway;
// leaving them out makes training several times faster, and the weights of
// features a class never meets stay exactly zero, which keeps the model
// small. With near nil, every class trains on every example.
func confusable(samples []sample, near [][]int32, nc int) [][]int32 {
	out := make([][]int32, nc)
	if near == nil {
		all := make([]int32, len(samples))
		for i := range all {
			all[i] = int32(i)
		}
		for c := range out {
			out[c] = all
		}
		return out
	}
	for i, s := range samples {
		out[s.class] = append(out[s.class], int32(i))
		for _, c := range near[i] {
			out[c] = append(out[c], int32(i))
		}
	}
	return out
}

// neighbors lists, for each example, the opts.Neighbors other classes whose
// centroids (the normalized sums of their examples) are most similar to it,
// or returns nil when that is every class.
func neighbors(samples []sample, nc, nf int, opts Options) [][]int32 {
	k := opts.Neighbors
	if k <= 0 || k >= nc-1 {
		return nil
	}
	cent := make([]float32, nf*nc)
	for _, s := range samples {
		for _, e := range s.vec {
			cent[int(e.col)*nc+s.class] += e.val
		}
	}
	norms := make([]float64, nc)
	for f := range nf {
		for c, x := range cent[f*nc : f*nc+nc] {
			norms[c] += float64(x * x)
		}
	}
	for c := range norms {
		if norms[c] > 0 {
			norms[c] = 1 / math.Sqrt(norms[c])
		}
	}
	for f := range nf {
		row := cent[f*nc : f*nc+nc]
		for c := range row {
			row[c] *= float32(norms[c])
		}
	}
	near := make([][]int32, len(samples))
	parallel(len(samples), opts.Workers, func(lo, hi int) {
		sc := make([]float32, nc)
		for i := lo; i < hi; i++ {
			centroidScores(sc, cent, samples[i].vec)
			sc[samples[i].class] = float32(math.Inf(-1))
			near[i] = topK(sc, k)
		}
	})
	return near
}

// centroidScores sets sc to the similarity of vec to every class centroid.
// Like trainBinary it runs without the race detector: cent is read-only here.
//
//go:norace
func centroidScores(sc, cent []float32, vec []entry) {
	nc := len(sc)
	clear(sc)
	for _, e := range vec {
		row := cent[int(e.col)*nc : int(e.col)*nc+nc]
		row = row[:len(sc)]
		for c, x := range row {
			sc[c] += e.val * x
		}
	}
}

// topK returns the indices of the k largest scores, best first (ties: lower
// index first), by insertion into a short sorted list.
func topK(sc []float32, k int) []int32 {
	out := make([]int32, 0, k)
	for c, x := range sc {
		if len(out) == k && x <= sc[out[k-1]] {
			continue
		}
		if len(out) < k {
			out = append(out, 0)
		}
		i := len(out) - 1
		for i > 0 && x > sc[out[i-1]] {
			out[i] = out[i-1]
			i--
		}
		out[i] = int32(c)
	}
	return out
}

// parallel runs fn over [0, n) split in contiguous chunks, one per worker.
func parallel(n, workers int, fn func(lo, hi int)) {
	var wg sync.WaitGroup
	chunk := max((n+workers-1)/workers, 1)
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
}

// biasFeature is the value of the constant feature that carries the bias.
const biasFeature = 1

// trainBinary solves the dual of the L2-regularized squared-hinge-loss SVM
// for class c against the rest, on the examples in subset, and returns the
// weights with the bias last. It is LIBLINEAR's dual coordinate descent with
// shrinking, stopping at a projected-gradient gap of 0.1 or after maxEpochs.
//
// The race detector is off for it (go:norace): it writes only its own
// slices and reads the shared examples, which nothing writes while training,
// and instrumenting its inner loops would make tests under -race minutes long.
//
//go:norace
func trainBinary(ctx context.Context, all []sample, subset []int32, c, oos, nf int, opts Options, seed uint64) ([]float32, error) {
	maxEpochs := opts.MaxEpochs
	n := len(subset)
	samples := make([]sample, n)
	for i, j := range subset {
		samples[i] = all[j]
	}
	w := make([]float32, nf+1)
	alpha := make([]float64, n)
	qd := make([]float64, n)
	y := make([]float64, n)
	diag := make([]float64, n)
	index := make([]int, n)
	for i, s := range samples {
		index[i] = i
		y[i] = -1
		if s.class == c {
			y[i] = 1
		}
		cost := opts.C
		if s.class == oos {
			cost *= opts.OOSWeight
		}
		diag[i] = 0.5 / cost
		q := diag[i] + biasFeature*biasFeature
		for _, e := range s.vec {
			q += float64(e.val) * float64(e.val)
		}
		qd[i] = q
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	const eps = 0.1
	active := n
	pgMaxOld := math.Inf(1)
	for epoch := 0; epoch < maxEpochs; epoch++ {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nlu: training stopped: %w", ctx.Err())
		}
		for i := 0; i < active; i++ {
			j := i + rng.IntN(active-i)
			index[i], index[j] = index[j], index[i]
		}
		pgMax, pgMin := math.Inf(-1), math.Inf(1)
		for s := 0; s < active; s++ {
			i := index[s]
			vec := samples[i].vec
			var dot float32
			for _, e := range vec {
				dot += w[e.col] * e.val
			}
			g := y[i]*float64(dot+w[nf]*biasFeature) - 1 + diag[i]*alpha[i]
			pg := 0.0
			if alpha[i] == 0 {
				if g > pgMaxOld {
					active--
					index[s], index[active] = index[active], index[s]
					s--
					continue
				}
				if g < 0 {
					pg = g
				}
			} else {
				pg = g
			}
			pgMax, pgMin = max(pgMax, pg), min(pgMin, pg)
			if math.Abs(pg) > 1e-12 {
				old := alpha[i]
				alpha[i] = max(old-g/qd[i], 0)
				d := float32((alpha[i] - old) * y[i])
				for _, e := range vec {
					w[e.col] += d * e.val
				}
				w[nf] += d * biasFeature
			}
		}
		if pgMax-pgMin <= eps {
			if active == n {
				break
			}
			active = n
			pgMaxOld = math.Inf(1)
			continue
		}
		pgMaxOld = pgMax
		if pgMaxOld <= 0 {
			pgMaxOld = math.Inf(1)
		}
	}
	return w, nil
}
