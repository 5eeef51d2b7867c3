package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/botdir"
	"github.com/parleyhq/parley/internal/convtest"
)

// testFlags are parley test's flags.
type testFlags struct {
	junit, run, against, out string
	record, canary, verbose  bool
}

func newTestCmd(c *cli) *cobra.Command {
	var f testFlags
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run a bot's conversation tests (DIR/tests/*.yaml)",
		Long: `Run the conversation tests DIR/tests/*.yaml against the bot in DIR (bot.yaml and
intents/), offline: a Parley in this process, on its own embedded store, runs every
turn through the server's engine, sandbox and channel adapters. No server, Redis or
network is used: a test's mocks answer the http module, and its "now" freezes the
handlers' clock. The format is docs/testing.md.

Exit status: 0 when every test passed, 1 when one failed, 2 when the tests could
not run (a test file or bot.yaml that does not parse, an unknown key, a handler
that does not compile: the file and line are printed).

With --against URL, the tests run on a running Parley instead, through its
management API's invoke endpoint (with --key or $PARLEY_ADMIN_KEY): the versions
it serves answer, canaries included (--canary puts every test in the canaries).
Mocks, "now" and channels other than web cannot apply there; the output says so.

With --record, parley test writes a test file from a conversation's stored
transcript on the server at --url: parley test --record BOT CONVERSATION.`,
		Example: `  parley test examples/pizzabot
  parley test examples/pizzabot --run 'order' --junit report.xml
  parley test examples/pizzabot --against https://parley.example.com --canary
  parley test --record pizzabot web:alice --out examples/pizzabot/tests/alice.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.record {
				return argsBetween(2, 2, "a bot and a conversation with --record")(cmd, args)
			}
			return argsBetween(1, 1, "one bot directory")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.record {
				return recordTest(cmd.Context(), c, args[0], args[1], f.out)
			}
			return runTests(cmd.Context(), c, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.junit, "junit", "", "also write the results as JUnit XML to this file")
	fl.StringVar(&f.run, "run", "", "run only the tests whose name matches this regular expression")
	fl.StringVar(&f.against, "against", "", "run the tests on the Parley at this URL instead of in this process")
	fl.BoolVar(&f.canary, "canary", false, "with --against: run every test in the canaries of the bot's intents")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list the tests that passed too")
	fl.BoolVar(&f.record, "record", false, "write a test file from a stored conversation: test --record BOT CONVERSATION")
	fl.StringVar(&f.out, "out", "", "with --record: the file to write (default: standard output)")
	c.addJSONFlag(cmd)
	return cmd
}

// runTests runs DIR's tests and reports them; a failed test or a set-up
// problem ends parley with exit code 1 or 2.
func runTests(ctx context.Context, c *cli, dir string, f testFlags) error {
	re, err := convtest.ParseRun(f.run)
	if err != nil {
		return usageError{err.Error()}
	}
	if f.canary && f.against == "" {
		return usageErrorf("--canary applies to --against only")
	}
	suite, err := convtest.Load(dir, convtest.LoadOptions{Env: botdir.EnvOf(c.environ), Run: re})
	if err != nil {
		return setupFailure(err)
	}
	// On a terminal, a progress line on stderr names the test under way:
	// replaying many conversations against a server takes a while.
	prog := c.progress(suite.Tests())
	defer prog.clear()
	opts := convtest.RunOptions{OnTest: func(t *convtest.Test) { prog.step(t.Name) }}
	if !c.json {
		opts.OnResult = func(r *convtest.Result) {
			prog.clear()
			_ = convtest.WriteResult(c.stdout, r, f.verbose)
		}
	}
	var report *convtest.Report
	if f.against != "" {
		key := firstNonEmpty(c.key, c.env["PARLEY_ADMIN_KEY"])
		if key == "" {
			return &exitError{code: 2, err: errors.New("no admin key for --against: set PARLEY_ADMIN_KEY or pass --key")}
		}
		report, err = convtest.RunAgainst(ctx, apiclient.New(f.against, key), suite,
			convtest.RemoteOptions{RunOptions: opts, Canary: f.canary})
	} else {
		var h *convtest.Harness
		if h, err = convtest.NewHarness(ctx, convtest.HarnessOptions{}); err != nil {
			return &exitError{code: 2, err: err}
		}
		report, err = h.Run(ctx, suite, opts)
		if cerr := h.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	prog.clear()
	if err != nil {
		return setupFailure(err)
	}
	if f.junit != "" {
		var b bytes.Buffer
		if err := convtest.WriteJUnit(&b, report); err != nil {
			return err
		}
		if err := os.WriteFile(f.junit, b.Bytes(), 0o644); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("write --junit: %w", err)}
		}
	}
	if c.json {
		if err := c.printJSON(report); err != nil {
			return err
		}
	} else if err := convtest.WriteSummary(c.stdout, report); err != nil {
		return err
	}
	if report.Failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// setupFailure is a problem that kept the tests from running: exit code 2.
func setupFailure(err error) error {
	return &exitError{code: 2, err: err}
}

// recordTest writes a test file from a stored conversation.
func recordTest(ctx context.Context, c *cli, bot, conversation, out string) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	raw, err := convtest.Record(ctx, api.Client, bot, conversation)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = c.stdout.Write(raw)
		return err
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return err
	}
	c.textf("wrote %s\n", out)
	return nil
}
