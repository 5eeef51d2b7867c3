package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/logctx"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// turnCounter counts the round trips (a command or a pipeline) one request
// makes: those sent with its request id in the context. Background work
// (queue polling, batched analytics and invocation logs, schedules) carries
// no request id; strays counts its commands that touch the conversation
// anyway, which would be turn work escaping the count.
type turnCounter struct {
	requestID string
	tag       string // the conversation's hash tag, e.g. {counter:u}
	mu        sync.Mutex
	n, strays int
	trips     []string // the request's round trips, as their command names
}

func (c *turnCounter) count(ctx context.Context, cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requestID == "" || handshake(cmds) {
		return
	}
	if logctx.RequestID(ctx) == c.requestID {
		c.n++
		var names []string
		for _, cmd := range cmds {
			names = append(names, cmd.Name())
		}
		c.trips = append(c.trips, strings.Join(names, "+"))
		return
	}
	for _, cmd := range cmds {
		for _, arg := range cmd.Args() {
			if s, ok := arg.(string); ok && strings.Contains(s, c.tag) {
				c.strays++
				return
			}
		}
	}
}

// handshake reports whether cmds set up a new connection (HELLO, AUTH,
// SELECT, CLIENT SETNAME): how many connections the pool opens depends on
// the machine's scheduling, not on the turn.
func handshake(cmds []redis.Cmder) bool {
	for _, cmd := range cmds {
		switch cmd.Name() {
		case "hello", "auth", "select", "client":
		default:
			return false
		}
	}
	return len(cmds) > 0
}

func (c *turnCounter) start(id string) {
	c.mu.Lock()
	c.requestID, c.n, c.strays, c.trips = id, 0, 0, nil
	c.mu.Unlock()
}

func (c *turnCounter) result() (n, strays int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requestID = ""
	return c.n, c.strays
}

func (c *turnCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *turnCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.count(ctx, cmd); return next(ctx, cmd) }
}
func (c *turnCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.count(ctx, cmds...); return next(ctx, cmds) }
}

// TestWarmTurnCostsTwoRoundTrips counts Redis round trips of whole web
// channel turns once the bot is cached.
func TestWarmTurnCostsTwoRoundTrips(t *testing.T) {
	ta := startApp(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t), refresh: "1h"})
	ta.setupBot(t, "counter", nil, map[string]string{"Count": counterHandler})
	// Load the bot, and give the announcements of its deployment time to
	// arrive (they take up to a few hundred milliseconds through Pub/Sub):
	// one arriving late would make the next turn read the bot again.
	turns := 0
	for start := time.Now(); time.Since(start) < 500*time.Millisecond; turns++ {
		ta.say(t, "counter", map[string]any{"user": "u", "intent": "Count"}).must(t, http.StatusOK)
		time.Sleep(20 * time.Millisecond)
	}

	counter := &turnCounter{tag: "{counter:u}"}
	ta.store.Client().AddHook(counter)
	for i := range 5 {
		id := fmt.Sprintf("turn-%d", i)
		body := fmt.Sprintf(`{"user":"u","intent":"Count","id":"m%d"}`, i)
		req, _ := http.NewRequest(http.MethodPost, ta.URL+"/hooks/counter/web", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+webToken)
		req.Header.Set("X-Request-Id", id)
		counter.start(id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, strays := counter.result()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), fmt.Sprintf("count %d", turns+i+1)) {
			t.Fatalf("turn %d: %d %s", i, resp.StatusCode, raw)
		}
		if n == 0 || n > 2 || strays > 0 {
			t.Fatalf("turn %d took %d Redis round trips %q (and %d outside the request), want 1 or 2", i, n, counter.trips, strays)
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
	if resp, err := http.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("server still accepts connections after shutdown")
	}
}
