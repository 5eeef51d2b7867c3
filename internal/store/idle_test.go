package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/testredis"
)

// TestConnectionsClosedWhileIdle: the pooled connections are not checked
// before each use (see opaqueConn); when the server has closed them while
// they were idle, commands and scripts still succeed, on new connections.
func TestConnectionsClosedWhileIdle(t *testing.T) {
	srv := testredis.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{URL: srv.URL(), ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rdb := st.Client()
	script := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
	for range 3 {
		// Several connections in the pool, then all of them closed by the server.
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", "v", 0)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := script.Run(ctx, rdb, []string{"n"}).Err(); err != nil {
			t.Fatal(err)
		}
		opts, err := redis.ParseURL(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		killer := redis.NewClient(opts)
		if err := killer.Do(ctx, "client", "kill", "type", "normal", "skipme", "yes").Err(); err != nil {
			t.Fatal(err)
		}
		killer.Close()
		if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
			t.Fatalf("GET after the server closed the connections: %q, %v", got, err)
		}
		if err := script.Run(ctx, rdb, []string{"n"}).Err(); err != nil {
			t.Fatalf("script after the server closed the connections: %v", err)
		}
	}
	if n, err := rdb.Get(ctx, "n").Int(); err != nil || n != 6 {
		t.Errorf("counter %d, %v; want 6 (each script ran once)", n, err)
	}
}
