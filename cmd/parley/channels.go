package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// channelsPath is the API path of a bot's channels.
func channelsPath(bot string) string {
	return "/v1/bots/" + url.PathEscape(bot) + "/channels"
}

func newChannelsCmd(c *cli) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "channels",
		Short: "List, connect and disconnect a bot's channels",
	})
	cmd.AddCommand(newChannelsListCmd(c), newChannelsConnectCmd(c), newChannelsDisconnectCmd(c))
	return cmd
}

func newChannelsListCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list BOT",
		Aliases: []string{"ls"},
		Short:   "List a bot's connected channels and the kinds it can connect",
		Args:    argsBetween(1, 1, "one bot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			var out struct {
				Channels  []string `json:"channels"`
				Available []string `json:"available"`
			}
			if err := api.do(cmd.Context(), "GET", channelsPath(args[0]), nil, &out); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if c.json {
				return c.printJSON(map[string]any{"bot": args[0], "channels": nonNil(out.Channels), "available": nonNil(out.Available)})
			}
			if len(out.Channels) == 0 {
				fmt.Fprintf(c.stdout, "%s: no channel connected\n", args[0])
			}
			for _, ch := range out.Channels {
				fmt.Fprintf(c.stdout, "%s\t/hooks/%s/%s\n", ch, args[0], ch)
			}
			fmt.Fprintf(c.stdout, "available: %s\n", strings.Join(out.Available, ", "))
			return nil
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

func newChannelsConnectCmd(c *cli) *cobra.Command {
	var sets []string
	var file string
	cmd := &cobra.Command{
		Use:   "connect BOT KIND [--set key=value ...] [--file settings.json]",
		Short: "Connect a channel to a bot, or change its settings",
		Long: `Connect a channel of the given kind (web, telegram, slack, ...) to a bot, or
replace its settings. The settings come from --file (a JSON or YAML object of
the channel's settings) and from --set key=value, which win over the file.
"parley channels list BOT" names the kinds; docs/channels/ describes each
kind's settings. Secrets are shown as *** in the answer.`,
		Example: `  parley channels connect pizzabot telegram --set bot_token=$TELEGRAM_TOKEN --set secret_token=s3cret
  parley channels connect pizzabot slack --file slack.json`,
		Args: argsBetween(2, 2, "BOT KIND"),
		RunE: func(cmd *cobra.Command, args []string) error {
			settings := map[string]any{}
			if file != "" {
				raw, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := yaml.Unmarshal(raw, &settings); err != nil {
					return fmt.Errorf("%s: want an object of settings: %w", file, err)
				}
			}
			for _, kv := range sets {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErrorf("--set takes key=value, not %q", kv)
				}
				settings[k] = v
			}
			if len(settings) == 0 {
				return usageErrorf("connect needs the channel's settings: --set key=value or --file")
			}
			return connectChannel(cmd.Context(), c, args[0], args[1], settings)
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "a setting as key=value (repeatable)")
	cmd.Flags().StringVar(&file, "file", "", "a JSON or YAML file with the settings")
	c.addJSONFlag(cmd)
	return cmd
}

func connectChannel(ctx context.Context, c *cli, bot, kind string, settings map[string]any) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	var out struct {
		Channel  string            `json:"channel"`
		Settings map[string]string `json:"settings"`
		Webhook  string            `json:"webhook"`
	}
	var raw json.RawMessage
	if err := api.do(ctx, "PUT", channelsPath(bot)+"/"+url.PathEscape(kind), settings, &raw); err != nil {
		return fmt.Errorf("%s/%s: %w", bot, kind, err)
	}
	if c.json {
		return c.printJSON(raw)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	fmt.Fprintf(c.stdout, "channel %s: connected at %s\n", out.Channel, out.Webhook)
	for _, k := range sortedKeys(out.Settings) {
		fmt.Fprintf(c.stdout, "  %s: %s\n", k, out.Settings[k])
	}
	return nil
}

func newChannelsDisconnectCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disconnect BOT CHANNEL",
		Short: "Disconnect a channel from a bot",
		Long:  `Disconnect a channel: its webhook answers 401 from now on and its settings are deleted.`,
		Args:  argsBetween(2, 2, "BOT CHANNEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.do(cmd.Context(), "DELETE", channelsPath(args[0])+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return fmt.Errorf("%s/%s: %w", args[0], args[1], err)
			}
			if c.json {
				return c.printJSON(map[string]any{"bot": args[0], "channel": args[1], "disconnected": true})
			}
			fmt.Fprintf(c.stdout, "channel %s: disconnected\n", args[1])
			return nil
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

// nonNil returns list, or an empty list for nil, so JSON shows [] rather
// than null.
func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}
