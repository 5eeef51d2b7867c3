package metrics

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsMaxBots checks that only the first MaxBots bots get series of
// their own, and that the others are counted together.
func TestMetricsMaxBots(t *testing.T) {
	for _, tc := range []struct {
		max  int
		want []string // bot/intent pairs of parley_turns_total
	}{
		{2, []string{"a/Greet", "b/Greet", "_other/_other"}},
		{0, []string{"_other/_other"}},
		{-1, []string{"a/Greet", "b/Greet", "c/Greet", "d/Greet"}},
	} {
		reg := prometheus.NewRegistry()
		m := New(reg, Options{MaxBots: tc.max})
		for _, bot := range []string{"a", "b", "c", "a", "d", "b"} {
			m.ObserveTurn(Turn{Bot: bot, Channel: "web", Intent: "Greet", Outcome: "handled"})
			m.ObserveVMStart(bot, false)
		}
		m.WebhookRejected("d", "web", 401)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := map[string][]string{}
		total := map[string]float64{}
		for _, f := range families {
			for _, metric := range f.GetMetric() {
				var bot, intent string
				for _, l := range metric.GetLabel() {
					switch l.GetName() {
					case "bot":
						bot = l.GetValue()
					case "intent":
						intent = l.GetValue()
					}
				}
				if bot == "" {
					continue
				}
				name := f.GetName()
				if name == "parley_turns_total" {
					series[name] = append(series[name], bot+"/"+intent)
					total[name] += metric.GetCounter().GetValue()
				} else if !slices.Contains(series[name], bot) {
					series[name] = append(series[name], bot)
				}
			}
		}
		got := series["parley_turns_total"]
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("max %d: turns series %v, want %v", tc.max, got, want)
		}
		if total["parley_turns_total"] != 6 {
			t.Errorf("max %d: %v turns counted, want all 6", tc.max, total["parley_turns_total"])
		}
		// The other bot-labelled metrics use the same labels.
		bots := map[string]bool{}
		for _, p := range tc.want {
			bots[strings.Split(p, "/")[0]] = true
		}
		for _, name := range []string{"parley_sandbox_starts_total", "parley_turn_duration_seconds", "parley_webhook_rejections_total"} {
			for _, b := range series[name] {
				if !bots[b] {
					t.Errorf("max %d: %s has bot %q", tc.max, name, b)
				}
			}
		}
	}
}
