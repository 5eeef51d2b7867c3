package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

type invokeAnswer struct {
	Answer struct {
		Conversation string `json:"conversation"`
		Intent       string `json:"intent"`
		Replies      []struct {
			Text    string   `json:"text"`
			Options []string `json:"options"`
		} `json:"replies"`
		EndConversation bool `json:"end_conversation"`
	} `json:"answer"`
	Outcome string   `json:"outcome"`
	Version int      `json:"version"`
	Logs    []string `json:"logs"`
	Error   *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func newInvokeCmd(c *cli) *cobra.Command {
	var user, conversation string
	cmd := &cobra.Command{
		Use:   "invoke BOT TEXT...",
		Short: "Run one turn through a bot and print the answer",
		Long: `Run one turn through a bot, as a message from the web channel, and print the
replies, the handler's logs and which intent and version answered. The words
after BOT are the message; put them after -- when the message starts with "-".`,
		Example: `  parley invoke pizzabot "I want a pizza" --user alice
  parley invoke pizzabot --user bob -- -1 pizzas?`,
		Args: argsBetween(2, -1, "a bot and the text to send"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return invoke(cmd.Context(), c, args[0], strings.Join(args[1:], " "), user, conversation)
		},
	}
	cmd.Flags().StringVar(&user, "user", "cli-user", "the user the message is from")
	cmd.Flags().StringVar(&conversation, "conversation", "", "the conversation (default: the user's)")
	c.addJSONFlag(cmd)
	return cmd
}

func invoke(ctx context.Context, c *cli, bot, text, user, conversation string) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	body := map[string]string{"user": firstNonEmpty(user, "cli-user"), "text": text}
	if conversation != "" {
		body["conversation"] = conversation
	}
	var raw json.RawMessage
	if err := api.do(ctx, "POST", "/v1/bots/"+url.PathEscape(bot)+"/invoke", body, &raw); err != nil {
		return err
	}
	var out invokeAnswer
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	if c.json {
		if err := c.printJSON(raw); err != nil {
			return err
		}
	} else {
		printInvokeAnswer(c.stdout, &out)
	}
	if out.Error != nil {
		return fmt.Errorf("handler failed: %s", out.Error.Message)
	}
	return nil
}

func printInvokeAnswer(w io.Writer, out *invokeAnswer) {
	for _, r := range out.Answer.Replies {
		fmt.Fprintln(w, r.Text)
		if len(r.Options) > 0 {
			fmt.Fprintf(w, "  options: %s\n", strings.Join(r.Options, " | "))
		}
	}
	for _, l := range out.Logs {
		fmt.Fprintf(w, "  log: %s\n", l)
	}
	meta := fmt.Sprintf("[intent %s, version %d, %s", orDash(out.Answer.Intent), out.Version, out.Outcome)
	if out.Answer.EndConversation {
		meta += ", conversation ended"
	}
	fmt.Fprintln(w, meta+"]")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
