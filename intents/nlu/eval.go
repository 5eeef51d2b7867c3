package nlu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"
)

// Labeled is a list of utterances with the intent each belongs to;
// OutOfScope marks out-of-scope utterances.
type Labeled struct {
	Texts   []string
	Intents []string
}

func (l *Labeled) add(text, intent string) {
	l.Texts = append(l.Texts, text)
	l.Intents = append(l.Intents, intent)
}

// ReadCLINC reads a file in the format of CLINC150's train_val.json: lists of
// [utterance, intent] pairs under the keys train, val, oos_train and oos_val,
// with intent "oos" for out-of-scope. It returns train + oos_train as NLU
// data (out-of-scope examples under [OutOfScope]) and val + oos_val to score on.
func ReadCLINC(r io.Reader) (Data, Labeled, error) {
	var raw map[string][][2]string
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return Data{}, Labeled{}, fmt.Errorf("decode: %w", err)
	}
	if len(raw["train"]) == 0 || len(raw["val"]) == 0 {
		return Data{}, Labeled{}, fmt.Errorf("no train or val pairs")
	}
	d := Data{Intents: make(map[string][]string)}
	for _, key := range []string{"train", "oos_train"} {
		for _, p := range raw[key] {
			intent := clincIntent(p[1])
			d.Intents[intent] = append(d.Intents[intent], p[0])
		}
	}
	var test Labeled
	for _, key := range []string{"val", "oos_val"} {
		for _, p := range raw[key] {
			test.add(p[0], clincIntent(p[1]))
		}
	}
	return d, test, nil
}

func clincIntent(s string) string {
	if s == "oos" {
		return OutOfScope
	}
	return s
}

// Holdout splits d into training data and a held-out test set: a fraction of
// each intent's examples (at least one when it has two or more), chosen by a
// seeded shuffle so the split is the same every time.
func Holdout(d Data, fraction float64, seed uint64) (Data, Labeled) {
	train := Data{Intents: make(map[string][]string, len(d.Intents)), Slots: d.Slots, Threshold: d.Threshold}
	var test Labeled
	for _, name := range d.intentNames() {
		ex := slices.Clone(d.Intents[name])
		rng := rand.New(rand.NewPCG(seed, uint64(len(name))))
		rng.Shuffle(len(ex), func(i, j int) { ex[i], ex[j] = ex[j], ex[i] })
		k := int(float64(len(ex))*fraction + 0.5)
		if k == 0 && len(ex) >= 2 && fraction > 0 {
			k = 1
		}
		for _, e := range ex[:k] {
			test.add(ParseExample(e).Text, name)
		}
		train.Intents[name] = ex[k:]
	}
	return train, test
}

// Report is the result of [Evaluate].
type Report struct {
	// TrainExamples and Intents describe the training data.
	TrainExamples int `json:"train_examples"`
	Intents       int `json:"intents"`
	// InScope and OutOfScope count the test utterances of each kind.
	InScope    int `json:"test_in_scope"`
	OutOfScope int `json:"test_out_of_scope"`
	// Threshold is the confidence threshold the predictions used.
	Threshold float64 `json:"threshold"`
	// Accuracy is the share of in-scope utterances routed to their intent
	// (one sent to fallback counts as wrong).
	Accuracy float64 `json:"in_scope_accuracy"`
	// TopAccuracy is the same without the threshold: the best intent only.
	TopAccuracy float64 `json:"top_intent_accuracy"`
	// OOSRecall is the share of out-of-scope utterances sent to fallback;
	// OOSPrecision the share of fallbacks that were out of scope.
	OOSRecall    float64 `json:"oos_recall"`
	OOSPrecision float64 `json:"oos_precision"`
	// TrainTime is how long training took; ClassifyTime the mean time to
	// classify one utterance.
	TrainTime    time.Duration `json:"train_ns"`
	ClassifyTime time.Duration `json:"classify_ns"`
	// ModelBytes is the size of the serialized model; ModelMemory an
	// estimate of its size in memory.
	ModelBytes  int `json:"model_bytes"`
	ModelMemory int `json:"model_memory_bytes"`
	// Calibration is how the model's confidences and default threshold
	// were set.
	Calibration Calibration `json:"calibration"`
	// Confused lists the most frequent mistakes, most frequent first.
	Confused []Confusion `json:"confused"`
}

// Confusion counts test utterances of one intent predicted as another.
type Confusion struct {
	Want  string `json:"want"`
	Got   string `json:"got"`
	Count int    `json:"count"`
}

// Evaluate trains on train and scores the model on test, with the model's
// own threshold.
func Evaluate(ctx context.Context, train Data, test Labeled, opts Options) (*Report, *Model, error) {
	return EvaluateThreshold(ctx, train, test, opts, 0)
}

// EvaluateThreshold is [Evaluate] with the threshold a bot would route with:
// threshold when it is above zero (a bot's nlu_threshold setting), else the
// model's own.
func EvaluateThreshold(ctx context.Context, train Data, test Labeled, opts Options, threshold float64) (*Report, *Model, error) {
	start := time.Now()
	m, err := Train(ctx, train, opts)
	if err != nil {
		return nil, nil, err
	}
	took := time.Since(start)
	r, err := Score(m, test, threshold)
	if err != nil {
		return nil, nil, err
	}
	r.TrainTime, r.TrainExamples = took, train.Examples()
	return r, m, nil
}

// Score scores a trained model on test, routing with threshold when it is
// above zero, else with the model's own threshold. The report's training
// figures (TrainTime, TrainExamples) are left zero.
func Score(m *Model, test Labeled, threshold float64) (*Report, error) {
	if len(test.Texts) != len(test.Intents) {
		return nil, fmt.Errorf("test set: %d texts, %d intents", len(test.Texts), len(test.Intents))
	}
	r, err := describe(m, threshold)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	preds, tops := predict(m, test, r.Threshold)
	if len(test.Texts) > 0 {
		r.ClassifyTime = time.Since(start) / time.Duration(len(test.Texts))
	}
	r.score(test, preds, tops)
	return r, nil
}

// describe starts a report on m: its size, intents, calibration and the
// threshold it routes with (threshold when above zero).
func describe(m *Model, threshold float64) (*Report, error) {
	r := &Report{Intents: len(m.Intents()), Calibration: m.Calibration()}
	raw, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	r.ModelBytes, r.ModelMemory = len(raw), m.memory()
	r.Threshold = m.Threshold()
	if threshold > 0 {
		r.Threshold = threshold
	}
	return r, nil
}

// predict routes each test utterance as a bot would: to its best intent
// when that reaches threshold, else to [OutOfScope]. tops are the best
// intents regardless of the threshold.
func predict(m *Model, test Labeled, threshold float64) (preds, tops []string) {
	preds = make([]string, len(test.Texts))
	tops = make([]string, len(test.Texts))
	for i, t := range test.Texts {
		c := m.Classify(t)
		preds[i], tops[i] = OutOfScope, OutOfScope
		if len(c) > 0 {
			tops[i] = c[0].Intent
			if c[0].Confidence >= threshold {
				preds[i] = c[0].Intent
			}
		}
	}
	return preds, tops
}

// CrossValidate scores a bot's own data when there is too little of it to
// hold some back: its examples are split in folds (stratified by intent, by
// a shuffle seeded with opts.Seed) and each fold is scored by a model
// trained on the others, routing with threshold when it is above zero, else
// with that model's own threshold. An intent's only example is never held
// out. Out-of-scope examples (under [OutOfScope]) are scored like the
// others, so the report has an out-of-scope recall when the data has some.
// The report's training time, model size, calibration and threshold are
// those of the model trained on all of d, the one a bot would deploy.
// folds below 2 means 5.
func CrossValidate(ctx context.Context, d Data, folds int, opts Options, threshold float64) (*Report, error) {
	if folds < 2 {
		folds = 5
	}
	start := time.Now()
	full, err := Train(ctx, d, opts)
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	r, err := describe(full, threshold)
	if err != nil {
		return nil, err
	}
	r.TrainTime, r.TrainExamples = took, d.Examples()
	trains := make([]Data, folds)
	tests := make([]Labeled, folds)
	for f := range trains {
		trains[f] = Data{Intents: make(map[string][]string, len(d.Intents)), Slots: d.Slots, Threshold: d.Threshold}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 1
	}
	for _, name := range d.intentNames() {
		ex := slices.Clone(d.Intents[name])
		rng := rand.New(rand.NewPCG(seed, uint64(len(name))))
		rng.Shuffle(len(ex), func(i, j int) { ex[i], ex[j] = ex[j], ex[i] })
		for i, e := range ex {
			for f := range trains {
				if len(ex) > 1 && i%folds == f {
					tests[f].add(ParseExample(e).Text, name)
				} else {
					trains[f].Intents[name] = append(trains[f].Intents[name], e)
				}
			}
		}
	}
	var all Labeled
	var preds, tops []string
	var classify time.Duration
	for f := range folds {
		if len(tests[f].Texts) == 0 {
			continue
		}
		m, err := Train(ctx, trains[f], opts)
		if err != nil {
			return nil, fmt.Errorf("fold %d: %w", f, err)
		}
		thr := m.Threshold()
		if threshold > 0 {
			thr = threshold
		}
		start := time.Now()
		p, t := predict(m, tests[f], thr)
		classify += time.Since(start)
		preds, tops = append(preds, p...), append(tops, t...)
		all.Texts = append(all.Texts, tests[f].Texts...)
		all.Intents = append(all.Intents, tests[f].Intents...)
	}
	if len(all.Texts) > 0 {
		r.ClassifyTime = classify / time.Duration(len(all.Texts))
	}
	r.score(all, preds, tops)
	return r, nil
}

func (r *Report) score(test Labeled, preds, tops []string) {
	var inRight, topRight, oosRight, oosPred int
	confused := make(map[[2]string]int)
	for i, want := range test.Intents {
		got := preds[i]
		if got == OutOfScope {
			oosPred++
		}
		if want == OutOfScope {
			r.OutOfScope++
			if got == OutOfScope {
				oosRight++
			}
		} else {
			r.InScope++
			if got == want {
				inRight++
			}
			if tops[i] == want {
				topRight++
			}
		}
		if got != want {
			confused[[2]string{want, got}]++
		}
	}
	r.Accuracy = ratio(inRight, r.InScope)
	r.TopAccuracy = ratio(topRight, r.InScope)
	r.OOSRecall = ratio(oosRight, r.OutOfScope)
	r.OOSPrecision = ratio(oosRight, oosPred)
	for k, n := range confused {
		r.Confused = append(r.Confused, Confusion{Want: k[0], Got: k[1], Count: n})
	}
	sort.Slice(r.Confused, func(i, j int) bool {
		a, b := r.Confused[i], r.Confused[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Want+"\x00"+a.Got < b.Want+"\x00"+b.Got
	})
	if len(r.Confused) > 10 {
		r.Confused = r.Confused[:10]
	}
}

// size formats a number of bytes in KiB or MiB.
func size(n int) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// String formats the report for people.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trained on %d examples of %d intents in %v\n", r.TrainExamples, r.Intents, r.TrainTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "tested on %d in-scope and %d out-of-scope utterances, threshold %.3f\n", r.InScope, r.OutOfScope, r.Threshold)
	if c := r.Calibration; c.HeldOut > 0 {
		fmt.Fprintf(&b, "calibrated on %d held-out examples", c.HeldOut)
		if c.StandIns > 0 {
			fmt.Fprintf(&b, " and %d of left-out intents", c.StandIns)
		}
		fmt.Fprintf(&b, ": threshold %.3f, temperature %.3f\n", c.Threshold, c.Temperature)
	} else {
		fmt.Fprintf(&b, "not calibrated (too few examples): threshold %.3f\n", c.Threshold)
	}
	fmt.Fprintf(&b, "in-scope accuracy   %6.2f%%  (best intent without threshold %.2f%%)\n", 100*r.Accuracy, 100*r.TopAccuracy)
	if r.OutOfScope > 0 {
		fmt.Fprintf(&b, "out-of-scope recall %6.2f%%\n", 100*r.OOSRecall)
	}
	fmt.Fprintf(&b, "fallback precision  %6.2f%%\n", 100*r.OOSPrecision)
	fmt.Fprintf(&b, "classify            %v per utterance\n", r.ClassifyTime)
	fmt.Fprintf(&b, "model               %s serialized, %s in memory\n", size(r.ModelBytes), size(r.ModelMemory))
	if len(r.Confused) > 0 {
		b.WriteString("most confused (want -> got: count):\n")
		for _, c := range r.Confused {
			fmt.Fprintf(&b, "  %s -> %s: %d\n", c.Want, c.Got, c.Count)
		}
	}
	return b.String()
}
