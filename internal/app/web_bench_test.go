package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testredis"
)

// BenchmarkWebTurn measures one warm turn of the web channel through
// Parley's HTTP handler on the real test Redis: the turn scripts/perf.sh
// drives (bearer check, JSON decoding, the classifier, a Lua handler that
// counts the session's turns, two Redis round trips, the JSON answer, and
// the turn recorded for analytics and the invocation log). Turns go to 1024
// conversations in order, from one caller.
//
//   - analytics=off and analytics=on run the background services as a
//     server does; their difference is what recording costs, and the
//     allocs/op of analytics=on include each turn's share of the analytics
//     and invocation log flushes.
//   - path records as analytics=on does but runs no background service, so
//     its allocs/op are the request path's alone.
//
// Each also reports the CPU time per turn of the process (cpu-us/turn:
// request path, background writes and garbage collection, with the
// recorded turns written before the count ends) and of Redis
// (redis-us/turn), which mean something on a Redis of the benchmark's own:
//
//	redis-server --port 6411 --save '' &
//	PARLEY_TEST_REDIS_URL=redis://127.0.0.1:6411/0 go test -run '^$' -bench BenchmarkWebTurn ./internal/app/
func BenchmarkWebTurn(b *testing.B) {
	for _, v := range []struct {
		name       string
		analytics  bool
		background bool
	}{{"analytics=off", false, true}, {"analytics=on", true, true}, {"path", true, false}} {
		b.Run(v.name, func(b *testing.B) {
			a := webBenchApp(b, v.analytics, v.background)
			h := a.Handler()
			rdb := testredis.Client(b)
			const conversations = 1024
			body := make([]string, conversations)
			for i := range body {
				body[i] = fmt.Sprintf(`{"user":"bench-user-%d","text":"hello"}`, i)
			}
			turn := func(i int) {
				req := httptest.NewRequest(http.MethodPost, "/hooks/bench/web", strings.NewReader(body[i%conversations]))
				req.Header.Set("Authorization", "Bearer "+webToken)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), ", turn ") {
					b.Fatalf("turn %d: %d %s", i, w.Code, w.Body)
				}
			}
			for i := range conversations { // warm: bot snapshot, classifier, Lua pool, sessions
				turn(i)
			}
			b.ReportAllocs()
			cpu, redisCPU := testredis.ProcessCPU(), testredis.CPU(b, rdb)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				turn(i)
			}
			b.StopTimer()
			if v.background {
				// What the turns left to write in the background counts too.
				if err := a.obs.analytics.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
				a.invocations.Flush(context.Background())
			}
			b.ReportMetric(float64((testredis.ProcessCPU()-cpu).Microseconds())/float64(b.N), "cpu-us/turn")
			b.ReportMetric(float64((testredis.CPU(b, rdb)-redisCPU).Microseconds())/float64(b.N), "redis-us/turn")
		})
	}
}

// webBenchApp is a Parley on the real test Redis with the bot of
// scripts/perf.sh, recording analytics or not, with its background
// services (the analytics and invocation log flushes among them) running
// or not.
func webBenchApp(b *testing.B, analytics, background bool) *App {
	b.Helper()
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=" + adminKey, secretKeyEnv, "PARLEY_SNAPSHOT_INTERVAL=1h",
		"PARLEY_REDIS_CONNECT_TIMEOUT=2s"})
	if err != nil {
		b.Fatal(err)
	}
	cfg.RedisURL, cfg.KeyPrefix, cfg.DataDir = testredis.URL(b), testredis.Prefix(b), b.TempDir()
	cfg.Analytics = analytics
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := func() error { return nil }
	if background {
		wait = a.StartBackground(ctx)
	}
	b.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			b.Error(err)
		}
		if err := a.Close(); err != nil {
			b.Error(err)
		}
	})
	h := a.Handler()
	admin := func(path, body string) {
		req := httptest.NewRequest(http.MethodPut, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 300 {
			b.Fatalf("PUT %s: %d %s", path, w.Code, w.Body)
		}
	}
	admin("/v1/bots/bench", `{}`)
	admin("/v1/bots/bench/channels/web", `{"token": "`+webToken+`"}`)
	admin("/v1/bots/bench/nlu", `{"intents": {"Hello": ["hello", "hi there", "good morning"]}}`)
	admin("/v1/bots/bench/intents/Hello", `function handle(event, session)
  session.turns = (session.turns or 0) + 1
  return {text = "Hello " .. event.user .. ", turn " .. session.turns, options = {"again"}}
end`)
	return a
}
