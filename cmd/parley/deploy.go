package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/sandbox"
)

// deployedIntent is one uploaded handler, as deploy reports it.
type deployedIntent struct {
	Version   int    `json:"version"`
	SHA256    string `json:"sha256"`
	Unchanged bool   `json:"unchanged"`
	// Canary is set when the version runs as a canary.
	Canary *bots.Canary `json:"canary"`
}

// deployReport is what deploy did, as --json prints it.
type deployReport struct {
	Bot string `json:"bot"`
	// Settings is "saved", "created" (with the defaults) or "kept".
	Settings  string              `json:"settings"`
	Channels  []string            `json:"channels"`
	NLU       *deployedNLU        `json:"nlu,omitempty"`
	Intents   []deployedIntentRow `json:"intents"`
	Schedules []string            `json:"schedules"`
	// Warnings are the server's, such as secrets the settings name that
	// are not set.
	Warnings []string `json:"warnings,omitempty"`
}

type deployedNLU struct {
	Intents int `json:"intents"`
	Slots   int `json:"slots"`
}

type deployedIntentRow struct {
	Intent string `json:"intent"`
	deployedIntent
}

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
			query := ""
			if flagSet(cmd, "canary") {
				if canary < 0 || canary > 100 {
					return usageErrorf("--canary takes a percentage from 0 to 100, not %d", canary)
				}
				query = "?canary=" + strconv.Itoa(canary)
			}
			return deploy(cmd.Context(), c, args[0], query)
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

func deploy(ctx context.Context, c *cli, dir, query string) error {
	bot, scripts, err := readBotDir(dir, c.environ)
	if err != nil {
		return err
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	rep := deployReport{Bot: bot.Name, Channels: []string{}, Intents: []deployedIntentRow{}, Schedules: []string{}}
	prog := c.progress(1 + len(bot.Channels) + len(scripts) + len(bot.Schedules))
	defer prog.clear()
	say := func(format string, args ...any) {
		prog.clear()
		c.textf(format, args...)
	}
	base := "/v1/bots/" + url.PathEscape(bot.Name)
	prog.step("bot " + bot.Name)
	if rep.Settings, rep.Warnings, err = putSettings(ctx, api, base, bot); err != nil {
		return err
	}
	switch rep.Settings {
	case "kept":
		say("bot %s: settings left as they are (bot.yaml has no settings)\n", bot.Name)
	case "created":
		say("bot %s: created with the default settings\n", bot.Name)
	default:
		say("bot %s: settings saved\n", bot.Name)
	}
	for _, w := range rep.Warnings {
		prog.clear()
		if !c.json {
			fmt.Fprintf(c.stderr, "warning: %s\n", w)
		}
	}
	for _, name := range sortedKeys(bot.Channels) {
		prog.step("channel " + name)
		if err := api.do(ctx, "PUT", base+"/channels/"+url.PathEscape(name), bot.Channels[name], nil); err != nil {
			return fmt.Errorf("channel %s: %w", name, err)
		}
		rep.Channels = append(rep.Channels, name)
		say("channel %s: connected at /hooks/%s/%s\n", name, bot.Name, name)
	}
	if bot.NLU != nil {
		if err := api.do(ctx, "PUT", base+"/nlu", bot.NLU, nil); err != nil {
			return fmt.Errorf("nlu: %w", err)
		}
		rep.NLU = &deployedNLU{Intents: len(bot.NLU.Intents), Slots: len(bot.NLU.Slots)}
		say("nlu: %d intents, %d slot types\n", len(bot.NLU.Intents), len(bot.NLU.Slots))
	}
	for _, s := range scripts {
		prog.step(s.path)
		var out deployedIntent
		if err := api.do(ctx, "PUT", base+"/intents/"+url.PathEscape(s.intent)+query, s.source, &out); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Line > 0 {
				return fmt.Errorf("%s:%d: %s", s.path, ae.Line, ae.Message)
			}
			return fmt.Errorf("%s: %w", s.path, err)
		}
		rep.Intents = append(rep.Intents, deployedIntentRow{Intent: s.intent, deployedIntent: out})
		note := ""
		if out.Canary != nil {
			note = fmt.Sprintf(" canary at %d%%", out.Canary.Percent)
		}
		if out.Unchanged {
			note += " (unchanged)"
		}
		say("intent %s: version %d%s sha256 %s\n", s.intent, out.Version, note, out.SHA256[:min(12, len(out.SHA256))])
	}
	for _, name := range sortedKeys(bot.Schedules) {
		prog.step("schedule " + name)
		if err := api.do(ctx, "PUT", base+"/schedules/"+url.PathEscape(name), bot.Schedules[name], nil); err != nil {
			return fmt.Errorf("schedule %s: %w", name, err)
		}
		rep.Schedules = append(rep.Schedules, name)
		say("schedule %s: %v\n", name, bot.Schedules[name]["cron"])
	}
	prog.clear()
	if c.json {
		return c.printJSON(rep)
	}
	return nil
}

// putSettings creates the bot or saves its settings, and says which:
// "saved", "created" or "kept", with the server's warnings (secrets the
// settings name that are not set). Without a settings section in bot.yaml,
// a bot that exists keeps its settings and a new one gets the defaults.
func putSettings(ctx context.Context, api *client, base string, bot *botFile) (string, []string, error) {
	body := any(bot.Settings)
	if bot.Settings == nil {
		var info struct {
			MissingSecrets []string `json:"missing_secrets"`
		}
		err := api.do(ctx, "GET", base, nil, &info)
		var ae *apiError
		if err == nil {
			return "kept", missingSecretWarnings(bot.Name, info.MissingSecrets), nil
		}
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			return "", nil, fmt.Errorf("bot %s: %w", bot.Name, err)
		}
		body = struct{}{}
	}
	var out struct {
		Warnings []string `json:"warnings"`
	}
	if err := api.do(ctx, "PUT", base, body, &out); err != nil {
		return "", nil, fmt.Errorf("bot %s: %w", bot.Name, err)
	}
	if bot.Settings == nil {
		return "created", out.Warnings, nil
	}
	return "saved", out.Warnings, nil
}

// missingSecretWarnings words the secrets a kept bot's settings name that
// are not set, as the server words them when settings are saved.
func missingSecretWarnings(bot string, names []string) []string {
	var out []string
	for _, name := range names {
		out = append(out, fmt.Sprintf("secret %s is not set: handlers get nil from secret(%q) until it is "+
			"(parley secret set %s %s)", name, name, bot, name))
	}
	return out
}

// readBotFile reads and checks a bot.yaml. With expand false, ${VAR}
// references in secret channel settings are left as they are, for readers
// that do not upload the channels.
func readBotFile(path string, environ []string, expand bool) (*botFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bot file: %w", err)
	}
	p := &botFileParser{path: path, env: make(map[string]string), secrets: app.ChannelSecrets(), keepVars: !expand}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			p.env[k] = v
		}
	}
	return p.parse(raw)
}

type script struct {
	intent, path, source string
}

// readBotDir reads and checks a bot directory before anything is uploaded:
// every script must compile, so a broken file fails the deploy up front with
// its file and line.
func readBotDir(dir string, environ []string) (*botFile, []script, error) {
	bot, err := readBotFile(filepath.Join(dir, "bot.yaml"), environ, true)
	if err != nil {
		return nil, nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "intents", "*.lua"))
	if err != nil {
		return nil, nil, err
	}
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("no handlers: %s has no *.lua files", filepath.Join(dir, "intents"))
	}
	sort.Strings(paths)
	var scripts []script
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		intent := strings.TrimSuffix(filepath.Base(p), ".lua")
		if err := bots.ValidateIntentName(intent); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		if _, err := sandbox.Compile(intent+".lua", string(src)); err != nil {
			var se *sandbox.ScriptError
			if errors.As(err, &se) && se.Line > 0 {
				return nil, nil, fmt.Errorf("%s:%d: %s", p, se.Line, se.Message)
			}
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		scripts = append(scripts, script{intent: intent, path: p, source: string(src)})
	}
	return bot, scripts, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
