package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

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

func deploy(args, environ []string, stdout io.Writer) error {
	flags, rest, err := parseFlags(args, "canary")
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"deploy takes one bot directory"}
	}
	// --canary P uploads every changed handler as a canary for P% of new conversations.
	query := ""
	if raw, ok := flags["canary"]; ok {
		p, err := strconv.Atoi(strings.TrimSuffix(raw, "%"))
		if err != nil || p < 0 || p > 100 {
			return usageError{fmt.Sprintf("--canary takes a percentage from 0 to 100, not %q", raw)}
		}
		query = "?canary=" + strconv.Itoa(p)
	}
	dir := rest[0]
	bot, scripts, err := readBotDir(dir, environ)
	if err != nil {
		return err
	}
	c, err := newClient(flags, environ)
	if err != nil {
		return err
	}
	base := "/v1/bots/" + url.PathEscape(bot.Name)
	if err := putSettings(c, base, bot, stdout); err != nil {
		return err
	}
	for _, name := range sortedKeys(bot.Channels) {
		if err := c.do("PUT", base+"/channels/"+url.PathEscape(name), bot.Channels[name], nil); err != nil {
			return fmt.Errorf("channel %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "channel %s: connected at /hooks/%s/%s\n", name, bot.Name, name)
	}
	if bot.NLU != nil {
		if err := c.do("PUT", base+"/nlu", bot.NLU, nil); err != nil {
			return fmt.Errorf("nlu: %w", err)
		}
		fmt.Fprintf(stdout, "nlu: %d intents, %d slot types\n", len(bot.NLU.Intents), len(bot.NLU.Slots))
	}
	for _, s := range scripts {
		var out deployedIntent
		if err := c.do("PUT", base+"/intents/"+url.PathEscape(s.intent)+query, s.source, &out); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Line > 0 {
				return fmt.Errorf("%s:%d: %s", s.path, ae.Line, ae.Message)
			}
			return fmt.Errorf("%s: %w", s.path, err)
		}
		note := ""
		if out.Canary != nil {
			note = fmt.Sprintf(" canary at %d%%", out.Canary.Percent)
		}
		if out.Unchanged {
			note += " (unchanged)"
		}
		fmt.Fprintf(stdout, "intent %s: version %d%s sha256 %s\n", s.intent, out.Version, note, out.SHA256[:12])
	}
	for _, name := range sortedKeys(bot.Schedules) {
		if err := c.do("PUT", base+"/schedules/"+url.PathEscape(name), bot.Schedules[name], nil); err != nil {
			return fmt.Errorf("schedule %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "schedule %s: %v\n", name, bot.Schedules[name]["cron"])
	}
	return nil
}

// putSettings creates the bot or saves its settings. Without a settings
// section in bot.yaml, a bot that exists keeps its settings and a new one
// gets the defaults.
func putSettings(c *client, base string, bot *botFile, stdout io.Writer) error {
	body := any(bot.Settings)
	if bot.Settings == nil {
		err := c.do("GET", base, nil, nil)
		var ae *apiError
		if err == nil {
			fmt.Fprintf(stdout, "bot %s: settings left as they are (bot.yaml has no settings)\n", bot.Name)
			return nil
		}
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			return fmt.Errorf("bot %s: %w", bot.Name, err)
		}
		body = struct{}{}
	}
	if err := c.do("PUT", base, body, nil); err != nil {
		return fmt.Errorf("bot %s: %w", bot.Name, err)
	}
	if bot.Settings == nil {
		fmt.Fprintf(stdout, "bot %s: created with the default settings\n", bot.Name)
	} else {
		fmt.Fprintf(stdout, "bot %s: settings saved\n", bot.Name)
	}
	return nil
}

type script struct {
	intent, path, source string
}

// readBotDir reads and checks a bot directory before anything is uploaded:
// every script must compile, so a broken file fails the deploy up front with
// its file and line.
func readBotDir(dir string, environ []string) (*botFile, []script, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "bot.yaml"))
	if err != nil {
		return nil, nil, fmt.Errorf("read bot file: %w", err)
	}
	p := &botFileParser{path: filepath.Join(dir, "bot.yaml"), env: make(map[string]string), secrets: app.ChannelSecrets()}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			p.env[k] = v
		}
	}
	bot, err := p.parse(raw)
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
