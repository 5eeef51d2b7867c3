package sessions

import (
	"context"
	"sync"
)

// keyedQueue serializes work per key inside one process. Waiters are served
// in arrival order (a channel's blocked senders are woken first-in first-out),
// and entries disappear when nobody holds or waits for them. Entries are
// reused: a turn costs no allocation here.
type keyedQueue struct {
	mu   sync.Mutex
	m    map[string]*queueEntry
	free sync.Pool // of *queueEntry, each with an empty slot
}

type queueEntry struct {
	slot chan struct{}
	refs int
}

// heldKey is a key acquired from a keyedQueue; its zero value holds nothing.
type heldKey struct {
	q   *keyedQueue
	key string
	e   *queueEntry
}

// acquire blocks until the caller holds key or ctx ends. The key is held
// until the returned heldKey's release.
func (q *keyedQueue) acquire(ctx context.Context, key string) (heldKey, error) {
	q.mu.Lock()
	e := q.m[key]
	if e == nil {
		e, _ = q.free.Get().(*queueEntry)
		if e == nil {
			e = &queueEntry{slot: make(chan struct{}, 1)}
		}
		q.m[key] = e
	}
	e.refs++
	q.mu.Unlock()

	select {
	case e.slot <- struct{}{}:
		return heldKey{q: q, key: key, e: e}, nil
	case <-ctx.Done():
		q.leave(key, e)
		return heldKey{}, ctx.Err()
	}
}

// release frees the key for its next waiter. Releasing a zero heldKey
// does nothing; a key must be released once.
func (h heldKey) release() {
	if h.e == nil {
		return
	}
	<-h.e.slot
	h.q.leave(h.key, h.e)
}

func (q *keyedQueue) leave(key string, e *queueEntry) {
	q.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(q.m, key)
	}
	q.mu.Unlock()
	if last {
		// Nobody holds it (a holder empties the slot before leaving) and
		// nobody waits: it can serve another key.
		q.free.Put(e)
	}
}
