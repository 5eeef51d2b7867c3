package ratelimit

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/rate"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

func mustRate(t testing.TB, s string) rate.Rate {
	t.Helper()
	r, err := rate.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLimiter is the limiter's suite, run against real Redis and the
// embedded store.
func TestLimiter(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Run("BurstThenRefused", func(t *testing.T) { testBurstThenRefused(t, rdb) })
		t.Run("RefusedTurnsAreNotCounted", func(t *testing.T) { testRefusedNotCounted(t, rdb) })
		t.Run("AllowedAgainAfterRetryAfter", func(t *testing.T) { testAllowedAgain(t, rdb) })
		t.Run("KeysExpireAndShareTheBotsTag", func(t *testing.T) { testKeys(t, rdb) })
		t.Run("ReplicasShareOneLimit", func(t *testing.T) { testShared(t, rdb) })
	})
}

// slowMachine is the check timeout of tests that count decisions: with the
// default 250 ms, a check that a busy machine delays fails open and lets a
// turn through that the limit would have refused.
const slowMachine = time.Minute

func testBurstThenRefused(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	l := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Timeout: slowMachine})
	lim := rate.Limits{Bot: mustRate(t, "3/h")}
	for i := range 3 {
		if d := l.Allow(ctx, "b", "u"+string(rune('a'+i)), lim); !d.Allowed {
			t.Fatalf("turn %d refused: %+v", i+1, d)
		}
	}
	d := l.Allow(ctx, "b", "ud", lim)
	if d.Allowed || d.Scope != ScopeBot || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Minute {
		t.Fatalf("4th turn of 3/h: %+v; want refused by the bot's limit within 20m", d)
	}
	if d := l.Allow(ctx, "other", "ua", lim); !d.Allowed {
		t.Fatalf("another bot was refused: %+v", d)
	}
}

// testRefusedNotCounted: a turn refused by its conversation's limit does
// not use up the bot's.
func testRefusedNotCounted(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	l := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Timeout: slowMachine})
	lim := rate.Limits{Bot: mustRate(t, "4/h"), Conversation: mustRate(t, "1/h")}
	if d := l.Allow(ctx, "b", "chatty", lim); !d.Allowed {
		t.Fatalf("first turn refused: %+v", d)
	}
	for range 5 {
		if d := l.Allow(ctx, "b", "chatty", lim); d.Allowed || d.Scope != ScopeConversation {
			t.Fatalf("second turn of one conversation at 1/h: %+v", d)
		}
	}
	for _, c := range []string{"a", "b", "c"} {
		if d := l.Allow(ctx, "b", c, lim); !d.Allowed {
			t.Fatalf("conversation %s refused although the bot has budget left: %+v", c, d)
		}
	}
	if d := l.Allow(ctx, "b", "d", lim); d.Allowed || d.Scope != ScopeBot {
		t.Fatalf("5th turn of a 4/h bot: %+v", d)
	}
}

func testAllowedAgain(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	l := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Timeout: slowMachine})
	lim := rate.Limits{Conversation: mustRate(t, "10/s")}
	var d Decision
	for d = l.Allow(ctx, "b", "u", lim); d.Allowed; d = l.Allow(ctx, "b", "u", lim) {
	}
	if d.Scope != ScopeConversation || d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
		t.Fatalf("refusal %+v; want the conversation's, within one interval", d)
	}
	time.Sleep(d.RetryAfter + 5*time.Millisecond)
	if d := l.Allow(ctx, "b", "u", lim); !d.Allowed {
		t.Fatalf("refused again after waiting RetryAfter: %+v", d)
	}
}

func testKeys(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	p := testredis.Prefix(t)
	l := New(rdb, Config{KeyPrefix: p, Timeout: slowMachine})
	l.Allow(ctx, "b", "u1", rate.Limits{Bot: mustRate(t, "60/m"), Conversation: mustRate(t, "10/h")})
	for key, period := range map[string]time.Duration{p + "rl:{b}": time.Minute, l.conversationKey("b", "u1"): time.Hour} {
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > period {
			t.Errorf("%s: PTTL %v, %v; want an expiry within %v", key, ttl, err, period)
		}
	}
	if n, _ := rdb.Exists(ctx, l.conversationKey("b", "u2")).Result(); n != 0 {
		t.Errorf("a key for an unseen conversation")
	}
}

// testShared: two limiters (two replicas) on one Redis enforce one limit.
func testShared(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	p := testredis.Prefix(t)
	a, b := New(rdb, Config{KeyPrefix: p, Timeout: slowMachine}), New(rdb, Config{KeyPrefix: p, Timeout: slowMachine})
	lim := rate.Limits{Bot: mustRate(t, "10/h")}
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for i := range 40 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			if l.Allow(ctx, "b", "u", lim).Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d of 40 concurrent turns allowed by 10/h; want exactly 10", allowed)
	}
}

// TestNoLimitsNoRedis: without limits the check never reaches Redis.
func TestNoLimitsNoRedis(t *testing.T) {
	l := New(nil, Config{})
	if d := l.Allow(context.Background(), "b", "u", rate.Limits{}); !d.Allowed {
		t.Fatalf("%+v", d)
	}
}

// TestFailsOpen: with Redis down, turns are allowed and a warning logged.
func TestFailsOpen(t *testing.T) {
	srv := testredis.StartServer(t)
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	l := New(rdb, Config{KeyPrefix: "t:", Logger: log})
	lim := rate.Limits{Bot: mustRate(t, "1/h")}
	ctx := context.Background()
	if d := l.Allow(ctx, "b", "u", lim); !d.Allowed {
		t.Fatalf("first turn refused: %+v", d)
	}
	if d := l.Allow(ctx, "b", "u", lim); d.Allowed {
		t.Fatalf("second turn of 1/h allowed while Redis is up")
	}
	srv.Stop()
	for range 3 {
		if d := l.Allow(ctx, "b", "u", lim); !d.Allowed {
			t.Fatalf("refused while Redis is down: %+v; want fail open", d)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "rate limit unchecked"); n != 3 || !strings.Contains(logged.String(), "level=WARN") {
		t.Fatalf("log: %s", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// BenchmarkAllow measures one check of both limits.
func BenchmarkAllow(b *testing.B) {
	rdb := testredis.Client(b)
	l := New(rdb, Config{KeyPrefix: testredis.Prefix(b)})
	lim := rate.Limits{Bot: rate.Rate{Count: rate.MaxCount, Period: time.Second}, Conversation: rate.Rate{Count: rate.MaxCount, Period: time.Second}}
	ctx := context.Background()
	start := time.Now()
	for b.Loop() {
		if !l.Allow(ctx, "b", "u", lim).Allowed {
			b.Fatal("refused")
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/check")
}

func TestRateGCRA(t *testing.T) {
	interval, tolerance := gcra(rate.Rate{Count: 100, Period: time.Second})
	if interval != 10_000 || tolerance != 1_000_000 {
		t.Errorf("100/s: interval %dµs, tolerance %dµs", interval, tolerance)
	}
	if interval, tolerance := gcra(rate.Rate{}); interval != 0 || tolerance != 0 {
		t.Errorf("no limit: interval %d, tolerance %d", interval, tolerance)
	}
}

func FuzzGCRA(f *testing.F) {
	for _, s := range []string{"100/s", "6000/m", "1/d", "1000000/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := rate.Parse(s)
		if err != nil {
			return
		}
		if interval, _ := gcra(r); !r.IsZero() && interval < 1 {
			t.Fatalf("Parse(%q): interval %d", s, interval)
		}
	})
}
