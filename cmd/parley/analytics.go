package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// analyticsStats is the part of the analytics answer the table shows.
type analyticsStats struct {
	T                    *time.Time        `json:"t"`
	Group                map[string]string `json:"group"`
	Turns                int64             `json:"turns"`
	Conversations        int64             `json:"conversations"`
	Users                *int64            `json:"users"`
	NewUsers             int64             `json:"new_users"`
	FallbackRate         float64           `json:"fallback_rate"`
	ErrorRate            float64           `json:"error_rate"`
	TurnsPerConversation float64           `json:"turns_per_conversation"`
	Rejected             int64             `json:"rejected"`
	LatencyMS            struct {
		P50 float64 `json:"p50"`
		P95 float64 `json:"p95"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
}

type analyticsReport struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Step    string           `json:"step"`
	GroupBy []string         `json:"group_by"`
	Totals  analyticsStats   `json:"totals"`
	Groups  []analyticsStats `json:"groups"`
	Series  []analyticsStats `json:"series"`
}

type fallbackReport struct {
	Utterances []struct {
		Text  string `json:"text"`
		Count int64  `json:"count"`
	} `json:"utterances"`
}

// analyticsOptions are analytics' flags.
type analyticsOptions struct {
	from, to, by, step, channel, intent, outcome, source string
	series                                               bool
	fallbacks                                            int
}

func newAnalyticsCmd(c *cli) *cobra.Command {
	var o analyticsOptions
	cmd := &cobra.Command{
		Use:   "analytics BOT",
		Short: "Print a bot's turns, users, fallback and error rates and latency",
		Long: `Print a bot's analytics as tables: totals, one line per group with --by, the
time series with --series, and the most frequent unmatched messages with
--fallbacks N. Times are RFC 3339 or relative to now (-24h, -7d).`,
		Example: `  parley analytics pizzabot --from -7d --by intent,channel
  parley analytics pizzabot --series --step hour --fallbacks 10`,
		Args: argsBetween(1, 1, "one bot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return analytics(cmd.Context(), c, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "start of the range (default -24h)")
	f.StringVar(&o.to, "to", "", "end of the range (default now)")
	f.StringVar(&o.by, "by", "", "group by these dimensions, comma-separated: intent, channel, outcome, source")
	f.StringVar(&o.step, "step", "", "the series' step: minute, hour or day (default: from the range)")
	f.StringVar(&o.channel, "channel", "", "only this channel's turns")
	f.StringVar(&o.intent, "intent", "", "only this intent's turns")
	f.StringVar(&o.outcome, "outcome", "", "only turns with this outcome")
	f.StringVar(&o.source, "source", "", "only turns from this source")
	f.BoolVar(&o.series, "series", false, "print the time series")
	f.IntVar(&o.fallbacks, "fallbacks", 0, "print the N most frequent unmatched messages")
	c.addJSONFlag(cmd)
	return cmd
}

// analytics prints a bot's analytics.
func analytics(ctx context.Context, c *cli, bot string, o analyticsOptions) error {
	api, err := c.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	for param, v := range map[string]string{"from": o.from, "to": o.to, "group_by": o.by, "step": o.step,
		"channel": o.channel, "intent": o.intent, "outcome": o.outcome, "source": o.source} {
		if v != "" {
			q.Set(param, v)
		}
	}
	var raw json.RawMessage
	if err := api.do(ctx, "GET", "/v1/bots/"+url.PathEscape(bot)+"/analytics?"+q.Encode(), nil, &raw); err != nil {
		return err
	}
	var fallbacks json.RawMessage
	if o.fallbacks > 0 {
		fq := url.Values{"limit": {strconv.Itoa(o.fallbacks)}}
		for k, v := range map[string]string{"from": o.from, "to": o.to} {
			if v != "" {
				fq.Set(k, v)
			}
		}
		if err := api.do(ctx, "GET", "/v1/bots/"+url.PathEscape(bot)+"/analytics/fallbacks?"+fq.Encode(), nil, &fallbacks); err != nil {
			return err
		}
	}
	if c.json {
		out := map[string]json.RawMessage{"analytics": raw}
		if fallbacks != nil {
			out["fallbacks"] = fallbacks
		}
		return c.printJSON(out)
	}
	var rep analyticsReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("decode the analytics: %w", err)
	}
	stdout := c.stdout
	fmt.Fprintf(stdout, "%s, %s to %s UTC, by %s\n\n", bot, rep.From.UTC().Format("2006-01-02 15:04"),
		rep.To.UTC().Format("2006-01-02 15:04"), rep.Step)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "turns\tconversations\tusers\tnew users\tfallback\terrors\tp50 ms\tp95 ms\tp99 ms\tturns/conv\trejected\t"
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, statsRow(rep.Totals))
	w.Flush()

	if len(rep.Groups) > 0 {
		fmt.Fprintf(stdout, "\nby %s\n", strings.Join(rep.GroupBy, ", "))
		w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, strings.Join(rep.GroupBy, "\t")+"\t"+header)
		for _, g := range rep.Groups {
			fmt.Fprintln(w, groupCells(rep.GroupBy, g.Group)+statsRow(g))
		}
		w.Flush()
	}
	if o.series {
		fmt.Fprintln(stdout, "\nseries")
		w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "time\t"+strings.Join(append(rep.GroupBy, ""), "\t")+header)
		for _, p := range rep.Series {
			fmt.Fprintln(w, p.T.UTC().Format("01-02 15:04")+"\t"+groupCells(rep.GroupBy, p.Group)+statsRow(p))
		}
		w.Flush()
	}
	if fallbacks != nil {
		var fb fallbackReport
		if err := json.Unmarshal(fallbacks, &fb); err != nil {
			return fmt.Errorf("decode the fallbacks: %w", err)
		}
		fmt.Fprintln(stdout, "\nmost frequent unmatched messages")
		w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, u := range fb.Utterances {
			fmt.Fprintf(w, "%d\t%s\n", u.Count, u.Text)
		}
		w.Flush()
	}
	return nil
}

func statsRow(s analyticsStats) string {
	users := "-"
	if s.Users != nil {
		users = fmt.Sprint(*s.Users)
	}
	return fmt.Sprintf("%d\t%d\t%s\t%d\t%.1f%%\t%.1f%%\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t", s.Turns, s.Conversations, users,
		s.NewUsers, 100*s.FallbackRate, 100*s.ErrorRate, s.LatencyMS.P50, s.LatencyMS.P95, s.LatencyMS.P99,
		s.TurnsPerConversation, s.Rejected)
}

func groupCells(dims []string, group map[string]string) string {
	var b strings.Builder
	keys := append([]string(nil), dims...)
	if len(keys) == 0 {
		for k := range group {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	for _, d := range keys {
		b.WriteString(group[d] + "\t")
	}
	return b.String()
}
