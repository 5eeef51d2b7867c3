package bots

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// TestCloseWaitsForTraining: Close cancels a background training in flight
// and returns only after it has ended; later uploads start no training.
func TestCloseWaitsForTraining(t *testing.T) {
	ctx := context.Background()
	started, cancelled, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var starts, ended atomic.Int32
	c := New(testredis.Embedded(t), Config{
		NLUSyncExamples: 1, // shopNLU trains in the background
		OnTrainStart: func(ctx context.Context, _ string, _ int) {
			if starts.Add(1) > 1 {
				return
			}
			close(started)
			<-ctx.Done()
			close(cancelled)
			<-release
		},
		OnTrain: func(string, int, time.Duration, error) { ended.Add(1) },
	})
	newBot(t, c, "shop")
	if err := c.PutNLU(ctx, "shop", shopNLU); err != nil {
		t.Fatal(err)
	}
	<-started
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not cancel the training's context")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while the training was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return after the training ended")
	}
	if ended.Load() != 1 {
		t.Errorf("trainings ended before Close returned: %d, want 1", ended.Load())
	}
	if err := c.PutNLU(ctx, "shop", bigger()); err != nil {
		t.Fatal(err)
	}
	if starts.Load() != 1 {
		t.Errorf("trainings started after Close: %d, want none", starts.Load()-1)
	}
	if n, err := c.GetNLU(ctx, "shop"); err != nil || len(n.Intents) != 4 {
		t.Errorf("data uploaded after Close: %v, %v", n.Intents, err)
	}
	c.Close() // again: no effect
}

// TestRunWaitsForWarmLoads: Run returns only after the loads it started for
// bots that keep VMs warm have ended.
func TestRunWaitsForWarmLoads(t *testing.T) {
	rdb := testredis.Embedded(t)
	prefix := testredis.Prefix(t)
	setup := New(rdb, Config{KeyPrefix: prefix})
	if _, err := setup.PutBot(context.Background(), "warm", Settings{MinVMs: 1}); err != nil {
		t.Fatal(err)
	}
	loading, release := make(chan struct{}), make(chan struct{})
	var loads atomic.Int32
	c := New(rdb, Config{KeyPrefix: prefix, OnLoad: func(b *Bot) {
		if loads.Add(1) == 1 {
			close(loading)
			<-release
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-loading:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not load the bot with warm VMs")
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a warm load was running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the warm load ended")
	}
}
