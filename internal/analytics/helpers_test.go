package analytics

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// testClock starts at the beginning of the current hour, so that bucket
// expiries computed from it are in the future for Redis too.
func testClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Hour)} }

type fixture struct {
	svc      *Service
	rdb      redis.UniversalClient
	sessions *sessions.Store
	clock    *clock
	prefix   string
	metrics  *metrics.Metrics
	registry *prometheus.Registry
}

// newFixture builds a Service on the real test Redis with a key prefix of
// its own; change cfg before the call through edit.
func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, testredis.Client(t), edit)
}

func newFixtureOn(t testing.TB, rdb redis.UniversalClient, edit func(*Config)) *fixture {
	t.Helper()
	prefix := testredis.Prefix(t)
	reg := prometheus.NewRegistry()
	f := &fixture{rdb: rdb, clock: testClock(), prefix: prefix, registry: reg, metrics: metrics.New(reg, metrics.Options{MaxBots: -1}),
		sessions: sessions.New(rdb, sessions.Config{KeyPrefix: prefix})}
	cfg := Config{KeyPrefix: prefix, Sessions: f.sessions, Metrics: f.metrics, Now: f.clock.Now,
		FlushInterval: time.Hour, EraseSettle: -1}
	if edit != nil {
		edit(&cfg)
	}
	f.svc = New(rdb, cfg)
	return f
}

func (f *fixture) flush(t testing.TB) {
	t.Helper()
	if err := f.svc.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) query(t testing.TB, q Query) *Report {
	t.Helper()
	r, err := f.svc.Query(context.Background(), "bot", q)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// allValues returns every key and value under the fixture's prefix, for
// checks that some text is stored nowhere.
func (f *fixture) allValues(t testing.TB) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := make(map[string]string)
	iter := f.rdb.Scan(ctx, 0, f.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var val string
		switch f.rdb.Type(ctx, key).Val() {
		case "string":
			val = f.rdb.Get(ctx, key).Val()
		case "list":
			for _, v := range f.rdb.LRange(ctx, key, 0, -1).Val() {
				val += v + "\n"
			}
		case "hash":
			for k, v := range f.rdb.HGetAll(ctx, key).Val() {
				val += k + "=" + v + "\n"
			}
		case "set":
			for _, v := range f.rdb.SMembers(ctx, key).Val() {
				val += v + "\n"
			}
		case "zset":
			for _, v := range f.rdb.ZRange(ctx, key, 0, -1).Val() {
				val += v + "\n"
			}
		}
		out[key] = val
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// metric is the value of the counter name with the given label pairs, as
// the fixture's registry exports it; 0 when there is no such series.
func (f *fixture) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	families, err := f.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	series:
		for _, m := range fam.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
