package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/intents/nlu"
)

func newNLUCmd(c *cli) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "nlu",
		Short: "Work with the built-in intent classifier",
	})
	cmd.AddCommand(newNLUEvalCmd(c))
	return cmd
}

func newNLUEvalCmd(c *cli) *cobra.Command {
	var holdout float64
	cmd := &cobra.Command{
		Use:   "eval DATA.json|BOTDIR",
		Short: "Train the built-in classifier on a data set and report how it does",
		Long: `Train the built-in classifier on one split of a data set and report accuracy,
out-of-scope recall, confusions and timings on the other. The data is one of:

  a bot directory (or its bot.yaml)   its nlu section; a held-out fraction of each
                                      intent's examples is scored
  NLU data as JSON                    {"intents": ...} as PUT /v1/bots/{bot}/nlu takes
                                      it; a held-out fraction is scored
  a CLINC150-style JSON file          train, val, oos_train, oos_val: trained on train
                                      and oos_train, scored on val and oos_val`,
		Example: `  parley nlu eval examples/pizzabot
  parley nlu eval data_full.json --json`,
		Args: argsBetween(1, 1, "one data file or bot directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if holdout <= 0 || holdout >= 1 {
				return usageErrorf("--holdout must be a fraction between 0 and 1")
			}
			return nluEval(cmd.Context(), c, args[0], holdout)
		},
	}
	cmd.Flags().Float64Var(&holdout, "holdout", 0.2, "the fraction of each intent's examples held out for scoring")
	c.addJSONFlag(cmd)
	return cmd
}

// nluEval trains the built-in classifier on one split of a data set and
// reports how it does on the other.
func nluEval(ctx context.Context, c *cli, path string, holdout float64) error {
	train, test, err := readEvalData(path, c.environ, holdout)
	if err != nil {
		return err
	}
	if len(test.Texts) == 0 {
		return fmt.Errorf("%s: nothing to test on: too few examples for a held-out fraction of %g", path, holdout)
	}
	prog := c.progress(0)
	prog.step(fmt.Sprintf("training on %d intents, scoring %d utterances", len(train.Intents), len(test.Texts)))
	report, _, err := nlu.Evaluate(ctx, train, test, nlu.Options{})
	prog.clear()
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(report)
	}
	_, err = io.WriteString(c.stdout, report.String())
	return err
}

// readEvalData reads a bot directory, a bot.yaml or a JSON data file and
// returns the training data and the utterances to score.
func readEvalData(path string, environ []string, holdout float64) (nlu.Data, nlu.Labeled, error) {
	yamlPath := ""
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		yamlPath = filepath.Join(path, "bot.yaml")
	} else if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
		yamlPath = path
	}
	if yamlPath != "" {
		bot, err := readBotFile(yamlPath, environ, false)
		if err != nil {
			return nlu.Data{}, nlu.Labeled{}, err
		}
		if bot.NLU == nil || len(bot.NLU.Intents) == 0 {
			return nlu.Data{}, nlu.Labeled{}, fmt.Errorf("%s has no nlu section to evaluate", yamlPath)
		}
		if err := bot.NLU.Validate(); err != nil {
			return nlu.Data{}, nlu.Labeled{}, fmt.Errorf("%s: nlu: %w", yamlPath, err)
		}
		train, test := nlu.Holdout(*bot.NLU, holdout, 1)
		return train, test, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nlu.Data{}, nlu.Labeled{}, err
	}
	train, test, err := evalSplit(raw, holdout)
	if err != nil {
		return nlu.Data{}, nlu.Labeled{}, fmt.Errorf("%s: %w", path, err)
	}
	return train, test, nil
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
