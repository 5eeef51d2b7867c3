package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/parleyhq/parley/internal/scheduler"
)

// schedulesPath is the API path of a bot's schedules.
func schedulesPath(bot string) string {
	return "/v1/bots/" + url.PathEscape(bot) + "/schedules"
}

func newSchedulesCmd(c *cli) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "schedules",
		Aliases: []string{"schedule"},
		Short:   "List, create, change and delete a bot's cron schedules",
		Long:    `List, create, change and delete a bot's cron schedules (see docs/schedules.md).`,
	})
	cmd.AddCommand(newSchedulesListCmd(c), newSchedulesSetCmd(c), newSchedulesDeleteCmd(c))
	return cmd
}

func newSchedulesListCmd(c *cli) *cobra.Command {
	var runs bool
	cmd := &cobra.Command{
		Use:     "list BOT",
		Aliases: []string{"ls"},
		Short:   "List a bot's schedules with their next run",
		Args:    argsBetween(1, 1, "one bot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := api.do(cmd.Context(), "GET", schedulesPath(args[0]), nil, &raw); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if c.json {
				return c.printJSON(raw)
			}
			var out struct {
				Schedules map[string]scheduler.Schedule `json:"schedules"`
				Runs      []scheduler.RunRecord         `json:"runs"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("decode the answer: %w", err)
			}
			if len(out.Schedules) == 0 {
				fmt.Fprintf(c.stdout, "%s: no schedules\n", args[0])
			} else {
				w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tCRON\tTIMEZONE\tINTENT\tTARGETS\tNEXT RUN")
				for _, name := range sortedKeys(out.Schedules) {
					s := out.Schedules[name]
					next := "paused"
					if !s.Disabled {
						next = formatTime(s.NextRun)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", name, s.Cron, orDash(s.Timezone), s.Intent, len(s.Targets), next)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if runs && len(out.Runs) > 0 {
				fmt.Fprintln(c.stdout, "\nrecent runs")
				w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				for _, r := range out.Runs {
					fmt.Fprintf(w, "%s\t%s\t%s\n", formatTime(r.Fire), r.Schedule, runSummary(r))
				}
				return w.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&runs, "runs", false, "also list the recent runs")
	c.addJSONFlag(cmd)
	return cmd
}

// runSummary describes a schedule run in a few words.
func runSummary(r scheduler.RunRecord) string {
	var parts []string
	switch {
	case r.Skipped:
		parts = append(parts, "skipped")
	case r.Late:
		parts = append(parts, "late")
	}
	parts = append(parts, fmt.Sprintf("%d targets, %d failed", r.Targets, r.Failed))
	if r.Error != "" {
		parts = append(parts, r.Error)
	}
	return strings.Join(parts, ", ")
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// scheduleFlags are the fields of schedules set.
type scheduleFlags struct {
	file, cron, timezone, intent, missed string
	targets                              []string
	disabled, enabled                    bool
}

func newSchedulesSetCmd(c *cli) *cobra.Command {
	var f scheduleFlags
	cmd := &cobra.Command{
		Use:     "set BOT NAME [--file schedule.yaml] [--cron EXPR --intent INTENT ...]",
		Aliases: []string{"create", "update"},
		Short:   "Create or replace a schedule, from a file or flags",
		Long: `Create a schedule or replace it as a whole. Its fields come from --file (JSON
or YAML: cron, timezone, intent, missed, targets, disabled, as in bot.yaml's
schedules section) and from the flags, which win over the file. A target is
CHANNEL:CONVERSATION or CHANNEL:CONVERSATION:USER.`,
		Example: `  parley schedules set pizzabot morning --cron "30 8 * * MON-FRI" --timezone Europe/Berlin --intent Remind
  parley schedules set pizzabot morning --file morning.yaml --disabled
  parley schedules set pizzabot promo --cron @daily --intent Promo --target telegram:123456789`,
		Args: argsBetween(2, 2, "BOT NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := f.schedule(cmd)
			if err != nil {
				return err
			}
			return putSchedule(cmd.Context(), c, args[0], args[1], sc)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "a JSON or YAML file with the schedule")
	fl.StringVar(&f.cron, "cron", "", `the cron expression: five fields or @hourly, @daily, @every 10m`)
	fl.StringVar(&f.timezone, "timezone", "", "the expression's IANA time zone (default UTC)")
	fl.StringVar(&f.intent, "intent", "", "the handler to run")
	fl.StringVar(&f.missed, "missed", "", "run_late or skip: what to do with a fire time missed while down")
	fl.StringArrayVar(&f.targets, "target", nil, "a conversation to run in, CHANNEL:CONVERSATION[:USER] (repeatable)")
	fl.BoolVar(&f.disabled, "disabled", false, "pause the schedule")
	fl.BoolVar(&f.enabled, "enabled", false, "resume a paused schedule (with --file)")
	cmd.MarkFlagsMutuallyExclusive("disabled", "enabled")
	c.addJSONFlag(cmd)
	return cmd
}

// schedule builds the schedule from the file and the flags.
func (f *scheduleFlags) schedule(cmd *cobra.Command) (*scheduler.Schedule, error) {
	sc := &scheduler.Schedule{}
	if f.file != "" {
		raw, err := os.ReadFile(f.file)
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
		if err := remarshal(v, sc); err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
	}
	set := func(name string, dst *string, v string) {
		if flagSet(cmd, name) {
			*dst = v
		}
	}
	set("cron", &sc.Cron, f.cron)
	set("timezone", &sc.Timezone, f.timezone)
	set("intent", &sc.Intent, f.intent)
	set("missed", &sc.Missed, f.missed)
	if flagSet(cmd, "target") {
		sc.Targets = nil
		for _, t := range f.targets {
			parts := strings.SplitN(t, ":", 3)
			if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
				return nil, usageErrorf("--target takes CHANNEL:CONVERSATION[:USER], not %q", t)
			}
			tg := scheduler.Target{Channel: parts[0], Conversation: parts[1]}
			if len(parts) == 3 {
				tg.User = parts[2]
			}
			sc.Targets = append(sc.Targets, tg)
		}
	}
	if flagSet(cmd, "disabled") {
		sc.Disabled = f.disabled
	}
	if flagSet(cmd, "enabled") {
		sc.Disabled = !f.enabled
	}
	if sc.Cron == "" || sc.Intent == "" {
		return nil, usageErrorf("a schedule needs a cron expression and an intent (--cron and --intent, or --file)")
	}
	sc.Created, sc.NextRun = time.Time{}, time.Time{}
	return sc, nil
}

func putSchedule(ctx context.Context, c *cli, bot, name string, sc *scheduler.Schedule) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	// The API takes the schedule's own fields, not the times it adds.
	body := map[string]any{"cron": sc.Cron, "intent": sc.Intent}
	if sc.Timezone != "" {
		body["timezone"] = sc.Timezone
	}
	if sc.Missed != "" {
		body["missed"] = sc.Missed
	}
	if len(sc.Targets) > 0 {
		body["targets"] = sc.Targets
	}
	if sc.Disabled {
		body["disabled"] = true
	}
	var raw json.RawMessage
	if err := api.do(ctx, "PUT", schedulesPath(bot)+"/"+url.PathEscape(name), body, &raw); err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	if c.json {
		return c.printJSON(raw)
	}
	var out struct {
		Schedule scheduler.Schedule `json:"schedule"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	if out.Schedule.Disabled {
		fmt.Fprintf(c.stdout, "schedule %s: %s, paused\n", name, out.Schedule.Cron)
	} else {
		fmt.Fprintf(c.stdout, "schedule %s: %s, next run %s\n", name, out.Schedule.Cron, formatTime(out.Schedule.NextRun))
	}
	return nil
}

func newSchedulesDeleteCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete BOT NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a schedule",
		Args:    argsBetween(2, 2, "BOT NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if err := api.do(cmd.Context(), "DELETE", schedulesPath(args[0])+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return fmt.Errorf("schedule %s: %w", args[1], err)
			}
			if c.json {
				return c.printJSON(map[string]any{"bot": args[0], "schedule": args[1], "deleted": true})
			}
			fmt.Fprintf(c.stdout, "schedule %s: deleted\n", args[1])
			return nil
		},
	}
	c.addJSONFlag(cmd)
	return cmd
}
