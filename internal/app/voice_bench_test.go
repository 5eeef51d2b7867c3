package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testredis"
)

// BenchmarkVoiceTurn measures whole Alexa turns (an IntentRequest with a
// slot, through the HTTP handler: the adapter, routing, a Lua handler that
// updates its session, two Redis round trips, and the rendered response) on
// the real test Redis, from parallel callers over 256 conversations. The
// signature check is off (verify_signature=false): it needs Amazon's
// certificate; the alexa package's BenchmarkParseVerified measures it with a
// cached certificate.
func BenchmarkVoiceTurn(b *testing.B) {
	h := benchHandler(b)
	admin := func(method, path, body string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 300 {
			b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	}
	admin("PUT", "/v1/bots/bench", `{"timeout_ms": 1000}`)
	admin("PUT", "/v1/bots/bench/channels/alexa", `{"skill_id": "`+testSkillID+`", "verify_signature": "false"}`)
	admin("PUT", "/v1/bots/bench/intents/OrderPizza", `
function handle(event, session)
  session.turns = (session.turns or 0) + 1
  return {text = "A " .. (event.slots.size or "medium") .. " pizza, turn " .. session.turns .. ". Anything else?",
          reprompt = "Anything else?", expect = "OrderPizza"}
end`)

	const conversations = 256
	var seq atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	turn := func() time.Duration {
		n := seq.Add(1)
		body := alexaRequest(fmt.Sprintf("amzn1.echo-api.session.bench-%d", n%conversations), false,
			fmt.Sprintf(`{"type":"IntentRequest","requestId":"amzn1.echo-api.request.bench-%d","timestamp":%q,"locale":"en-US","intent":{"name":"OrderPizza","confirmationStatus":"NONE","slots":{"size":{"name":"size","value":"large","confirmationStatus":"NONE"}}}}`,
				n, time.Now().UTC().Format(time.RFC3339)))
		req := httptest.NewRequest(http.MethodPost, "/hooks/bench/alexa", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		took := time.Since(start)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"outputSpeech"`) {
			b.Errorf("turn %d: %d %s", n, w.Code, w.Body)
		}
		return took
	}
	for i := 0; i < conversations; i++ { // warm: bot snapshot, Lua pools, sessions
		turn()
	}

	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			mine = append(mine, turn())
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(latencies) == 0 {
		return
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "turns/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// benchHandler is a Parley on the real test Redis, for benchmarks.
func benchHandler(b *testing.B) http.Handler {
	b.Helper()
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=" + adminKey, secretKeyEnv, "PARLEY_SNAPSHOT_INTERVAL=1h",
		"PARLEY_REDIS_CONNECT_TIMEOUT=2s"})
	if err != nil {
		b.Fatal(err)
	}
	cfg.RedisURL, cfg.KeyPrefix, cfg.DataDir = testredis.URL(b), testredis.Prefix(b), b.TempDir()
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := a.StartBackground(ctx)
	b.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			b.Error(err)
		}
		if err := a.Close(); err != nil {
			b.Error(err)
		}
	})
	return a.Handler()
}
