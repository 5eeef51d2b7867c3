package botdir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/apiclient"
)

// Deployed is one uploaded handler, as the management API reports it.
type Deployed struct {
	Version   int    `json:"version"`
	SHA256    string `json:"sha256"`
	Unchanged bool   `json:"unchanged"`
	// Canary is set when the version runs as a canary.
	Canary *bots.Canary `json:"canary"`
}

// DeployedIntent is an uploaded handler and its intent.
type DeployedIntent struct {
	Intent string `json:"intent"`
	Deployed
}

// DeployedNLU says what NLU data was uploaded.
type DeployedNLU struct {
	Intents int `json:"intents"`
	Slots   int `json:"slots"`
}

// Result is what a deploy did (parley deploy --json prints it).
type Result struct {
	Bot string `json:"bot"`
	// Settings is "saved", "created" (with the defaults), "kept" (bot.yaml
	// has none and the bot exists) or "unchanged" (with Previous).
	Settings  string           `json:"settings"`
	Channels  []string         `json:"channels"`
	NLU       *DeployedNLU     `json:"nlu,omitempty"`
	Intents   []DeployedIntent `json:"intents"`
	Schedules []string         `json:"schedules"`
	// Deleted are the intents deleted because their files are gone (with
	// DeployOptions.Previous).
	Deleted []string `json:"deleted,omitempty"`
	// Warnings are the server's, such as secrets the settings name that
	// are not set.
	Warnings []string `json:"warnings,omitempty"`
}

// DeployOptions configures Deploy.
type DeployOptions struct {
	// Canary, when set, uploads every changed handler as a canary for
	// that percentage (0 to 100) of new conversations.
	Canary *int
	// SkipChannels leaves the bot's channels as they are (parley test runs
	// turns without them).
	SkipChannels bool
	// Previous is the bot as this process last deployed it: what did not
	// change since is not sent again (so the classifier is not retrained),
	// and the intents whose files are gone are deleted.
	Previous *Bot
	// Out receives a line for each change; nil discards them.
	Out io.Writer
	// Step, when set, is told what is being sent before each request.
	Step func(what string)
}

// Steps counts the requests a deploy of b may make, for a progress line.
func Steps(b *Bot) int { return 1 + len(b.Channels) + len(b.Handlers) + len(b.Schedules) }

// Deploy uploads a bot through the management API: settings, channels,
// NLU data, handlers and schedules, in that order. A handler the API
// refuses is reported with its file and line. On error, the Result tells
// what was done before it.
func Deploy(ctx context.Context, c *apiclient.Client, b *Bot, opts DeployOptions) (*Result, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	step := opts.Step
	if step == nil {
		step = func(string) {}
	}
	prev := opts.Previous
	if prev != nil && prev.Name != b.Name {
		prev = nil
	}
	res := &Result{Bot: b.Name, Settings: "unchanged", Channels: []string{}, Intents: []DeployedIntent{}, Schedules: []string{}}
	query := ""
	if opts.Canary != nil {
		if p := *opts.Canary; p < 0 || p > 100 {
			return res, fmt.Errorf("a canary takes a percentage from 0 to 100, not %d", p)
		}
		query = "?canary=" + strconv.Itoa(*opts.Canary)
	}
	base := "/v1/bots/" + url.PathEscape(b.Name)
	if prev == nil || !bytes.Equal(prev.Settings, b.Settings) {
		step("bot " + b.Name)
		var err error
		if res.Settings, res.Warnings, err = putSettings(ctx, c, base, b); err != nil {
			return res, err
		}
		switch res.Settings {
		case "kept":
			fmt.Fprintf(out, "bot %s: settings left as they are (bot.yaml has no settings)\n", b.Name)
		case "created":
			fmt.Fprintf(out, "bot %s: created with the default settings\n", b.Name)
		default:
			fmt.Fprintf(out, "bot %s: settings saved\n", b.Name)
		}
	}
	if !opts.SkipChannels {
		for _, name := range slices.Sorted(maps.Keys(b.Channels)) {
			if prev != nil && reflect.DeepEqual(prev.Channels[name], b.Channels[name]) {
				continue
			}
			step("channel " + name)
			if err := c.Do(ctx, "PUT", base+"/channels/"+url.PathEscape(name), b.Channels[name], nil); err != nil {
				return res, fmt.Errorf("channel %s: %w", name, err)
			}
			res.Channels = append(res.Channels, name)
			fmt.Fprintf(out, "channel %s: connected at /hooks/%s/%s\n", name, b.Name, name)
		}
	}
	if b.NLU != nil && (prev == nil || !reflect.DeepEqual(prev.NLU, b.NLU)) {
		if err := c.Do(ctx, "PUT", base+"/nlu", b.NLU, nil); err != nil {
			return res, fmt.Errorf("nlu: %w", err)
		}
		res.NLU = &DeployedNLU{Intents: len(b.NLU.Intents), Slots: len(b.NLU.Slots)}
		fmt.Fprintf(out, "nlu: %d intents, %d slot types\n", len(b.NLU.Intents), len(b.NLU.Slots))
	}
	had := make(map[string]string)
	if prev != nil {
		for _, h := range prev.Handlers {
			had[h.Intent] = h.Source
		}
	}
	for _, h := range b.Handlers {
		src, ok := had[h.Intent]
		delete(had, h.Intent)
		if ok && src == h.Source {
			continue
		}
		step(h.Path)
		var d Deployed
		if err := c.Do(ctx, "PUT", base+"/intents/"+url.PathEscape(h.Intent)+query, h.Source, &d); err != nil {
			var ae *apiclient.Error
			if errors.As(err, &ae) && ae.Line > 0 {
				return res, fmt.Errorf("%s:%d: %s", h.Path, ae.Line, ae.Message)
			}
			return res, fmt.Errorf("%s: %w", h.Path, err)
		}
		res.Intents = append(res.Intents, DeployedIntent{Intent: h.Intent, Deployed: d})
		note := ""
		if d.Canary != nil {
			note = fmt.Sprintf(" canary at %d%%", d.Canary.Percent)
		}
		if d.Unchanged {
			note += " (unchanged)"
		}
		fmt.Fprintf(out, "intent %s: version %d%s sha256 %s\n", h.Intent, d.Version, note, d.SHA256[:min(12, len(d.SHA256))])
	}
	for _, intent := range slices.Sorted(maps.Keys(had)) {
		step("delete " + intent)
		if err := c.Do(ctx, "DELETE", base+"/intents/"+url.PathEscape(intent), nil, nil); err != nil {
			return res, fmt.Errorf("delete intent %s: %w", intent, err)
		}
		res.Deleted = append(res.Deleted, intent)
		fmt.Fprintf(out, "intent %s: deleted (its file is gone)\n", intent)
	}
	for _, name := range slices.Sorted(maps.Keys(b.Schedules)) {
		if prev != nil && reflect.DeepEqual(prev.Schedules[name], b.Schedules[name]) {
			continue
		}
		step("schedule " + name)
		if err := c.Do(ctx, "PUT", base+"/schedules/"+url.PathEscape(name), b.Schedules[name], nil); err != nil {
			return res, fmt.Errorf("schedule %s: %w", name, err)
		}
		res.Schedules = append(res.Schedules, name)
		fmt.Fprintf(out, "schedule %s: %v\n", name, b.Schedules[name]["cron"])
	}
	return res, nil
}

// putSettings creates the bot or saves its settings, and says which:
// "saved", "created" or "kept". Without a settings section in bot.yaml, a
// bot that exists keeps its settings and a new one gets the defaults. The
// warnings are the server's, such as secrets the settings name that are
// not set.
func putSettings(ctx context.Context, c *apiclient.Client, base string, b *Bot) (string, []string, error) {
	body := any(b.Settings)
	if b.Settings == nil {
		var info struct {
			MissingSecrets []string `json:"missing_secrets"`
		}
		err := c.Do(ctx, "GET", base, nil, &info)
		var ae *apiclient.Error
		if err == nil {
			return "kept", missingSecretWarnings(b.Name, info.MissingSecrets), nil
		}
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			return "", nil, fmt.Errorf("bot %s: %w", b.Name, err)
		}
		body = struct{}{}
	}
	var out struct {
		Warnings []string `json:"warnings"`
	}
	if err := c.Do(ctx, "PUT", base, body, &out); err != nil {
		return "", nil, fmt.Errorf("bot %s: %w", b.Name, err)
	}
	if b.Settings == nil {
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
