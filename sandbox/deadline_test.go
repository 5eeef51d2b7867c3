package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineTimerKeptBetweenCalls checks the timer that stays scheduled
// after a call: a later call with a shorter budget still ends on time, and
// a fire left over from an earlier, shorter budget does not end a call
// early.
func TestDeadlineTimerKeptBetweenCalls(t *testing.T) {
	ctx := context.Background()
	d := newDeadline()
	defer d.stop()
	wait := func(limit time.Duration) (time.Duration, bool) {
		start := time.Now()
		select {
		case <-d.Done():
			return time.Since(start), true
		case <-time.After(limit):
			return time.Since(start), false
		}
	}

	// A long budget leaves the timer scheduled far ahead; the next,
	// short budget must move it.
	d.arm(ctx, time.Now(), time.Hour)
	_, _ = d.disarm()
	d.arm(ctx, time.Now(), 20*time.Millisecond)
	if took, done := wait(scaled(2 * time.Second)); !done {
		t.Fatalf("a 20ms budget after a 1h one did not end within %v", took)
	}
	if err, byCaller := d.disarm(); !errors.Is(err, context.DeadlineExceeded) || byCaller {
		t.Fatalf("disarm: %v, %v", err, byCaller)
	}

	// A short budget that ends unused leaves a fire behind; the next call,
	// with a longer budget, must outlive it.
	d.arm(ctx, time.Now(), 10*time.Millisecond)
	_, _ = d.disarm()
	d.arm(ctx, time.Now(), 200*time.Millisecond)
	start := time.Now()
	if _, done := wait(50 * time.Millisecond); done {
		t.Fatal("a call ended by the fire of an earlier call's budget")
	}
	if took, done := wait(scaled(2 * time.Second)); !done {
		t.Fatalf("a 200ms budget did not end within %v", took)
	}
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Errorf("a 200ms budget ended after %v", took)
	}
	_, _ = d.disarm()

	// Many short calls in a row, then one that must be cut off.
	for range 1000 {
		d.arm(ctx, time.Now(), 30*time.Millisecond)
		_, _ = d.disarm()
	}
	d.arm(ctx, time.Now(), 30*time.Millisecond)
	if took, done := wait(scaled(2 * time.Second)); !done {
		t.Fatalf("a 30ms budget did not end within %v", took)
	}
	_, _ = d.disarm()
}

// TestDeadlineCallerCancelNoticed checks that a cancellable caller context
// is still polled when the timer was left scheduled by earlier calls.
func TestDeadlineCallerCancelNoticed(t *testing.T) {
	d := newDeadline()
	defer d.stop()
	for range 100 {
		d.arm(context.Background(), time.Now(), time.Hour)
		_, _ = d.disarm()
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.arm(ctx, time.Now(), time.Hour)
	cancel()
	start := time.Now()
	select {
	case <-d.Done():
	case <-time.After(scaled(2 * time.Second)):
		t.Fatal("a cancelled caller was not noticed")
	}
	if err, byCaller := d.disarm(); !errors.Is(err, context.Canceled) || !byCaller {
		t.Fatalf("disarm: %v, %v", err, byCaller)
	}
	if took := time.Since(start); took > scaled(500*time.Millisecond) {
		t.Errorf("cancellation noticed after %v", took)
	}
}
