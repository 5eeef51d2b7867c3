package app

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// commandCounter counts round trips: each command or pipeline sent to Redis.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// TestWarmTurnCostsTwoRoundTrips counts Redis round trips of whole web
// channel turns once the bot is cached.
func TestWarmTurnCostsTwoRoundTrips(t *testing.T) {
	ta := startApp(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t), refresh: "1h"})
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	ta.say(t, "counter", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK) // loads the bot

	counter := &commandCounter{}
	ta.store.Client().AddHook(counter)
	for i := 0; i < 5; i++ {
		before := counter.n.Load()
		ta.say(t, "counter", map[string]any{"user": "u", "intent": "Count", "id": "m" + string(rune('a'+i))}).must(t, http.StatusOK)
		if got := counter.n.Load() - before; got > 2 {
			t.Fatalf("turn %d took %d Redis round trips, want at most 2", i, got)
		}
	}
}

// TestShutdownDrainsInFlightTurns stops the server while a turn is running:
// the turn completes and new connections are refused.
func TestShutdownDrainsInFlightTurns(t *testing.T) {
	cfg := testConfig(t, appOptions{})
	a, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.ServeListener(ctx, ln) }()

	ta := &testApp{URL: url}
	ta.setupBot(t, "b", map[string]any{"timeout_ms": 5000}, map[string]string{"Slow": `function handle()
  local deadline = os.clock() + 0.5
  while os.clock() < deadline do end
  return "finished"
end`})
	answer := make(chan response, 1)
	go func() { answer <- ta.say(t, "b", map[string]any{"user": "u", "intent": "Slow"}) }()
	time.Sleep(150 * time.Millisecond)
	cancel()

	r := <-answer
	if r.Status != http.StatusOK || firstReply(t, r) != "finished" {
		t.Fatalf("in-flight turn during shutdown: %d %s", r.Status, r.Raw)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}
