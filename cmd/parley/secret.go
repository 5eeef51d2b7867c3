package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/parleyhq/parley/bots"
)

// secretInfo is a secret as the API lists it: never its value.
type secretInfo struct {
	Name    string    `json:"name"`
	Updated time.Time `json:"updated"`
}

func newSecretCmd(c *cli) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "secret",
		Short: "Set, list and delete a bot's secrets",
		Long: `Set, list and delete a bot's secrets: values such as API keys that handlers use
with secret("NAME"), as an http header value. They are encrypted at rest and never
shown again, by the API or by this command.`,
	})
	cmd.AddCommand(newSecretSetCmd(c), newSecretListCmd(c), newSecretDeleteCmd(c))
	return cmd
}

func newSecretSetCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set BOT NAME",
		Short: "Store a secret, reading its value from standard input",
		Long: `Store a secret, or replace its value. The value is read from standard input,
never from the command line (where shell history and process lists would keep
it): typed at a terminal it is not echoed; piped, one trailing newline is dropped.
A name is an upper-case letter, then upper-case letters, digits or '_' (up to 64);
a value is at most 8192 bytes.`,
		Example: `  parley secret set pizzabot OPENAI_KEY
  pass show openai | parley secret set pizzabot OPENAI_KEY
  parley secret set pizzabot OPENAI_KEY < key.txt`,
		Args: argsBetween(2, 2, "BOT and NAME (the value comes from standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bots.ValidateSecretName(args[1]); err != nil {
				return usageErrorf("%v", err)
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			value, err := readSecretValue(cmd.InOrStdin(), c.stderr, args[1])
			if err != nil {
				return err
			}
			var out struct {
				Name    string `json:"name"`
				Created bool   `json:"created"`
			}
			if err := api.do(cmd.Context(), "PUT", secretPath(args[0], args[1]), map[string]string{"value": value}, &out); err != nil {
				return fmt.Errorf("%s/%s: %w", args[0], args[1], err)
			}
			if c.json {
				return c.printJSON(out)
			}
			what := "replaced"
			if out.Created {
				what = "created"
			}
			fmt.Fprintf(c.stdout, "secret %s of %s: %s\n", args[1], args[0], what)
			return nil
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

func newSecretListCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list BOT",
		Short:   "List a bot's secrets by name (never their values)",
		Example: `  parley secret list pizzabot --json`,
		Args:    argsBetween(1, 1, "one bot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return secretList(cmd.Context(), c, args[0])
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

func newSecretDeleteCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete BOT NAME",
		Short:   "Delete a secret",
		Example: `  parley secret delete pizzabot OPENAI_KEY`,
		Args:    argsBetween(2, 2, "BOT and NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.do(cmd.Context(), "DELETE", secretPath(args[0], args[1]), nil, nil); err != nil {
				return fmt.Errorf("%s/%s: %w", args[0], args[1], err)
			}
			if c.json {
				return c.printJSON(map[string]any{"bot": args[0], "name": args[1], "deleted": true})
			}
			fmt.Fprintf(c.stdout, "secret %s of %s: deleted\n", args[1], args[0])
			return nil
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}

func secretList(ctx context.Context, c *cli, bot string) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	var out struct {
		Secrets []secretInfo `json:"secrets"`
	}
	if err := api.do(ctx, "GET", "/v1/bots/"+url.PathEscape(bot)+"/secrets", nil, &out); err != nil {
		return fmt.Errorf("%s: %w", bot, err)
	}
	if c.json {
		if out.Secrets == nil {
			out.Secrets = []secretInfo{}
		}
		return c.printJSON(out)
	}
	if len(out.Secrets) == 0 {
		fmt.Fprintf(c.stdout, "%s has no secrets\n", bot)
		return nil
	}
	width := 0
	for _, s := range out.Secrets {
		width = max(width, len(s.Name))
	}
	for _, s := range out.Secrets {
		fmt.Fprintf(c.stdout, "%-*s  updated %s\n", width, s.Name, s.Updated.UTC().Format(time.RFC3339))
	}
	return nil
}

func secretPath(bot, name string) string {
	return "/v1/bots/" + url.PathEscape(bot) + "/secrets/" + url.PathEscape(name)
}

// maxSecretInput bounds what is read from standard input: more than a
// secret may hold, so that a larger value gets the server's own refusal.
const maxSecretInput = 2 * bots.MaxSecretBytes

// readSecretValue reads a secret's value from in: without echo when it is
// a terminal, else all of it but one trailing newline.
func readSecretValue(in io.Reader, prompt io.Writer, name string) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(prompt, "value of %s (not shown): ", name)
		raw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		if len(raw) == 0 {
			return "", errors.New("no value given")
		}
		return string(raw), nil
	}
	raw, err := io.ReadAll(io.LimitReader(in, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("read the value from standard input: %w", err)
	}
	if len(raw) > maxSecretInput {
		return "", fmt.Errorf("the value on standard input is larger than %d bytes (a secret holds at most %d)",
			maxSecretInput, bots.MaxSecretBytes)
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if len(raw) == 0 {
		return "", errors.New("no value on standard input: pipe it in, e.g. parley secret set BOT NAME < file")
	}
	return string(raw), nil
}
