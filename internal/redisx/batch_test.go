package redisx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// pipelines counts the pipelines sent to Redis and holds each one back
// until release is closed, so that callers pile up behind a round trip.
type pipelines struct {
	n       atomic.Int64
	cmds    atomic.Int64
	hold    chan struct{}
	holding atomic.Bool
}

func (p *pipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() != "hello" && cmds[0].Name() != "client" {
			p.n.Add(1)
			p.cmds.Add(int64(len(cmds)))
			if p.holding.CompareAndSwap(true, false) {
				<-p.hold
			}
		}
		return next(ctx, cmds)
	}
}

// TestBatcherSendsWaitingCallersTogether: callers that queue while a round
// trip is under way leave together in the next one, each with its own
// answers.
func TestBatcherSendsWaitingCallersTogether(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		hook := &pipelines{hold: make(chan struct{})}
		rdb.AddHook(hook)
		b := redisx.NewBatcher(rdb)

		// The first caller's round trip is held while 20 more queue.
		hook.holding.Store(true)
		first := make(chan error, 1)
		go func() {
			first <- b.Pipelined(ctx, func(p redis.Pipeliner) { p.Set(ctx, prefix+"first", "1", time.Minute) })
		}()
		for hook.holding.Load() {
			time.Sleep(time.Millisecond)
		}
		const callers = 20
		var wg sync.WaitGroup
		got := make([]int64, callers)
		errs := make([]error, callers)
		queued := make(chan struct{}, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var incr *redis.IntCmd
				queued <- struct{}{}
				errs[i] = b.Pipelined(ctx, func(p redis.Pipeliner) {
					incr = p.IncrBy(ctx, fmt.Sprintf("%scounter:%d", prefix, i), int64(i))
					p.Get(ctx, prefix+"missing") // redis.Nil, which is this caller's alone
				})
				got[i] = incr.Val()
			}()
		}
		for range callers {
			<-queued
		}
		// Wait until every caller has queued, however slow the machine.
		for deadline := time.Now().Add(30 * time.Second); redisx.PendingCalls(b) < callers && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		close(hook.hold)
		wg.Wait()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		for i := range callers {
			if !errors.Is(errs[i], redis.Nil) || got[i] != int64(i) {
				t.Errorf("caller %d: %d, %v; want %d and redis.Nil", i, got[i], errs[i], i)
			}
		}
		if n := hook.n.Load(); n != 2 {
			t.Errorf("%d pipelines for %d callers, want 2: the first, then the 20 that queued behind it", n, callers+1)
		}
		t.Logf("%d callers in %d round trips", callers+1, hook.n.Load())
	})
}

// TestBatcherCallerLeaving: a caller whose context has ended before its
// batch leaves sends nothing; one that leaves while its commands run gets
// the context's error.
func TestBatcherCallerLeaving(t *testing.T) {
	rdb := testredis.Client(t)
	prefix := testredis.Prefix(t)
	b := redisx.NewBatcher(rdb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Pipelined(ctx, func(p redis.Pipeliner) { p.Set(ctx, prefix+"left", "1", time.Minute) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that had left: %v, want context.Canceled", err)
	}
	if n := rdb.Exists(context.Background(), prefix+"left").Val(); n != 0 {
		t.Fatal("the commands of a caller that had left were sent")
	}

	hook := &pipelines{hold: make(chan struct{})}
	rdb.AddHook(hook)
	hook.holding.Store(true)
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Pipelined(ctx, func(p redis.Pipeliner) { p.Set(ctx, prefix+"leaving", "1", time.Minute) })
	}()
	for hook.holding.Load() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(hook.hold)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that left during its round trip: %v, want context.Canceled", err)
	}
}

// TestScriptDo: a script sent through a batcher runs, and is sent in full
// when Redis does not know it.
func TestScriptDo(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		s := redisx.NewScript(uniqueScripts(t, prefix), "lua/incr.lua")
		b := redisx.NewBatcher(rdb)
		for want := int64(2); want <= 4; want += 2 {
			n, err := s.Do(ctx, b, []string{prefix + "c"}, 2).Int64()
			if err != nil || n != want {
				t.Fatalf("script through the batcher: %d, %v; want %d", n, err, want)
			}
		}
	})
}
