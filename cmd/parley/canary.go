package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bots"
)

// canaryState is an intent's rollout as the canary routes answer it.
type canaryState struct {
	Version  int          `json:"version"`
	Canary   *bots.Canary `json:"canary"`
	Previous int          `json:"previous,omitempty"`
}

func newCanaryCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary BOT INTENT PERCENT|promote|abort",
		Short: "Change a canary's share, promote it or abort it",
		Long: `Change an intent's running canary (started by "parley deploy --canary P"):

  PERCENT   give the canary PERCENT of new conversations
  promote   make the canary the stable version; conversations that started on
            the previous version keep it
  abort     drop the canary`,
		Example: `  parley canary pizzabot OrderPizza 50
  parley canary pizzabot OrderPizza promote`,
		Args: argsBetween(3, 3, "BOT INTENT and a percentage, promote or abort"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return canaryChange(cmd.Context(), c, args[0], args[1], args[2])
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

func canaryChange(ctx context.Context, c *cli, bot, intent, action string) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	path := "/v1/bots/" + url.PathEscape(bot) + "/intents/" + url.PathEscape(intent) + "/canary"
	var out canaryState
	switch action {
	case "promote", "abort":
		err = api.do(ctx, "POST", path+"/"+action, nil, &out)
	default:
		p, perr := strconv.Atoi(strings.TrimSuffix(action, "%"))
		if perr != nil || p < 0 || p > 100 {
			return usageErrorf("canary: %q is not a percentage from 0 to 100, promote or abort", action)
		}
		err = api.do(ctx, "PUT", path, map[string]int{"percent": p}, &out)
	}
	if err != nil {
		return fmt.Errorf("%s/%s: %w", bot, intent, err)
	}
	if c.json {
		return c.printJSON(out)
	}
	fmt.Fprintf(c.stdout, "intent %s: stable version %d", intent, out.Version)
	if out.Canary != nil {
		fmt.Fprintf(c.stdout, ", canary version %d at %d%%", out.Canary.Version, out.Canary.Percent)
	}
	if out.Previous != 0 {
		fmt.Fprintf(c.stdout, ", previous version %d kept for its conversations", out.Previous)
	}
	fmt.Fprintln(c.stdout)
	return nil
}
