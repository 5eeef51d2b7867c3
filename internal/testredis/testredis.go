// Package testredis gives tests a connection to the real redis-server that
// the test command starts, and an embedded one for contract suites.
//
// The test command exports PARLEY_TEST_REDIS_URL and PARLEY_TEST_REQUIRE_REDIS=1;
// without the URL a test that needs Redis is skipped, unless Redis is
// required, in which case it fails.
package testredis

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/store"
	"github.com/redis/go-redis/v9"
)

// URL returns the real Redis URL for tests, skipping or failing t when unset.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("PARLEY_TEST_REDIS_URL")
	if url == "" {
		if os.Getenv("PARLEY_TEST_REQUIRE_REDIS") == "1" {
			t.Fatal("PARLEY_TEST_REDIS_URL is not set but Redis is required")
		}
		t.Skip("needs a real Redis: run the test command (make test), which starts one")
	}
	return url
}

// Client connects to the real test Redis (standalone or, with
// "?cluster=true" in the URL, a Redis Cluster) and closes it at cleanup.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{URL: URL(t)})
	if err != nil {
		t.Fatalf("open test redis: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Client()
}

// Embedded starts an in-process miniredis and returns a client to it.
func Embedded(t testing.TB) redis.UniversalClient {
	t.Helper()
	m := miniredis.RunT(t)
	// The embedded store runs scripts far slower than Redis; on a busy
	// machine one may take longer than go-redis's default 3 s read timeout.
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Prefix returns a key prefix unique to this test, so tests sharing one
// Redis never see each other's keys.
func Prefix(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return "test:" + name + ":" + uuid.NewString()[:8] + ":"
}

// Backends lists the stores a contract suite runs against: the real Redis
// (when available) and the embedded one.
func Backends(t *testing.T, run func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis", func(t *testing.T) { run(t, Client(t)) })
	t.Run("embedded", func(t *testing.T) { run(t, Embedded(t)) })
}

// Keys lists the keys matching the glob pattern with SCAN on every master
// (KEYS on a Redis Cluster client asks one node only).
func Keys(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, rdb)
	}
	if err != nil {
		t.Fatalf("scan %s: %v", pattern, err)
	}
	return out
}
