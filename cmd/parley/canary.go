package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

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
		Args: argsBetween(3, 3, "BOT INTENT and a percentage, promote or abort (or: status BOT [INTENT])"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return canaryChange(cmd.Context(), c, args[0], args[1], args[2])
		},
	}
	c.addJSONFlag(cmd)
	cmd.AddCommand(newCanaryStatusCmd(c))
	return cmd
}

func newCanaryStatusCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status BOT [INTENT]",
		Short: "Show a bot's running canaries, or one intent's rollout",
		Long: `Show the rollout of every intent of a bot that has a canary or a previous
version still serving conversations (all intents with --all), or of one intent.`,
		Example: `  parley canary status pizzabot
  parley canary status pizzabot OrderPizza --json`,
		Args: argsBetween(1, 2, "BOT and optionally an INTENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			all, _ := cmd.Flags().GetBool("all")
			return canaryStatus(cmd.Context(), c, args, all)
		},
	}
	cmd.Flags().Bool("all", false, "list every intent, also those with only a stable version")
	c.addJSONFlag(cmd)
	return cmd
}

func canaryStatus(ctx context.Context, c *cli, args []string, all bool) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	bot := args[0]
	var list []bots.HandlerInfo
	if len(args) == 2 {
		info, err := getHandler(ctx, api, bot, args[1])
		if err != nil {
			return err
		}
		info.Source, info.Versions = "", nil
		list = append(list, *info)
	} else {
		var out struct {
			Intents []bots.HandlerInfo `json:"intents"`
		}
		if err := api.do(ctx, "GET", "/v1/bots/"+url.PathEscape(bot)+"/intents", nil, &out); err != nil {
			return fmt.Errorf("%s: %w", bot, err)
		}
		for _, h := range out.Intents {
			if all || h.Canary != nil || h.Previous != 0 {
				list = append(list, h)
			}
		}
	}
	if c.json {
		if list == nil {
			list = []bots.HandlerInfo{}
		}
		return c.printJSON(map[string]any{"bot": bot, "intents": list})
	}
	if len(list) == 0 {
		fmt.Fprintf(c.stdout, "%s: no canary running\n", bot)
		return nil
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "INTENT\tSTABLE\tCANARY\tPERCENT\tPREVIOUS")
	for _, h := range list {
		canary, percent, previous := "-", "-", "-"
		if h.Canary != nil {
			canary, percent = strconv.Itoa(h.Canary.Version), strconv.Itoa(h.Canary.Percent)+"%"
		}
		if h.Previous != 0 {
			previous = strconv.Itoa(h.Previous)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", h.Intent, h.Current, canary, percent, previous)
	}
	return w.Flush()
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
