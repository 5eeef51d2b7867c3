package sandbox

import (
	"context"
	"sync"
	"time"
)

// callerPollInterval is how often a running call checks whether its
// caller's context ended. A caller deadline that comes before the call's own
// budget is waited for exactly; only cancellation is polled.
const callerPollInterval = 10 * time.Millisecond

// deadline is the context a VM runs its handler under. It is armed for one
// call at a time and becomes done when the call's own budget passes or the
// caller's context ends, whichever comes first.
//
// The VM checks Done before every instruction and arming happens on every
// call, so both must be cheap. Each VM owns one deadline with one reusable
// timer: arming and disarming allocate nothing, where context.WithTimeout
// costs a timer and several allocations per call, and context.AfterFunc on
// a cancellable caller context a few more. Instead the timer also polls the
// caller's context while a call runs longer than callerPollInterval, which
// almost no call does.
type deadline struct {
	timer *time.Timer

	mu       sync.Mutex
	done     chan struct{}
	err      error // why done was closed; nil while it is open
	byCaller bool  // done was closed because the caller's context ended
	armed    bool
	at       time.Time // end of the armed call's own budget
	parent   context.Context
}

func newDeadline() *deadline {
	d := &deadline{done: make(chan struct{})}
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}

// arm starts a call that may run until now+timeout or until parent ends.
func (d *deadline) arm(parent context.Context, now time.Time, timeout time.Duration) {
	d.mu.Lock()
	if d.err != nil {
		// The previous call was interrupted; its channel is closed for good.
		d.done = make(chan struct{})
		d.err = nil
	}
	d.byCaller = false
	d.armed = true
	d.at = now.Add(timeout)
	d.parent = parent
	next := d.nextCheck(now)
	d.mu.Unlock()
	d.timer.Reset(next)
}

// nextCheck returns when the timer should fire next. d.mu is held.
func (d *deadline) nextCheck(now time.Time) time.Duration {
	next := d.at.Sub(now)
	if dl, ok := d.parent.Deadline(); ok {
		next = min(next, dl.Sub(now))
	}
	if d.parent.Done() != nil {
		next = min(next, callerPollInterval)
	}
	return max(next, 0)
}

// disarm ends the call and reports whether, and why, it was interrupted.
func (d *deadline) disarm() (err error, byCaller bool) {
	d.mu.Lock()
	d.armed = false
	err, byCaller = d.err, d.byCaller
	d.parent = nil
	d.mu.Unlock()
	d.timer.Stop()
	return err, byCaller
}

// stop releases the timer for good.
func (d *deadline) stop() {
	d.timer.Stop()
}

// fire runs on the timer's goroutine. It may be a late fire left over from
// an earlier call, so it decides from the current state alone.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.armed || d.err != nil {
		return
	}
	now := time.Now()
	switch {
	case d.parent.Err() != nil:
		d.err = d.parent.Err()
		d.byCaller = true
	case !now.Before(d.at):
		d.err = context.DeadlineExceeded
	default:
		next := d.nextCheck(now)
		if next == 0 {
			// The caller's deadline has passed but its context has not
			// noticed yet.
			next = time.Millisecond
		}
		d.timer.Reset(next)
		return
	}
	close(d.done)
}

// Deadline reports the end of the armed call's own budget.
func (d *deadline) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at, d.armed
}

// Done is closed when the armed call must stop. It is only called on the
// goroutine running the call, which is also the only one that replaces the
// channel (in arm), so it needs no lock.
func (d *deadline) Done() <-chan struct{} {
	return d.done
}

// Err reports why Done was closed.
func (d *deadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Value looks values up in the caller's context.
func (d *deadline) Value(key any) any {
	d.mu.Lock()
	p := d.parent
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Value(key)
}
