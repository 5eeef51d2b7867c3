package sandbox

import (
	"context"
	"sync"
	"sync/atomic"
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
//
// Nor is the timer reset and stopped on every call: it stays scheduled
// after a call, and arm resets it only when it would not fire by the new
// call's first check. fire decides from the current state alone, so an
// early fire re-arms the timer for the rest of the call, and a fire with no
// call armed does nothing. A busy VM's timer thus fires about once per
// budget (or caller poll interval) instead of being moved on every call.
type deadline struct {
	timer *time.Timer
	// fireAt is when the timer is scheduled to fire; zero when it is not
	// scheduled (it fired, or never was). Guarded by mu.
	fireAt time.Time

	// steps counts calls of Done, which the VM makes once per instruction:
	// the call's instruction count. Only the goroutine running the call
	// touches it; it is published to published every 1024 steps for the
	// heap guard.
	steps     int64
	published atomic.Int64
	// built estimates the bytes the call allocated in steps the VM cannot
	// interrupt (concatenations, string.rep and the like). Only the
	// goroutine running the call touches it; it is published to builtPub
	// for the heap guard whenever it passes a multiple of publishBytes.
	built    int64
	builtPub atomic.Int64
	// inHost is set while the call waits for a host function's I/O: it is
	// not allocating then, so the heap guard passes it over.
	inHost atomic.Bool
	// running is set while a call is armed, for the heap guard.
	running atomic.Bool
	// nudge asks the heap guard to check now rather than at its next tick;
	// nil without a guard. Set once when the VM registers.
	nudge chan<- struct{}
	// limitHit is set by a cap that raised an error in this call (only
	// the call's goroutine touches it): if the error ends the call, its
	// outcome is "limit".
	limitHit bool
	// start is when the armed call began.
	start time.Time

	mu       sync.Mutex
	done     chan struct{}
	err      error // why done was closed; nil while it is open
	byCaller bool  // done was closed because the caller's context ended
	armed    bool
	at       time.Time // end of the armed call's own budget
	parent   context.Context
	gen      uint64 // counts arms, so the heap guard kills the call it chose
	// hostCancel cancels the context of the call's host functions, when
	// one was made; an interruption cancels it too.
	hostCancel context.CancelFunc
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
	d.gen++
	d.start = now
	d.at = now.Add(timeout)
	d.parent = parent
	d.hostCancel = nil
	// The heap guard reads these once running is set. Atomic stores cost
	// more than loads, and most calls leave them at zero.
	d.steps, d.built = 0, 0
	if d.published.Load() != 0 {
		d.published.Store(0)
	}
	if d.builtPub.Load() != 0 {
		d.builtPub.Store(0)
	}
	if d.inHost.Load() {
		d.inHost.Store(false)
	}
	d.limitHit = false
	d.running.Store(true)
	next := d.nextCheck(now)
	if d.fireAt.IsZero() || d.fireAt.After(now.Add(next)) {
		d.schedule(now, next)
	}
	d.mu.Unlock()
}

// schedule makes the timer fire after next. d.mu is held.
func (d *deadline) schedule(now time.Time, next time.Duration) {
	d.fireAt = now.Add(next)
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
	d.running.Store(false)
	err, byCaller = d.err, d.byCaller
	d.parent = nil
	cancel := d.hostCancel
	d.hostCancel = nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return err, byCaller
}

// overran tells, after disarm reported no interruption, whether the call
// ended past its budget or after its caller's context ended all the same:
// the host context has timers of its own, so a host call can fail with
// "timed out" just before this deadline fires, and the script's error
// that follows is then a timeout, not a script failure. It reads the state
// disarm left, so it is only meaningful right after it.
func (d *deadline) overran(parent context.Context) (err error, byCaller bool) {
	if parent != nil && parent.Err() != nil {
		return parent.Err(), true
	}
	d.mu.Lock()
	at := d.at
	d.mu.Unlock()
	if !time.Now().Before(at) {
		return context.DeadlineExceeded, false
	}
	return nil, false
}

// setHostCancel registers the cancel function of the call's host context.
// It reports false when the call was already interrupted; the caller then
// cancels at once.
func (d *deadline) setHostCancel(cancel context.CancelFunc) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil || !d.armed {
		return false
	}
	d.hostCancel = cancel
	return true
}

// generation returns the number of the current (or last) armed call.
func (d *deadline) generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// kill interrupts the armed call number gen with err, as the heap guard
// does. It reports whether that call was still running.
func (d *deadline) kill(err error, gen uint64) bool {
	d.mu.Lock()
	if !d.armed || d.err != nil || d.gen != gen {
		d.mu.Unlock()
		return false
	}
	d.err = err
	close(d.done)
	cancel := d.hostCancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return true
}

// stop releases the timer for good.
func (d *deadline) stop() {
	d.mu.Lock()
	d.fireAt = time.Time{}
	d.mu.Unlock()
	d.timer.Stop()
}

// fire runs on the timer's goroutine. It may be a late fire left over from
// an earlier call, so it decides from the current state alone.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fireAt = time.Time{}
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
		d.schedule(now, next)
		return
	}
	close(d.done)
	if d.hostCancel != nil {
		d.hostCancel()
	}
}

// Deadline reports the end of the armed call's own budget.
func (d *deadline) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at, d.armed
}

// Done is closed when the armed call must stop. It is only called on the
// goroutine running the call, which is also the only one that replaces the
// channel (in arm), so it needs no lock. Host functions get a context of
// their own (see vm.hostContext), never this one.
//
// The VM calls Done before every instruction, which makes it the
// instruction counter too.
func (d *deadline) Done() <-chan struct{} {
	d.steps++
	if d.steps&1023 == 0 {
		d.published.Store(d.steps)
		if d.steps&(nudgeSteps-1) == 0 {
			d.poke()
		}
	}
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

// Every nudgeSteps instructions, and every nudgeBytes built, a call asks
// the heap guard to look at the heap at once: both are about 8 MiB of
// allocation estimate, which a fast loop produces well within the guard's
// polling interval. The guard sees the bytes built in steps of
// publishBytes.
const (
	nudgeSteps   = 1 << 19
	nudgeBytes   = 8 << 20
	publishBytes = 64 << 10
)

// addBuilt adds n bytes to the call's allocation estimate.
func (d *deadline) addBuilt(n int) {
	old := d.built
	d.built += int64(n)
	if old/publishBytes != d.built/publishBytes {
		d.builtPub.Store(d.built)
		if old/nudgeBytes != d.built/nudgeBytes {
			d.poke()
		}
	}
}

// spend adds n bytes to the call's allocation estimate, like addBuilt, and
// reports whether the call must stop. Go code that works for a script in a
// loop (decoding, building strings) calls it as it goes; the check is a
// non-blocking receive, so it can be frequent.
func (d *deadline) spend(n int) (stop bool) {
	d.addBuilt(n)
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// poke asks the heap guard for a check without waiting.
func (d *deadline) poke() {
	if d.nudge != nil {
		select {
		case d.nudge <- struct{}{}:
		default:
		}
	}
}
