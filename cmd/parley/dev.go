package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/internal/devloop"
)

func newDevCmd(c *cli) *cobra.Command {
	var opts devloop.Options
	cmd := &cobra.Command{
		Use:   "dev DIR",
		Short: "Serve a bot directory and redeploy it on every change",
		Long: `Run Parley in this process on the embedded store, deploy the bot directory DIR,
and watch it: a changed bot.yaml or handler is redeployed within a second. A file
that does not parse or compile is reported with its file and line, and the version
deployed before keeps serving. With --test, DIR/tests runs again after every change
(in a Parley of its own, as parley test runs it).

dev prints the console's and the web channel's URLs with an admin key and a web
token ready to use. bot.yaml's secret settings come from the environment; an unset
variable gets a made-up value, and channels other than web whose variables are not
set are not connected. REDIS_URL is ignored: dev always uses the embedded store, in a
temporary directory unless --data is given. Ctrl-C stops it.`,
		Example: `  parley dev examples/pizzabot
  parley dev examples/pizzabot --test --addr localhost:9090`,
		Args: argsBetween(1, 1, "one bot directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir, opts.Environ, opts.Out = args[0], c.environ, c.stdout
			opts.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return devloop.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Addr, "addr", "localhost:8080", "the address to listen on")
	cmd.Flags().StringVar(&opts.DataDir, "data", "", "keep the store's data in this directory (default: a temporary one)")
	cmd.Flags().BoolVar(&opts.Test, "test", false, "rerun DIR/tests after every change")
	return cmd
}
