package config

import (
	"strings"
	"testing"
	"time"
)

func TestAnalyticsSettings(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	const day = 24 * time.Hour
	if !c.Analytics || c.AnalyticsMinuteRetention != 48*time.Hour || c.AnalyticsHourRetention != 35*day ||
		c.AnalyticsDayRetention != 400*day || c.AnalyticsFallbackRetention != 30*day || c.AnalyticsFlushInterval != time.Second ||
		c.AnalyticsBuffer != 100000 || c.TranscriptRetention != 7*day || c.TranscriptMaxTurns != 200 || c.MetricsAccess != "public" ||
		c.MetricsMaxBots != 1000 {
		t.Errorf("defaults %+v", c)
	}
	c, err = Load([]string{"PARLEY_ANALYTICS=off", "PARLEY_ANALYTICS_MINUTE_RETENTION=6h", "PARLEY_ANALYTICS_HOUR_RETENTION=10d",
		"PARLEY_TRANSCRIPT_RETENTION=0", "PARLEY_METRICS=admin", "PARLEY_ANALYTICS_FLUSH_INTERVAL=250ms",
		"PARLEY_METRICS_MAX_BOTS=0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Analytics || c.AnalyticsMinuteRetention != 6*time.Hour || c.AnalyticsHourRetention != 10*day ||
		c.TranscriptRetention != -1 || c.MetricsAccess != "admin" || c.AnalyticsFlushInterval != 250*time.Millisecond ||
		c.MetricsMaxBots != 0 {
		t.Errorf("parsed %+v", c)
	}
	_, err = Load([]string{"PARLEY_ANALYTICS=maybe", "PARLEY_ANALYTICS_DAY_RETENTION=-1d", "PARLEY_METRICS=private",
		"PARLEY_METRICS_MAX_BOTS=-5"})
	for _, want := range []string{"PARLEY_ANALYTICS must", "PARLEY_ANALYTICS_DAY_RETENTION", "PARLEY_METRICS must", "PARLEY_METRICS_MAX_BOTS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
