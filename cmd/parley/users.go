package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newUsersCmd(c *cli) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "users",
		Short: "Act on what Parley keeps about a bot's users",
	})
	cmd.AddCommand(newUsersEraseCmd(c))
	return cmd
}

// erasure is the receipt of DELETE /v1/bots/{bot}/users/{user}.
type erasure struct {
	Bot           string `json:"bot"`
	User          string `json:"user"`
	Conversations []struct {
		Channel      string `json:"channel"`
		Conversation string `json:"conversation"`
	} `json:"conversations"`
	Removed map[string]int `json:"removed"`
}

func newUsersEraseCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "erase BOT USER",
		Short: "Erase everything Parley keeps about a user of a bot",
		Long: `Erase everything Parley keeps about a user of a bot: the user's conversations
(sessions, histories, transcripts, records), fallback utterances, invocation
logs, parked messages and dead letters, and print the receipt with every kind
counted. USER is the id as the platform gives it. See docs/privacy.md.`,
		Example: `  parley users erase pizzabot 123456789
  parley users erase pizzabot alice --json > receipt.json`,
		Args: argsBetween(2, 2, "BOT USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			path := "/v1/bots/" + url.PathEscape(args[0]) + "/users/" + url.PathEscape(args[1])
			if err := api.do(cmd.Context(), "DELETE", path, nil, &raw); err != nil {
				return fmt.Errorf("%s: user %s: %w", args[0], args[1], err)
			}
			if c.json {
				return c.printJSON(raw)
			}
			var out erasure
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("decode the receipt: %w", err)
			}
			fmt.Fprintf(c.stdout, "user %s of %s erased: %d conversations\n", out.User, out.Bot, len(out.Conversations))
			for _, cv := range out.Conversations {
				fmt.Fprintf(c.stdout, "  %s %s\n", cv.Channel, cv.Conversation)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			for _, k := range sortedKeys(out.Removed) {
				fmt.Fprintf(w, "  %d\t %s\n", out.Removed[k], k)
			}
			return w.Flush()
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}
