package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// cli is what every command shares: where output goes, the environment, the
// management API's address and key, and the output settings. Each command
// is built by a func newXCmd(c *cli) *cobra.Command in its own file and
// listed once in [commands].
type cli struct {
	stdout, stderr io.Writer
	// environ is the process environment as KEY=VALUE lines; env is the same
	// as a map.
	environ []string
	env     map[string]string
	// url and key are --url and --key; empty means PARLEY_URL and
	// PARLEY_ADMIN_KEY.
	url, key string
	// json is --json, on the commands that print data.
	json bool
	// isTerminal reports whether w is a terminal (progress is shown only
	// on one); tests replace it.
	isTerminal func(w io.Writer) bool
}

// commands are parley's commands (help lists them by name). Adding a
// command is adding its constructor here.
func commands(c *cli) []*cobra.Command {
	return []*cobra.Command{
		newServeCmd(c),
		newDeployCmd(c),
		newInvokeCmd(c),
		newCanaryCmd(c),
		newVersionsCmd(c),
		newRollbackCmd(c),
		newChannelsCmd(c),
		newSchedulesCmd(c),
		newUsersCmd(c),
		newLogsCmd(c),
		newAnalyticsCmd(c),
		newSecretCmd(c),
		newNLUCmd(c),
		newTestCmd(c),
		newDevCmd(c),
		newVersionCmd(c),
	}
}

// newRootCmd returns the parley command with every command under it.
func newRootCmd(c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:   "parley",
		Short: "Parley: serverless functions for conversations",
		Long: `Parley: serverless functions for conversations.

serve runs the server; it reads its configuration from the environment (see
docs/configuration.md: PARLEY_ADDR, REDIS_URL, PARLEY_DATA_DIR, PARLEY_ADMIN_KEY, ...).
The other commands talk to a running server's management API at --url (default
$PARLEY_URL, else http://localhost:8080) with --key (default $PARLEY_ADMIN_KEY).`,
		Version:       buildVersion().Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a command, or with one parley does not know, it is a usage error.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			return usageErrorf("a command is needed")
		},
	}
	root.PersistentFlags().StringVar(&c.url, "url", "", "the server's address (default $PARLEY_URL, else http://localhost:8080)")
	root.PersistentFlags().StringVar(&c.key, "key", "", "the admin key (default $PARLEY_ADMIN_KEY)")
	root.SetVersionTemplate("parley {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(commands(c)...)
	return root
}

// run runs parley with args and returns the exit code: 0, 1 when the
// command failed, 2 for a usage error (unknown command or flag, wrong
// arguments).
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	return execute(ctx, newCLI(environ, stdout, stderr), args)
}

// execute runs the command line args with c and returns the exit code.
func execute(ctx context.Context, c *cli, args []string) int {
	stdout, stderr := c.stdout, c.stderr
	root := newRootCmd(c)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	name := strings.TrimPrefix(cmd.CommandPath(), "parley ")
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "parley %s: %v\n", name, ee.err)
		}
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %v\n\n%s", cmd.CommandPath(), err, cmd.UsageString())
		return 2
	}
	if name == "" || name == "parley" {
		fmt.Fprintf(stderr, "parley: %v\n", err)
	} else {
		fmt.Fprintf(stderr, "parley %s: %v\n", name, err)
	}
	return 1
}

// newCLI returns the shared state of one run.
func newCLI(environ []string, stdout, stderr io.Writer) *cli {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return &cli{stdout: stdout, stderr: stderr, environ: environ, env: env, isTerminal: isTerminal}
}

// usageError is a command line parley cannot run; it exits with 2 and the
// command's usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError ends parley with an exit code of its own, for a command that
// has more to say than success or failure (parley test: 1 when a test
// failed, 2 when the tests could not run). err is printed like any
// failure; nil prints nothing, the command having reported already.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// argsBetween accepts from min to max arguments (max < 0: no limit) and
// answers others with a usage error that says what the command takes.
func argsBetween(minimum, maximum int, takes string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < minimum || (maximum >= 0 && len(args) > maximum) {
			return usageErrorf("%s takes %s", cmd.Name(), takes)
		}
		return nil
	}
}

// group makes cmd a command that only holds subcommands: run alone or with
// an unknown subcommand it is a usage error naming them.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		if len(args) > 0 {
			return usageErrorf("unknown subcommand %q (known: %s)", args[0], strings.Join(names, ", "))
		}
		return usageErrorf("%s takes a subcommand: %s", cmd.Name(), strings.Join(names, ", "))
	}
	return cmd
}

// addJSONFlag gives cmd the --json flag: print the data as JSON instead of
// text.
func (c *cli) addJSONFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.json, "json", false, "print JSON instead of text")
}

// printJSON writes v to stdout as indented JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// textf writes a line of text output, unless the output is JSON.
func (c *cli) textf(format string, args ...any) {
	if !c.json {
		fmt.Fprintf(c.stdout, format, args...)
	}
}

// client returns the management API's client, from --url and --key or the
// environment.
func (c *cli) client() (*client, error) {
	return newClient(firstNonEmpty(c.url, c.env["PARLEY_URL"], "http://localhost:8080"),
		firstNonEmpty(c.key, c.env["PARLEY_ADMIN_KEY"]))
}

// flagSet reports whether the flag name was given on cmd's command line.
func flagSet(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	return f != nil && f.Changed
}
