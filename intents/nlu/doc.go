// Package nlu is Parley's built-in intent classifier and slot extractor:
// pure Go, trained in seconds from a bot's example utterances, with no model
// downloads.
//
// A bot's NLU data ([Data]) lists example utterances per intent, optionally
// marking slot values ("I want a [large](size) pizza"), slot types (value
// lists with synonyms, regular expressions, built-in numbers, dates and
// times) and examples of what is out of scope (under the intent "fallback").
// [Train] turns it into a [Model]:
//
//	m, err := nlu.Train(ctx, data, nlu.Options{})
//	cands := m.Classify("can I get a big pizza?") // [{OrderPizza 0.97} ...]
//	slots := m.Slots("can I get a big pizza?")    // {"size": "large"}
//	raw, _ := m.MarshalBinary()                    // store it; nlu.UnmarshalModel(raw) on any replica
//
// How it works: text is lower-cased and split into words; its features are
// word unigrams and bigrams and character 3- and 4-grams of each word, hashed
// into buckets and weighted by TF-IDF (sublinear term frequency, each block
// L2-normalized). One linear SVM per intent, against all others, is trained
// by dual coordinate descent on the examples of that intent and of the
// intents nearest to it; out-of-scope examples train a class of their own.
// Weights are stored feature-major as int8, only those that are not zero.
// Scores become probabilities by a softmax over the intents and "none of
// them"; its temperature, the score of "none" and the default threshold are
// calibrated by cross-validation on the training data, where intents left
// out of a round stand in for out-of-scope messages when the data has few
// of its own ([Model.Calibration]). A message whose best intent is below
// the threshold goes to the fallback handler, with the candidates attached.
//
// [Evaluate], [CrossValidate] and [EvaluateDraws] measure a model: on a
// held-out split, on a bot's own data fold by fold, or on small bots drawn
// from a large labelled data set.
//
// Training is deterministic: the same data and options give the same model,
// byte for byte, and the same answers. It is bounded in time (a context, and
// at most [MaxExamples] examples of [MaxIntents] intents) and in memory: the
// largest structure, while training, is the intents' centroids (4 bytes per
// feature and intent); weights are kept without their zeros.
//
// Concurrency: a Model is immutable and safe for concurrent use; Classify
// does not allocate beyond its result. Train uses Options.Workers goroutines.
//
// The user manual is docs/nlu.md.
package nlu
