package analytics

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// scaleExpect is what tools/analytics-load wrote (its -expect file).
type scaleExpect struct {
	Bot           string           `json:"bot"`
	Prefix        string           `json:"prefix"`
	From          time.Time        `json:"from"`
	To            time.Time        `json:"to"`
	Turns         int64            `json:"turns"`
	Outcomes      map[string]int64 `json:"outcomes"`
	Intents       map[string]int64 `json:"intents"`
	Channels      map[string]int64 `json:"channels"`
	Users         int64            `json:"users"`
	NewUsers      int64            `json:"new_users"`
	Conversations int64            `json:"conversations"`
}

// BenchmarkScaleQuery queries a bot that tools/analytics-load filled with
// synthetic turns (10 million in scripts/analytics-scale.sh), after checking
// that the answer matches the loader's exact count. It runs only when
// PARLEY_SCALE_REDIS_URL and PARLEY_SCALE_EXPECT (the loader's -expect file)
// are set.
func BenchmarkScaleQuery(b *testing.B) {
	url, expectPath := os.Getenv("PARLEY_SCALE_REDIS_URL"), os.Getenv("PARLEY_SCALE_EXPECT")
	if url == "" || expectPath == "" {
		b.Skip("set PARLEY_SCALE_REDIS_URL and PARLEY_SCALE_EXPECT (see scripts/analytics-scale.sh)")
	}
	raw, err := os.ReadFile(expectPath)
	if err != nil {
		b.Fatal(err)
	}
	var exp scaleExpect
	if err := json.Unmarshal(raw, &exp); err != nil {
		b.Fatal(err)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	svc := New(rdb, Config{KeyPrefix: exp.Prefix})
	ctx := context.Background()

	// The answer matches what was loaded.
	rep, err := svc.Query(ctx, exp.Bot, Query{From: exp.From, To: exp.To, Step: Hour})
	if err != nil {
		b.Fatal(err)
	}
	tot := rep.Totals
	if tot.Turns != exp.Turns || tot.Conversations != exp.Conversations || tot.NewUsers != exp.NewUsers || len(rep.Series) != int(exp.To.Sub(exp.From)/time.Hour) {
		b.Fatalf("query answers %d turns, %d conversations, %d new users in %d buckets; loaded %d, %d, %d", tot.Turns,
			tot.Conversations, tot.NewUsers, len(rep.Series), exp.Turns, exp.Conversations, exp.NewUsers)
	}
	got := map[string]int64{OutcomeHandled: tot.Outcomes.Handled, OutcomeFallback: tot.Outcomes.Fallback,
		OutcomeError: tot.Outcomes.Error, OutcomeTimeout: tot.Outcomes.Timeout}
	for o, n := range exp.Outcomes {
		if got[o] != n {
			b.Fatalf("outcome %s: %d, loaded %d", o, got[o], n)
		}
	}
	if d := math.Abs(float64(*tot.Users-exp.Users)) / float64(exp.Users); d > 0.02 {
		b.Fatalf("users %d, loaded %d (%.2f%% off)", *tot.Users, exp.Users, 100*d)
	}
	b.Logf("30 days hourly: %d turns (exact), %d users (loaded %d, %.2f%% off), p50/p95/p99 %.1f/%.1f/%.1f ms",
		tot.Turns, *tot.Users, exp.Users, 100*math.Abs(float64(*tot.Users-exp.Users))/float64(exp.Users),
		tot.LatencyMS.P50, tot.LatencyMS.P95, tot.LatencyMS.P99)

	for _, c := range []struct {
		name string
		q    Query
	}{
		{"30d-hour", Query{From: exp.From, To: exp.To, Step: Hour}},
		{"30d-hour-by-intent", Query{From: exp.From, To: exp.To, Step: Hour, GroupBy: []string{DimIntent}}},
		{"30d-hour-by-channel", Query{From: exp.From, To: exp.To, Step: Hour, GroupBy: []string{DimChannel}}},
		{"30d-hour-channel=web", Query{From: exp.From, To: exp.To, Step: Hour, Filters: map[string]string{DimChannel: "web"}}},
		{"30d-hour-by-channel,intent", Query{From: exp.From, To: exp.To, Step: Hour, GroupBy: []string{DimChannel, DimIntent}}},
		{"30d-day", Query{From: exp.From, To: exp.To, Step: Day}},
		{"24h-minute", Query{From: exp.To.Add(-24 * time.Hour), To: exp.To, Step: Minute}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := svc.Query(ctx, exp.Bot, c.q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
		})
	}
}
