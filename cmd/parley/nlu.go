package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/intents/nlu"
)

// nluCommand runs "parley nlu SUBCOMMAND".
func nluCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "eval" {
		return usageError{"nlu takes a subcommand: eval"}
	}
	return nluEval(args[1:], stdout)
}

// nluEval trains the built-in classifier on one split of a data set and
// reports how it does on the other: a CLINC150-style file (train, val,
// oos_train, oos_val; trained on train + oos_train, scored on val + oos_val)
// or a bot's NLU data as PUT /v1/bots/{bot}/nlu takes it, with a held-out
// fraction of each intent's examples scored.
func nluEval(args []string, stdout io.Writer) error {
	asJSON, holdout := false, 0.2
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		switch name {
		case "--json":
			if hasValue {
				return usageError{"--json takes no value"}
			}
			asJSON = true
		case "--holdout":
			if !hasValue {
				if i+1 >= len(args) {
					return usageError{"--holdout needs a value"}
				}
				i++
				value = args[i]
			}
			f, err := strconv.ParseFloat(value, 64)
			if err != nil || f <= 0 || f >= 1 {
				return usageError{"--holdout must be a fraction between 0 and 1"}
			}
			holdout = f
		default:
			if strings.HasPrefix(a, "--") {
				return usageError{fmt.Sprintf("unknown flag %s", name)}
			}
			rest = append(rest, a)
		}
	}
	if len(rest) != 1 {
		return usageError{"nlu eval takes one data file"}
	}
	raw, err := os.ReadFile(rest[0])
	if err != nil {
		return err
	}
	train, test, err := evalSplit(raw, holdout)
	if err != nil {
		return fmt.Errorf("%s: %w", rest[0], err)
	}
	if len(test.Texts) == 0 {
		return fmt.Errorf("%s: nothing to test on: too few examples for a held-out fraction of %g", rest[0], holdout)
	}
	report, _, err := nlu.Evaluate(context.Background(), train, test, nlu.Options{})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	_, err = io.WriteString(stdout, report.String())
	return err
}

// evalSplit reads either format and returns the training data and the
// utterances to score.
func evalSplit(raw []byte, holdout float64) (nlu.Data, nlu.Labeled, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nlu.Data{}, nlu.Labeled{}, err
	}
	if _, ok := probe["train"]; ok {
		return nlu.ReadCLINC(bytes.NewReader(raw))
	}
	if _, ok := probe["intents"]; !ok {
		return nlu.Data{}, nlu.Labeled{}, fmt.Errorf(`want CLINC150-style splits ("train", "val", ...) or NLU data ("intents": ...)`)
	}
	var d nlu.Data
	if err := json.Unmarshal(raw, &d); err != nil {
		return nlu.Data{}, nlu.Labeled{}, err
	}
	if err := d.Validate(); err != nil {
		return nlu.Data{}, nlu.Labeled{}, err
	}
	train, test := nlu.Holdout(d, holdout, 1)
	return train, test, nil
}
