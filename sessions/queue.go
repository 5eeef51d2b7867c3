package sessions

import (
	"context"
	"sync"
)

// keyedQueue serializes work per key inside one process. Waiters are served
// in arrival order (a channel's blocked senders are woken first-in first-out),
// and entries disappear when nobody holds or waits for them.
type keyedQueue struct {
	mu sync.Mutex
	m  map[string]*queueEntry
}

type queueEntry struct {
	slot chan struct{}
	refs int
}

// acquire blocks until the caller holds key or ctx ends. The returned
// function releases the key and must be called exactly once.
func (q *keyedQueue) acquire(ctx context.Context, key string) (func(), error) {
	q.mu.Lock()
	e := q.m[key]
	if e == nil {
		e = &queueEntry{slot: make(chan struct{}, 1)}
		q.m[key] = e
	}
	e.refs++
	q.mu.Unlock()

	select {
	case e.slot <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-e.slot
				q.leave(key, e)
			})
		}, nil
	case <-ctx.Done():
		q.leave(key, e)
		return nil, ctx.Err()
	}
}

func (q *keyedQueue) leave(key string, e *queueEntry) {
	q.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(q.m, key)
	}
	q.mu.Unlock()
}
