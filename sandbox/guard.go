package sandbox

import (
	"errors"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The heap guard.
//
// gopher-lua has no memory limit, and Go has none per goroutine. Every
// built-in that can build a large value in one step is capped, and the ..
// operator too (see concat.go), but a script can still allocate many
// capped values in a loop until its deadline. The heap guard is the
// process-level bound: while calls are running it polls the heap's size
// (runtime/metrics, a few microseconds) every Config.HeapCheckInterval. When
// the heap passes Config.HeapLimit and some running call is estimated to
// have allocated at least minVictimBytes (bytes built by concatenation and
// the capped built-ins, plus 16 bytes per instruction), it forces a
// collection, so garbage does not count, and if the live heap is still over
// the limit it interrupts the call with the largest estimate with a "limit"
// error; its VM is discarded. Calls waiting for host I/O and calls below
// minVictimBytes are never chosen, so a heap grown by something else than
// handlers neither makes the guard kill small, innocent calls nor collect
// at every interval. Each check
// interrupts at most one call; the next check, one interval later, sees
// whether that was enough. A call that allocates fast (about 8 MiB by its
// estimate) also asks for a check at once, which keeps the overshoot of a
// fast allocator small. VMs register with the guard when they are built,
// not per call, and the guard polls while any VM exists.

// errHeapLimit is what the guard interrupts a call with.
var errHeapLimit = errors.New("heap limit")

const (
	heapMetric = "/memory/classes/heap/objects:bytes"
	// minVictimBytes is the smallest allocation estimate of a call the
	// guard interrupts.
	minVictimBytes = 1 << 20
	// bytesPerStep is what the estimate charges per instruction: a table
	// slot or a boxed number is 16 to 32 bytes.
	bytesPerStep = 16
)

type heapGuard struct {
	limit    uint64
	interval time.Duration

	mu     sync.Mutex
	vms    map[*deadline]struct{} // the deadline of every live VM
	parked bool

	wake chan struct{}
	now  chan struct{} // calls' nudges: check before the next tick
	stop chan struct{}
	done chan struct{}

	interrupts atomic.Uint64
	sample     []metrics.Sample
}

func newHeapGuard(limit uint64, interval time.Duration) *heapGuard {
	g := &heapGuard{
		limit:    limit,
		interval: interval,
		vms:      make(map[*deadline]struct{}),
		parked:   true,
		wake:     make(chan struct{}, 1),
		now:      make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		sample:   []metrics.Sample{{Name: heapMetric}},
	}
	go g.run()
	return g
}

// add registers the deadline of a new VM. VMs register once, not per
// call, so a call costs the guard nothing; the guard polls while any VM
// exists.
func (g *heapGuard) add(d *deadline) {
	d.nudge = g.now
	g.mu.Lock()
	g.vms[d] = struct{}{}
	wake := g.parked
	g.parked = false
	g.mu.Unlock()
	if wake {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// remove unregisters a closed VM.
func (g *heapGuard) remove(d *deadline) {
	g.mu.Lock()
	delete(g.vms, d)
	g.mu.Unlock()
}

func (g *heapGuard) close() {
	close(g.stop)
	<-g.done
}

func (g *heapGuard) run() {
	defer close(g.done)
	timer := time.NewTimer(g.interval)
	timer.Stop()
	for {
		g.mu.Lock()
		if len(g.vms) == 0 {
			g.parked = true
		}
		parked := g.parked
		g.mu.Unlock()
		if parked {
			select {
			case <-g.wake:
			case <-g.stop:
				return
			}
			continue
		}
		timer.Reset(g.interval)
		select {
		case <-timer.C:
		case <-g.now:
			timer.Stop()
		case <-g.stop:
			return
		}
		g.check()
	}
}

func (g *heapGuard) heap() uint64 {
	metrics.Read(g.sample)
	if g.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return g.sample[0].Value.Uint64()
}

// check interrupts the worst running call when the live heap is over the
// limit. It forces a collection only when some call is large enough to be
// blamed, so a heap grown by something else does not make it collect at
// every interval.
func (g *heapGuard) check() {
	if g.heap() <= g.limit || g.worst() == nil {
		return
	}
	runtime.GC()
	if g.heap() <= g.limit {
		return
	}
	victim := g.worst()
	if victim == nil {
		return
	}
	// The VM may have moved on to another call since its score was read:
	// take the current call's number, then judge that call's own score.
	gen := victim.generation()
	if score(victim) < minVictimBytes {
		return
	}
	if victim.kill(errHeapLimit, gen) {
		g.interrupts.Add(1)
	}
}

// worst returns the running call with the largest allocation estimate of
// at least minVictimBytes, passing over calls waiting for host I/O.
func (g *heapGuard) worst() *deadline {
	var victim *deadline
	var worst int64
	g.mu.Lock()
	defer g.mu.Unlock()
	for d := range g.vms {
		if !d.running.Load() || d.inHost.Load() {
			continue
		}
		if sc := score(d); sc >= minVictimBytes && sc > worst {
			victim, worst = d, sc
		}
	}
	return victim
}

// score is a call's allocation estimate.
func score(d *deadline) int64 {
	return d.builtPub.Load() + bytesPerStep*d.published.Load()
}
