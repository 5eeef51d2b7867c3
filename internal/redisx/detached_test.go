package redisx_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/internal/testredis"
)

type ctxKey struct{}

// TestDetached: a detached context outlives its parent's cancellation,
// keeps its values, and its deadline still bounds a command that would
// block for ever.
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

	// A command that would block for ever returns at the deadline.
	rdb := testredis.Client(t)
	start := time.Now()
	err := rdb.BLPop(redisx.Detached(context.Background(), time.Now().Add(300*time.Millisecond)), 0, testredis.Prefix(t)+"empty").Err()
	if err == nil {
		t.Fatal("BLPOP on an empty list answered")
	}
	// Wide margin: the point is that it did not wait for ever.
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("the command waited %v, past its 300 ms deadline", waited)
	}
}
