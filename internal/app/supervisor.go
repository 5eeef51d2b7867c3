package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// service is one long-running part of the process: it runs until ctx ends,
// drains, and returns nil; any error it returns is a failure of the process.
type service struct {
	name string
	run  func(ctx context.Context) error
}

// supervisor runs services on goroutines of their own under one context.
// The first service that fails (returns an error, or returns at all before
// the context ends) cancels that context, so the others drain and stop;
// wait collects every service's error. It is errgroup's contract plus
// names, so that a failure and a service still draining at the deadline
// can be told apart in the error.
type supervisor struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	errs    []error
	running map[string]int
}

// newSupervisor returns a supervisor whose services run under a child of
// ctx.
func newSupervisor(ctx context.Context) *supervisor {
	ctx, cancel := context.WithCancel(ctx)
	return &supervisor{ctx: ctx, cancel: cancel, running: map[string]int{}}
}

// goRun starts s.
func (g *supervisor) goRun(s service) {
	g.mu.Lock()
	g.running[s.name]++
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := s.run(g.ctx)
		if err == nil && g.ctx.Err() == nil {
			err = errors.New("stopped before shutdown")
		}
		g.mu.Lock()
		if g.running[s.name]--; g.running[s.name] == 0 {
			delete(g.running, s.name)
		}
		if err != nil {
			g.errs = append(g.errs, fmt.Errorf("%s: %w", s.name, err))
		}
		g.mu.Unlock()
		if err != nil {
			g.cancel()
		}
	}()
}

// Done is closed when the services are told to stop: at the first failure,
// or when stop is called or the parent context ends.
func (g *supervisor) Done() <-chan struct{} { return g.ctx.Done() }

// stop tells every service to drain and stop.
func (g *supervisor) stop() { g.cancel() }

// wait waits for every service to return, for at most timeout, and returns
// their errors, the first failure first. Services still running at the
// deadline are named in the error; their goroutines are left behind.
func (g *supervisor) wait(timeout time.Duration) error {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var late error
	select {
	case <-done:
	case <-timer.C:
		g.mu.Lock()
		names := make([]string, 0, len(g.running))
		for name := range g.running {
			names = append(names, name)
		}
		g.mu.Unlock()
		slices.Sort(names)
		late = fmt.Errorf("%s still running %s after shutdown began", strings.Join(names, ", "), timeout)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(append(slices.Clone(g.errs), late)...)
}
