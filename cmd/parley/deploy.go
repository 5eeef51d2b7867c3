package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/sandbox"
	"go.yaml.in/yaml/v3"
)

// botFile is bot.yaml: a bot's name, settings, channels and NLU data.
// Channel setting values may name environment variables as ${VAR}, so
// secrets stay out of the repository.
type botFile struct {
	Name     string                       `yaml:"name"`
	Settings bots.Settings                `yaml:"settings"`
	Channels map[string]map[string]string `yaml:"channels"`
	// NLU is the classifier's training data: in bot.yaml either the API's
	// shape (intents, slots, threshold) or, for short, just the intents'
	// examples by intent name.
	NLU *bots.NLU `yaml:"nlu"`
	// Schedules are cron triggers by name, in the API's JSON shape.
	Schedules map[string]map[string]any `yaml:"schedules"`
}

// The yaml tags of bots.Settings are its json names.
func (b *botFile) UnmarshalYAML(node *yaml.Node) error {
	var raw struct {
		Name      string                       `yaml:"name"`
		Settings  map[string]any               `yaml:"settings"`
		Channels  map[string]map[string]string `yaml:"channels"`
		NLU       map[string]any               `yaml:"nlu"`
		Schedules map[string]map[string]any    `yaml:"schedules"`
	}
	if err := node.Decode(&raw); err != nil {
		return err
	}
	b.Name, b.Channels, b.Schedules = raw.Name, raw.Channels, raw.Schedules
	if raw.NLU != nil {
		b.NLU = &bots.NLU{}
		var err error
		if _, full := raw.NLU["intents"]; full {
			err = remarshal(raw.NLU, b.NLU)
		} else {
			err = remarshal(raw.NLU, &b.NLU.Intents)
		}
		if err != nil {
			return fmt.Errorf("nlu: %w", err)
		}
	}
	return remarshal(raw.Settings, &b.Settings)
}

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
	if err := c.do("PUT", base, bot.Settings, nil); err != nil {
		return fmt.Errorf("bot %s: %w", bot.Name, err)
	}
	fmt.Fprintf(stdout, "bot %s: settings saved\n", bot.Name)
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
	var bot botFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&bot); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, "bot.yaml"), err)
	}
	if err := bots.ValidateBotName(bot.Name); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, "bot.yaml"), err)
	}
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for ch, settings := range bot.Channels {
		for k, v := range settings {
			var missing []string
			settings[k] = os.Expand(v, func(name string) string {
				val, ok := env[name]
				if !ok {
					missing = append(missing, name)
				}
				return val
			})
			if len(missing) > 0 {
				return nil, nil, fmt.Errorf("channel %s setting %s names unset environment variable(s) %v", ch, k, missing)
			}
		}
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
	return &bot, scripts, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
