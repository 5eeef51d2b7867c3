package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/botdir"
)

func newDeployCmd(c *cli) *cobra.Command {
	var canary int
	cmd := &cobra.Command{
		Use:   "deploy DIR",
		Short: "Upload a bot directory (bot.yaml, intents/*.lua)",
		Long: `Upload a bot directory: bot.yaml (name, settings, channels, nlu, schedules) and
intents/*.lua, one handler per intent. Every file is checked before anything is
uploaded; a broken handler fails the deploy with its file and line.

With --canary P, every changed handler goes to P% of new conversations until
promoted with "parley canary BOT INTENT promote".`,
		Example: `  parley deploy examples/pizzabot
  parley deploy examples/pizzabot --canary 10`,
		Args: argsBetween(1, 1, "one bot directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts botdir.DeployOptions
			if flagSet(cmd, "canary") {
				if canary < 0 || canary > 100 {
					return usageErrorf("--canary takes a percentage from 0 to 100, not %d", canary)
				}
				opts.Canary = &canary
			}
			return deploy(cmd.Context(), c, args[0], opts)
		},
	}
	cmd.Flags().Var(percentValue{&canary}, "canary", "upload changed handlers as canaries for this percentage of new conversations")
	c.addJSONFlag(cmd)
	return cmd
}

// percentValue is a flag that takes a whole number with or without a "%".
type percentValue struct{ p *int }

func (v percentValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v percentValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || n < 0 || n > 100 {
		return fmt.Errorf("--canary takes a percentage from 0 to 100, not %q", s)
	}
	*v.p = n
	return nil
}

func (percentValue) Type() string { return "percent" }

func deploy(ctx context.Context, c *cli, dir string, opts botdir.DeployOptions) error {
	bot, err := botdir.Read(dir, botdir.Options{Env: botdir.EnvOf(c.environ), Secrets: app.ChannelSecrets()})
	if err != nil {
		return err
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	prog := c.progress(botdir.Steps(bot))
	defer prog.clear()
	opts.Step = prog.step
	opts.Out = textWriter{c, prog}
	rep, err := botdir.Deploy(ctx, api.Client, bot, opts)
	if err != nil {
		return err
	}
	prog.clear()
	if !c.json {
		for _, w := range rep.Warnings {
			fmt.Fprintf(c.stderr, "warning: %s\n", w)
		}
	}
	if c.json {
		return c.printJSON(rep)
	}
	return nil
}

// textWriter writes text output below the progress line, unless the
// output is JSON.
type textWriter struct {
	c    *cli
	prog *progress
}

func (w textWriter) Write(p []byte) (int, error) {
	w.prog.clear()
	w.c.textf("%s", p)
	return len(p), nil
}

// readBotFile reads and checks a bot.yaml. With expand false, ${VAR}
// references in secret channel settings are left as they are, for readers
// that do not upload the channels.
func readBotFile(path string, environ []string, expand bool) (*botdir.File, error) {
	return botdir.ReadFile(path, botdir.Options{Env: botdir.EnvOf(environ), Secrets: app.ChannelSecrets(), KeepVars: !expand})
}
