package redisx_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/redisx"
)

type ctxKey struct{}

// TestDetached: a detached context outlives its parent's cancellation,
// keeps its values, and its deadline still bounds a command to a server
// that never answers.
func TestDetached(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "request-7"))
	cancel()
	d := time.Now().Add(300 * time.Millisecond)
	ctx := redisx.Detached(parent, d)
	if ctx.Err() != nil || ctx.Done() != nil {
		t.Fatalf("detached context is done: %v", ctx.Err())
	}
	if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
		t.Fatalf("deadline %v %v, want %v", got, ok, d)
	}
	if ctx.Value(ctxKey{}) != "request-7" {
		t.Fatal("values lost")
	}

	// A server that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		DisableIdentity: true, Protocol: 2, MaxRetries: -1, ContextTimeoutEnabled: true}) // as Parley opens its clients
	defer rdb.Close()
	start := time.Now()
	err = rdb.Get(redisx.Detached(context.Background(), time.Now().Add(300*time.Millisecond)), "k").Err()
	if err == nil {
		t.Fatal("a server that never answers answered")
	}
	// Wide margin: the point is that the minute-long read timeout did not apply.
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("the command waited %v, past its 300 ms deadline", waited)
	}
}
