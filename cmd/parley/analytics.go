package main

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
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

// analyticsCommand prints a bot's analytics as tables: totals, one line per
// group with --by, the time series with --series, and the most frequent
// unmatched utterances with --fallbacks N.
func analyticsCommand(args, environ []string, stdout io.Writer) error {
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == "--series" {
			args[i] = "--series=true"
		}
	}
	flags, rest, err := parseFlags(args, "from", "to", "by", "step", "channel", "intent", "outcome", "source", "series", "fallbacks")
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"analytics takes one bot"}
	}
	c, err := newClient(flags, environ)
	if err != nil {
		return err
	}
	bot := rest[0]
	q := url.Values{}
	for flag, param := range map[string]string{"from": "from", "to": "to", "by": "group_by", "step": "step",
		"channel": "channel", "intent": "intent", "outcome": "outcome", "source": "source"} {
		if v, ok := flags[flag]; ok {
			q.Set(param, v)
		}
	}
	var rep analyticsReport
	if err := c.do("GET", "/v1/bots/"+url.PathEscape(bot)+"/analytics?"+q.Encode(), nil, &rep); err != nil {
		return err
	}
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
	if flags["series"] != "" && flags["series"] != "false" {
		fmt.Fprintln(stdout, "\nseries")
		w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "time\t"+strings.Join(append(rep.GroupBy, ""), "\t")+header)
		for _, p := range rep.Series {
			fmt.Fprintln(w, p.T.UTC().Format("01-02 15:04")+"\t"+groupCells(rep.GroupBy, p.Group)+statsRow(p))
		}
		w.Flush()
	}
	if n := flags["fallbacks"]; n != "" {
		fq := url.Values{"limit": {n}}
		for _, k := range []string{"from", "to"} {
			if v, ok := flags[k]; ok {
				fq.Set(k, v)
			}
		}
		var fb fallbackReport
		if err := c.do("GET", "/v1/bots/"+url.PathEscape(bot)+"/analytics/fallbacks?"+fq.Encode(), nil, &fb); err != nil {
			return err
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
