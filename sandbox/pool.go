package sandbox

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// errPoolGone is returned by pool.get when the pool was dropped or reaped
// after the caller found it; the caller looks the key up again.
var errPoolGone = errors.New("sandbox: pool is gone")

// pool is the VMs of one PoolKey. It grows on demand up to max, hands VMs
// back to waiting calls in arrival order, and shrinks when the reaper finds
// VMs idle for Config.IdleTimeout.
type pool struct {
	rt  *Runtime
	key PoolKey

	mu       sync.Mutex
	idle     []idleVM   // a stack: the most recently returned VM on top
	live     int        // VMs idle, busy or being built; never more than max for long
	min, max int        // the bounds of the latest call
	waiters  []chan *vm // calls waiting for a VM, oldest first
	lastUsed time.Time  // when a call last took or returned a VM
	dropped  bool       // returning VMs are closed, new calls look the key up again
	filling  bool       // a goroutine is building VMs up to min
}

// idleVM is a VM in a pool's idle stack, with the time it was returned.
type idleVM struct {
	v     *vm
	since time.Time
}

// pool returns the pool of key, made if need be.
func (r *Runtime) pool(key PoolKey) (*pool, error) {
	if p, ok := r.pools.Load(key); ok {
		return p.(*pool), nil
	}
	p, _ := r.pools.LoadOrStore(key, &pool{rt: r, key: key, max: r.cfg.MaxVMsPerPool, lastUsed: r.now()})
	if r.closed.Load() {
		// Close may have missed a pool stored while it ran.
		r.Drop(key)
		return nil, ErrClosed
	}
	return p.(*pool), nil
}

// programPool is pool for a call of prog. The pool that prog last ran in
// is remembered on it: a program is almost always run under one key, and
// comparing the key costs less than hashing it. A remembered pool may
// since have been dropped; pool.get says so and the caller forgets it
// (forgetPool).
func (r *Runtime) programPool(key PoolKey, prog *Program) (*pool, error) {
	if p := prog.pool.Load(); p != nil && p.rt == r && p.key == key {
		return p, nil
	}
	p, err := r.pool(key)
	if err == nil {
		prog.pool.Store(p)
	}
	return p, err
}

// forgetPool forgets p as the pool prog last ran in.
func forgetPool(prog *Program, p *pool) {
	prog.pool.CompareAndSwap(p, nil)
}

// setBoundsLocked applies a call's bounds: zero max means the Runtime's,
// and min is at most max. A higher max lets waiting calls build VMs.
func (p *pool) setBoundsLocked(minVMs, maxVMs int) {
	if maxVMs <= 0 {
		maxVMs = p.rt.cfg.MaxVMsPerPool
	}
	p.min, p.max = max(0, min(minVMs, maxVMs)), maxVMs
	p.grantLocked()
}

// get returns an idle VM (warm), or builds one while the pool is below its
// maximum (cold), or waits for a VM to come back until ctx ends.
func (p *pool) get(ctx context.Context, minVMs, maxVMs int) (*vm, bool, error) {
	p.mu.Lock()
	if p.dropped {
		p.mu.Unlock()
		return nil, false, errPoolGone
	}
	// lastUsed is not set here: a call that gets a VM keeps the pool
	// live until its put, which sets it, and a waiting call keeps it too.
	p.setBoundsLocked(minVMs, maxVMs)
	if n := len(p.idle); n > 0 {
		v := p.idle[n-1].v
		p.idle[n-1] = idleVM{}
		p.idle = p.idle[:n-1]
		p.rt.idleVMs.Add(-1)
		p.fillLocked()
		p.mu.Unlock()
		return v, false, nil
	}
	if p.live < p.max {
		p.live++
		p.fillLocked()
		p.mu.Unlock()
		return p.rt.build(), true, nil
	}
	ch := make(chan *vm, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()

	select {
	case v := <-ch:
		if v == nil {
			return p.rt.build(), true, nil
		}
		return v, false, nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	if i := slices.Index(p.waiters, ch); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
		p.mu.Unlock()
		return nil, false, ctx.Err()
	}
	p.mu.Unlock()
	// A VM, or the right to build one, was handed over meanwhile: pass it on.
	if v := <-ch; v != nil {
		p.put(v, true)
	} else {
		p.mu.Lock()
		p.live--
		p.grantLocked()
		p.mu.Unlock()
	}
	return nil, false, ctx.Err()
}

// put returns v to the pool (to the oldest waiting call, else to the idle
// stack), or closes it when it is not to be reused, the pool is above its
// maximum or the pool is gone.
func (p *pool) put(v *vm, keep bool) {
	p.putAt(v, keep, p.rt.now())
}

// putAt is put with the current time of the pool's clock.
func (p *pool) putAt(v *vm, keep bool, now time.Time) {
	p.mu.Lock()
	p.lastUsed = now
	discard := p.returnLocked(v, keep, now)
	p.fillLocked()
	p.mu.Unlock()
	if discard {
		p.rt.closeVM(v)
	}
}

// returnLocked gives v to the oldest waiter or the idle stack when it may
// be kept; otherwise it counts v out of the pool, lets a waiter build a VM
// instead, and reports that the caller must close v.
func (p *pool) returnLocked(v *vm, keep bool, now time.Time) (discard bool) {
	if keep && !p.dropped && p.live <= p.max {
		if len(p.waiters) > 0 {
			ch := p.waiters[0]
			p.waiters = slices.Delete(p.waiters, 0, 1)
			ch <- v
			return false
		}
		p.idle = append(p.idle, idleVM{v: v, since: now})
		p.rt.idleVMs.Add(1)
		return false
	}
	p.live--
	p.grantLocked()
	return true
}

// grantLocked lets the oldest waiters build VMs while the pool is below its
// maximum; each counts in live from now on.
func (p *pool) grantLocked() {
	for len(p.waiters) > 0 && p.live < p.max {
		p.live++
		ch := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		ch <- nil
	}
}

// fillLocked starts building VMs in the background when the pool has fewer
// than its minimum.
func (p *pool) fillLocked() {
	if p.filling || p.dropped || p.live >= p.min {
		return
	}
	p.filling = true
	go p.fill()
}

// fill builds VMs, one at a time, until the pool has its minimum.
func (p *pool) fill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.dropped && p.live < p.min && !p.rt.closed.Load() {
		p.live++
		p.mu.Unlock()
		v := p.rt.build()
		p.mu.Lock()
		if p.returnLocked(v, true, p.rt.now()) {
			p.mu.Unlock()
			p.rt.release(v)
			p.mu.Lock()
		}
	}
	p.filling = false
}

// drop closes the idle VMs and marks the pool so returning VMs are closed.
func (p *pool) drop() {
	p.mu.Lock()
	p.dropped = true
	idle := p.idle
	p.idle = nil
	p.live -= len(idle)
	p.rt.idleVMs.Add(-int64(len(idle)))
	p.mu.Unlock()
	for _, iv := range idle {
		p.rt.release(iv.v)
	}
}

// reapInterval is how often the reaper looks for idle VMs: often enough
// that a VM lives at most a quarter longer than the idle timeout.
func reapInterval(idle time.Duration) time.Duration {
	return min(max(idle/4, time.Millisecond), 15*time.Second)
}

// reapEvery runs reap every d until Close.
func (r *Runtime) reapEvery(d time.Duration) {
	defer close(r.reaperDone)
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-r.stopReaper:
			return
		case <-tick.C:
			r.reap(r.now())
		}
	}
}

// reap closes the VMs that have been idle since IdleTimeout before now,
// oldest first, keeping each pool's minimum, and forgets the pools left
// without VMs, waiters or a minimum that no call used since then.
func (r *Runtime) reap(now time.Time) {
	cutoff := now.Add(-r.cfg.IdleTimeout)
	var closing []*vm
	r.pools.Range(func(key, val any) bool {
		p := val.(*pool)
		p.mu.Lock()
		defer p.mu.Unlock()
		// The stack is ordered by return time, so the oldest are at the bottom.
		n := 0
		for n < len(p.idle) && !p.idle[n].since.After(cutoff) && p.live-n > p.min {
			closing = append(closing, p.idle[n].v)
			n++
		}
		if n > 0 {
			p.idle = slices.Delete(p.idle, 0, n)
			p.live -= n
			r.idleVMs.Add(-int64(n))
		}
		// The VMs kept for the minimum forget their last user.
		for _, iv := range p.idle {
			if iv.since.After(cutoff) {
				break
			}
			iv.v.forgetUser()
		}
		if !p.dropped && p.live == 0 && p.min == 0 && len(p.waiters) == 0 && !p.lastUsed.After(cutoff) {
			// Removed while locked: a call that still finds the pool sees
			// dropped and looks the key up again.
			p.dropped = true
			r.pools.CompareAndDelete(key, p)
			r.reapedPools.Add(1)
		}
		return true
	})
	for _, v := range closing {
		r.release(v)
		r.reapedVMs.Add(1)
	}
}

// build makes a VM for a pool that has counted it.
func (r *Runtime) build() *vm {
	v := newVM(r.vmcfg)
	r.vms.Add(1)
	if r.guard != nil {
		r.guard.add(v.dl)
	}
	return v
}

// closeVM closes a VM that is not reused after its call.
func (r *Runtime) closeVM(v *vm) {
	r.release(v)
	r.discarded.Add(1)
}

// release closes a VM and forgets it.
func (r *Runtime) release(v *vm) {
	if r.guard != nil {
		r.guard.remove(v.dl)
	}
	v.close()
	r.vms.Add(-1)
}
