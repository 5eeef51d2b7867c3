package queue

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Idle partitions. A partition whose read found nothing waits for a wake-up
// instead of polling its stream itself: one watcher per [Queue.Run] looks,
// every PollInterval, at the newest entry of every waiting partition's
// stream, all in one pipeline (one round trip per node on Redis Cluster),
// and wakes the partitions that have an entry newer than the one it last
// woke them for. An idle replica thus costs one round trip per
// PollInterval, whatever the number of partitions it owns.
//
// The look is an XREVRANGE of one entry rather than XINFO GROUPS: a
// group's lag is unknown once entries were deleted (the queue deletes every
// entry it processed), and the embedded store does not report it. Entry ids
// only grow, and a woken partition waits again only after a read that found
// nothing new, so once woken after a look at entry N it has been delivered
// every entry up to N (or the entry was deleted meanwhile): only a newer
// entry can be undelivered. A missing stream, or an empty one, has nothing
// to read. A partition that starts to wait just after a look is looked at
// in the next one, so an event enqueued elsewhere waits up to about two
// intervals; a partition taken over starts afresh, at worst with one read
// for nothing. When a look fails, the partitions are woken and read for
// themselves.

// idleState is what the watcher knows of one owned partition. A partition
// that changes hands gets a new one.
type idleState struct {
	// waiting is set by the partition while it waits for a wake-up.
	waiting atomic.Bool
	// seen is the newest entry id the watcher woke the partition for ("" for
	// none yet). Only the watcher uses it.
	seen string
}

// watcher wakes the idle partitions of one [Queue.Run] that have entries to
// read.
type watcher struct {
	q     *Queue
	parts []atomic.Pointer[idleState] // by partition; nil when not owned
	// failing is set while the watcher's round trips fail, so that a
	// failure is reported once.
	failing bool
}

func newWatcher(q *Queue) *watcher {
	return &watcher{q: q, parts: make([]atomic.Pointer[idleState], q.cfg.Partitions)}
}

// own registers a partition this replica has started processing; the
// returned function, called when the partition stops, forgets it.
func (w *watcher) own(p int) (*idleState, func()) {
	s := &idleState{}
	w.parts[p].Store(s)
	// A newer owner of p on this replica may have registered meanwhile.
	return s, func() { w.parts[p].CompareAndSwap(s, nil) }
}

// run checks the waiting partitions every PollInterval until ctx ends.
func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(w.q.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check(ctx)
		}
	}
}

// check looks at the newest entry of every waiting partition in one
// pipeline and wakes those with an entry newer than their last wake-up's.
// When the round trip fails, in whole or in part, every partition looked
// at is woken, so that each reads (and reports a failure) itself.
func (w *watcher) check(ctx context.Context) {
	var parts []int
	var states []*idleState
	for p := range w.parts {
		if s := w.parts[p].Load(); s != nil && s.waiting.Load() {
			parts = append(parts, p)
			states = append(states, s)
		}
	}
	if len(parts) == 0 {
		return
	}
	newest := make([]*redis.XMessageSliceCmd, len(parts))
	_, err := w.q.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, p := range parts {
			newest[i] = pl.XRevRangeN(ctx, w.q.streamKey(p), "+", "-", 1)
		}
		return nil
	})
	if ctx.Err() != nil {
		return
	}
	if err != nil && !w.failing {
		w.q.log.Warn("queue: looking for new events failed; idle partitions read for themselves", "err", err)
	}
	w.failing = err != nil
	for i, p := range parts {
		if err == nil {
			msgs := newest[i].Val()
			if len(msgs) == 0 || !idAfter(msgs[0].ID, states[i].seen) {
				continue
			}
			states[i].seen = msgs[0].ID
		}
		select {
		case w.q.wake[p] <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// idAfter reports whether stream entry id a is newer than b; every id is
// newer than "". An id that cannot be read counts as newer.
func idAfter(a, b string) bool {
	if b == "" {
		return true
	}
	ams, aseq, okA := splitID(a)
	bms, bseq, okB := splitID(b)
	if !okA || !okB {
		return true
	}
	if ams != bms {
		return ams > bms
	}
	return aseq > bseq
}

// splitID reads a stream entry id, "ms-seq".
func splitID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}
