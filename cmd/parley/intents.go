package main

import (
	"context"
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bots"
)

// intentPath is the API path of a bot's intent.
func intentPath(bot, intent string) string {
	return "/v1/bots/" + url.PathEscape(bot) + "/intents/" + url.PathEscape(intent)
}

// getHandler reads an intent's versions.
func getHandler(ctx context.Context, api *client, bot, intent string) (*bots.HandlerInfo, error) {
	var info bots.HandlerInfo
	if err := api.do(ctx, "GET", intentPath(bot, intent), nil, &info); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", bot, intent, err)
	}
	return &info, nil
}

func newVersionsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "versions BOT INTENT",
		Short: "List an intent's handler versions",
		Long: `List every stored version of an intent's handler, oldest first, with its
checksum and upload time, marking the stable version, a running canary and the
previous stable version that still serves the conversations begun on it.`,
		Example: `  parley versions pizzabot OrderPizza`,
		Args:    argsBetween(2, 2, "BOT INTENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			info, err := getHandler(cmd.Context(), api, args[0], args[1])
			if err != nil {
				return err
			}
			if c.json {
				info.Source = ""
				return c.printJSON(info)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tSHA256\tCREATED\t")
			for _, v := range info.Versions {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", v.Version, v.SHA256[:min(12, len(v.SHA256))], orDash(v.Created), versionRole(info, v.Version))
			}
			return w.Flush()
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

// versionRole says what version v is to the intent: stable, canary,
// previous, or nothing.
func versionRole(info *bots.HandlerInfo, v int) string {
	switch {
	case v == info.Current:
		return "stable"
	case info.Canary != nil && v == info.Canary.Version:
		return fmt.Sprintf("canary at %d%%", info.Canary.Percent)
	case v == info.Previous:
		return "previous"
	}
	return ""
}

func newRollbackCmd(c *cli) *cobra.Command {
	var to int
	cmd := &cobra.Command{
		Use:   "rollback BOT INTENT [--to N]",
		Short: "Serve an earlier version of an intent's handler",
		Long: `Make an earlier version of an intent's handler the only one served: version N
with --to N, else the highest version below the stable one. A running canary
is dropped; the next turn on every replica runs the version rolled back to.`,
		Example: `  parley rollback pizzabot OrderPizza
  parley rollback pizzabot OrderPizza --to 3`,
		Args: argsBetween(2, 2, "BOT INTENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if flagSet(cmd, "to") && to <= 0 {
				return usageErrorf("--to takes a version number (1 or more)")
			}
			return rollback(cmd.Context(), c, args[0], args[1], to)
		},
	}
	cmd.Flags().IntVar(&to, "to", 0, "the version to serve (default: the one before the stable version)")
	c.addJSONFlag(cmd)
	return cmd
}

func rollback(ctx context.Context, c *cli, bot, intent string, to int) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	from := 0
	if to == 0 {
		info, err := getHandler(ctx, api, bot, intent)
		if err != nil {
			return err
		}
		from = info.Current
		for _, v := range info.Versions {
			if v.Version < info.Current && v.Version > to {
				to = v.Version
			}
		}
		if to == 0 {
			return fmt.Errorf("%s/%s: version %d is the first one; there is nothing to roll back to", bot, intent, info.Current)
		}
	}
	var out struct {
		Intent  string `json:"intent"`
		Version int    `json:"version"`
	}
	if err := api.do(ctx, "POST", intentPath(bot, intent)+"/rollback", map[string]int{"version": to}, &out); err != nil {
		return fmt.Errorf("%s/%s: %w", bot, intent, err)
	}
	if c.json {
		return c.printJSON(out)
	}
	if from != 0 {
		fmt.Fprintf(c.stdout, "intent %s: version %d serves now (was %d)\n", intent, out.Version, from)
	} else {
		fmt.Fprintf(c.stdout, "intent %s: version %d serves now\n", intent, out.Version)
	}
	return nil
}
