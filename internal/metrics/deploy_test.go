package metrics

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDeployFilesNameRealMetrics: every parley_* metric the Grafana
// dashboard and the alert rules under deploy/ query is one Parley exports,
// so a renamed metric cannot leave a panel or an alert silently empty.
func TestDeployFilesNameRealMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{MaxBots: -1})
	// Every metric with labels shows once it has a series.
	m.ObserveTurn(Turn{Bot: "b", Channel: "web", Intent: "I", Outcome: "handled", HandlerTime: time.Millisecond, RoutingTime: time.Millisecond})
	m.ObserveStage(StageRedis, time.Millisecond)
	m.WebhookRejected("b", "web", 401)
	m.AnalyticsDropped("store", 1)
	m.AnalyticsFlushed(1, time.Millisecond)
	m.AnalyticsFlushFailed()
	m.ObserveVMStart("b", true)
	m.DeadLettered("b")
	m.ScheduleRun("b", "ok", time.Second)
	m.ObserveHTTP("/healthz", "GET", 200, time.Millisecond)
	m.WatchQueue("analytics", func() int { return 0 })
	m.WatchSandbox(func() SandboxStats { return SandboxStats{} })
	m.WatchStore(func(context.Context) error { return nil })
	m.WatchPartitions(func(context.Context) ([]PartitionStats, error) { return []PartitionStats{{Partition: 0}}, nil })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		exported[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				exported[name+s] = true
			}
		}
	}

	var files []string
	for _, pattern := range []string{"../../deploy/grafana/dashboards/*.json", "../../deploy/prometheus/*.yml"} {
		found, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, found...)
	}
	if len(files) < 3 {
		t.Fatalf("found only %v under deploy/", files)
	}
	name := regexp.MustCompile(`\bparley_[a-z0-9_]+`)
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, n := range name.FindAllString(string(raw), -1) {
			seen++
			if !exported[n] {
				t.Errorf("%s queries %s, which Parley does not export", filepath.Base(file), n)
			}
		}
		if seen == 0 {
			t.Errorf("%s names no Parley metric", file)
		}
	}
}

// TestDeadLettersAndScheduleRunsCounted: the dead letters are counted per
// bot, and schedule runs per bot and outcome with their lateness, which the
// alert on growing dead letters and the dashboard's schedule panels read.
func TestDeadLettersAndScheduleRunsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{MaxBots: -1})
	m.DeadLettered("b")
	m.DeadLettered("b")
	m.DeadLettered("c")
	m.ScheduleRun("b", "ok", 2*time.Second)
	m.ScheduleRun("b", "error", 0)
	m.ScheduleRun("b", "ok", -time.Second) // early counts as on time
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			for _, l := range s.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case s.GetCounter() != nil:
				got[key] = s.GetCounter().GetValue()
			case s.GetHistogram() != nil:
				got[key+" count"] = float64(s.GetHistogram().GetSampleCount())
				got[key+" sum"] = s.GetHistogram().GetSampleSum()
			}
		}
	}
	for key, want := range map[string]float64{
		"parley_queue_dead_letters_total bot=b":           2,
		"parley_queue_dead_letters_total bot=c":           1,
		"parley_scheduler_runs_total bot=b outcome=ok":    2,
		"parley_scheduler_runs_total bot=b outcome=error": 1,
		"parley_scheduler_lateness_seconds count":         3,
		"parley_scheduler_lateness_seconds sum":           2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
