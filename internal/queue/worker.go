package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// owned is a partition this replica processes.
type owned struct {
	stop   context.CancelFunc // stop taking entries
	cancel context.CancelFunc // abandon the in-flight entry
	done   chan struct{}
}

// Run processes events until ctx ends. It takes a fair share of the
// partitions (partitions / live replicas, rounded up) by lease, renews the
// leases, and processes each owned partition in order on its own goroutine;
// one watcher looks for events enqueued elsewhere in all the idle
// partitions at once (see [watcher]). When ctx ends, each partition
// finishes its in-flight entry (up to DrainTimeout) and its lease is
// released, so another replica takes over at once. Run returns nil after a
// graceful stop.
func (q *Queue) Run(ctx context.Context) error {
	if q.cfg.Runner == nil || q.cfg.Sender == nil || q.cfg.Settings == nil {
		return errors.New("queue: Run needs a Runner, a Sender and Settings")
	}
	held := map[int]*owned{}
	leaving := map[int]*owned{} // given back, finishing their in-flight entry
	w := newWatcher(q)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		w.run(watchCtx)
	}()
	defer func() {
		stopWatch()
		<-watching
		for _, o := range held {
			o.stop()
		}
		for _, o := range leaving {
			<-o.done
		}
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		for p, o := range held {
			<-o.done
			releaseScript.Run(cleanup, q.rdb, []string{q.leaseKey(p)}, q.cfg.ID)
		}
		q.rdb.ZRem(cleanup, q.membersKey(), q.cfg.ID)
	}()
	offset := rand.IntN(q.cfg.Partitions)
	tick := time.NewTicker(q.cfg.Lease / 3)
	defer tick.Stop()
	for {
		if err := q.balance(ctx, w, held, leaving, offset); err != nil && ctx.Err() == nil {
			q.log.Warn("queue: partition balancing failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// balance announces this replica, renews its leases and takes or gives back
// partitions to hold its fair share. A partition given back (leaving) keeps
// its lease renewed until its in-flight entry is done, and is released
// then: were the lease left to lapse, another replica could take the
// partition and claim that entry while it is still being sent, and send
// its reply a second time.
func (q *Queue) balance(ctx context.Context, w *watcher, held, leaving map[int]*owned, offset int) error {
	now := time.Now()
	var live *redis.IntCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, q.membersKey(), redis.Z{Score: float64(now.Add(q.cfg.Lease).UnixMilli()), Member: q.cfg.ID})
		p.ZRemRangeByScore(ctx, q.membersKey(), "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		live = p.ZCard(ctx, q.membersKey())
		return nil
	})
	if err != nil {
		return fmt.Errorf("announce replica: %w", err)
	}
	for p, o := range leaving {
		select {
		case <-o.done: // released by the goroutine that waited for it
			delete(leaving, p)
			continue
		default:
		}
		ok, err := renewScript.Run(ctx, q.rdb, []string{q.leaseKey(p)}, q.cfg.ID, q.cfg.Lease.Milliseconds()).Int()
		if err == nil && ok == 0 {
			o.cancel()
			delete(leaving, p)
		}
	}
	for p, o := range held {
		ok, err := renewScript.Run(ctx, q.rdb, []string{q.leaseKey(p)}, q.cfg.ID, q.cfg.Lease.Milliseconds()).Int()
		if err != nil || ok == 1 {
			continue // a failed renewal is retried at the next tick; the lease may still hold
		}
		q.log.Warn("queue: lost a partition lease", "partition", p)
		o.stop()
		o.cancel()
		delete(held, p)
	}
	n := max(int(live.Val()), 1)
	share := (q.cfg.Partitions + n - 1) / n
	for p, o := range held {
		if len(held) <= share {
			break
		}
		// Give the partition back once its in-flight entry is done; the
		// lease is renewed until then.
		o.stop()
		delete(held, p)
		leaving[p] = o
		go func() {
			<-o.done
			releaseScript.Run(context.WithoutCancel(ctx), q.rdb, []string{q.leaseKey(p)}, q.cfg.ID)
		}()
	}
	for i := 0; i < q.cfg.Partitions && len(held) < share; i++ {
		p := (offset + i) % q.cfg.Partitions
		if held[p] != nil || leaving[p] != nil {
			continue
		}
		ok, err := q.rdb.SetNX(ctx, q.leaseKey(p), q.cfg.ID, q.cfg.Lease).Result()
		if err != nil {
			return fmt.Errorf("take partition lease: %w", err)
		}
		if ok {
			held[p] = q.start(ctx, w, p)
		}
	}
	return nil
}

// start runs partition p on its own goroutine, watched by w while idle.
func (q *Queue) start(ctx context.Context, w *watcher, p int) *owned {
	stopCtx, stop := context.WithCancel(ctx)
	idle, forget := w.own(p)
	workCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o := &owned{stop: stop, cancel: cancel, done: make(chan struct{})}
	go func() {
		<-stopCtx.Done()
		select {
		case <-o.done:
		case <-time.After(q.cfg.DrainTimeout):
			cancel()
		}
	}()
	go func() {
		defer close(o.done)
		defer cancel()
		defer forget()
		q.runPartition(stopCtx, workCtx, p, idle)
	}()
	return o
}

// runPartition processes partition p in order until stop ends. On taking
// over, it first loads the partition's parked conversations and claims every
// pending entry of the group (a previous owner's unfinished work) and
// processes those in order. Between reads it runs the parked entries that
// are due. When a read finds nothing, it waits, marked idle, until it is
// woken (by an Enqueue in this process, or by the watcher for an entry
// enqueued elsewhere) or its first parked entry is due.
func (q *Queue) runPartition(stop, work context.Context, p int, idle *idleState) {
	key := q.streamKey(p)
	err := q.createGroup(work, key)
	if err != nil {
		q.log.Warn("queue: create consumer group", "partition", p, "err", err)
	}
	var due dueSet
	reclaim := true
	for stop.Err() == nil {
		if due == nil {
			// (Re)load the parked conversations: at the start, and after a
			// failure that may have left the copy behind Redis.
			if due, err = q.loadDue(work, p); err != nil {
				if stop.Err() == nil {
					q.log.Warn("queue: read parked conversations", "partition", p, "err", err)
					q.sleep(stop, q.cfg.PollInterval)
				}
				continue
			}
		}
		if err := q.resumeDue(stop, work, p, due); err != nil {
			if errors.Is(err, errLeaseLost) || work.Err() != nil {
				return
			}
			q.log.Warn("queue: parked entry left for later", "partition", p, "err", err)
		}
		var msgs []redis.XMessage
		var err error
		if reclaim {
			msgs, err = q.claimPending(work, key)
			if err == nil && len(msgs) == 0 {
				reclaim = false
				continue
			}
		} else {
			msgs, err = q.readNew(work, key)
		}
		if err != nil {
			if stop.Err() == nil {
				q.log.Warn("queue: read partition", "partition", p, "err", err)
				if strings.HasPrefix(err.Error(), "NOGROUP") {
					// The group is gone (its creation failed when the
					// partition started, or Redis lost it): create it again,
					// or every read would fail until the lease moves.
					if err := q.createGroup(work, key); err != nil {
						q.log.Warn("queue: create consumer group", "partition", p, "err", err)
					}
				}
				q.sleep(stop, q.cfg.PollInterval)
			}
			reclaim = true
			continue
		}
		if len(msgs) == 0 {
			q.waitIdle(stop, p, idle, due)
			continue
		}
		for _, m := range msgs {
			if stop.Err() != nil {
				return
			}
			if err := q.process(work, p, key, m, reclaim, due); err != nil {
				if errors.Is(err, errLeaseLost) {
					return
				}
				if work.Err() == nil {
					q.log.Warn("queue: entry left pending", "partition", p, "id", m.ID, "err", err)
				}
				reclaim = true // start again from the oldest pending entry
				due = nil      // and from Redis's parked conversations
				q.sleep(stop, q.cfg.PollInterval)
				break
			}
		}
	}
}

// createGroup creates the partition's stream and consumer group, unless
// the group exists. A new group starts at the stream's first entry.
func (q *Queue) createGroup(ctx context.Context, key string) error {
	err := q.rdb.XGroupCreateMkStream(ctx, key, group, "0-0").Err()
	if err != nil && strings.Contains(err.Error(), "BUSYGROUP") {
		return nil
	}
	return err
}

// waitIdle waits, marked idle for the watcher, until partition p is woken,
// its first parked entry is due, or stop ends.
func (q *Queue) waitIdle(stop context.Context, p int, idle *idleState, due dueSet) {
	var dueC <-chan time.Time
	if at, ok := due.next(); ok {
		t := time.NewTimer(max(time.Until(at), 0))
		defer t.Stop()
		dueC = t.C
	}
	idle.waiting.Store(true)
	defer idle.waiting.Store(false)
	select {
	case <-stop.Done():
	case <-q.wake[p]:
	case <-dueC:
	}
}

// claimPending takes over up to Batch pending entries of the group, from any
// consumer, oldest first.
func (q *Queue) claimPending(ctx context.Context, key string) ([]redis.XMessage, error) {
	msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: key, Group: group, Consumer: q.cfg.ID, MinIdle: 0, Start: "0-0", Count: int64(q.cfg.Batch),
	}).Result()
	if err != nil {
		return nil, err
	}
	// Entries trimmed or deleted while pending come back empty: acknowledge them.
	live := msgs[:0]
	for _, m := range msgs {
		if m.Values == nil {
			q.rdb.XAck(ctx, key, group, m.ID)
			continue
		}
		live = append(live, m)
	}
	return live, nil
}

func (q *Queue) readNew(ctx context.Context, key string) ([]redis.XMessage, error) {
	res, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: q.cfg.ID, Streams: []string{key, ">"}, Count: int64(q.cfg.Batch), Block: -1,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil || len(res) == 0 {
		return nil, err
	}
	return res[0].Messages, nil
}

// process runs one entry: the turn (idempotent), the send (unless a
// previous owner already sent it), the sent marker, then the acknowledgement.
// An entry of a conversation with parked entries is parked behind them
// without running; an entry whose turn is refused for now is parked. An
// error means the entry stays pending.
func (q *Queue) process(ctx context.Context, p int, key string, m redis.XMessage, reclaimed bool, due dueSet) error {
	raw, _ := m.Values["event"].(string)
	ev := &msg.Event{}
	if err := json.Unmarshal([]byte(raw), ev); err != nil {
		q.log.Error("queue: dropping an unreadable entry", "partition", p, "id", m.ID, "err", err)
		return q.ack(ctx, key, m.ID, "")
	}
	if reclaimed {
		n, err := q.rdb.Exists(ctx, q.sentKey(p, ev)).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return q.ack(ctx, key, m.ID, "")
		}
	}
	member := convMember(ev.Bot, ev.Key())
	pe := parkedEntry{Event: json.RawMessage(raw)}
	if _, parked := due[member]; parked {
		return q.park(ctx, p, m.ID, member, pe, time.Time{}, due)
	}
	ctx, span := startTurn(ctx, ev, []byte(raw))
	defer span.End()
	finish := func(ctx context.Context, sent string) error { return q.ack(ctx, key, m.ID, sent) }
	turn, rs, attempts, err := q.runStreamed(ctx, ev, 0)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if pe, at, ok := q.deferral(err, pe, attempts); ok {
			return q.park(ctx, p, m.ID, member, pe, at, due)
		}
		return q.giveUp(ctx, ev, "turn", attempts, err, finish)
	}
	return q.deliver(ctx, p, ev, turn, rs, finish)
}

// deliver sends a turn's replies unless they were sent already, then calls
// finish with the sent marker to set (empty when nothing was sent), which
// marks the reply sent and removes the entry. rs is the turn's reply
// stream, nil when it had none.
func (q *Queue) deliver(ctx context.Context, p int, ev *msg.Event, turn *msg.TurnResult, rs channels.ReplyStream,
	finish func(ctx context.Context, sent string) error) error {
	sent := q.sentKey(p, ev)
	// Just before sending, make sure the partition is still ours (a replica
	// that stalled past its lease must leave the entry to the new owner) and
	// that nobody sent this reply meanwhile: one round trip.
	var owner *redis.StringCmd
	var already *redis.IntCmd
	if _, err := q.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		owner = pl.Get(ctx, q.leaseKey(p))
		already = pl.Exists(ctx, sent)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if owner.Val() != q.cfg.ID {
		stopStream(ctx, rs)
		return errLeaseLost
	}
	if already.Val() > 0 {
		stopStream(ctx, rs)
		return finish(ctx, "")
	}
	attempts, err := q.send(ctx, ev, turn, rs)
	if err != nil {
		if ctx.Err() != nil || (attempts == 0 && !isPermanent(err)) {
			return err // not tried yet (settings unreadable): stays pending
		}
		return q.giveUp(ctx, ev, "send", attempts, err, finish)
	}
	return q.record(ctx, ev, sent, finish)
}

// record calls finish once a reply is out, even while this replica is
// being stopped. A failure (Redis cut off or restarting for a moment) is
// retried while the partition is ours: were the entry left pending
// without its sent marker, its next claim, by this replica as by another,
// would send the reply again. Only a lost lease, or a shutdown past
// DrainTimeout, leaves it to the next owner, who sends it again.
func (q *Queue) record(ctx context.Context, ev *msg.Event, sent string, finish func(ctx context.Context, sent string) error) error {
	for try := 1; ; try++ {
		done, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := finish(done, sent)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, errLeaseLost) {
			return err
		}
		if try == 1 {
			q.log.Warn("queue: a sent reply could not be recorded yet; retrying", "bot", ev.Bot,
				"channel", ev.Channel, "event", ev.ID, "err", err)
		}
		// Quickly, so that it is recorded before the lease could lapse.
		q.sleep(ctx, min(q.backoff(try, 0), q.cfg.Lease/4))
	}
}

// ack marks the reply sent (when sent is set) and acknowledges and deletes
// the entry, in one round trip.
func (q *Queue) ack(ctx context.Context, key, id, sent string) error {
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if sent != "" {
			p.SetNX(ctx, sent, "1", q.cfg.DedupTTL)
		}
		p.XAck(ctx, key, group, id)
		p.XDel(ctx, key, id)
		return nil
	})
	return err
}

// giveUp moves the event to the dead letters, then removes its entry with
// finish.
func (q *Queue) giveUp(ctx context.Context, ev *msg.Event, stage string, attempts int, cause error, finish func(ctx context.Context, sent string) error) error {
	if isDiscard(cause) {
		q.log.Info("queue: event dropped", "bot", ev.Bot, "channel", ev.Channel, "event", ev.ID, "stage", stage, "err", cause)
		return finish(ctx, "")
	}
	q.log.Warn("queue: event moved to the dead letters", "bot", ev.Bot, "channel", ev.Channel,
		"event", ev.ID, "stage", stage, "attempts", attempts, "err", cause)
	if err := q.deadLetter(ctx, ev, stage, attempts, cause); err != nil {
		return err
	}
	if q.cfg.OnDeadLetter != nil {
		q.cfg.OnDeadLetter(ev.Bot)
	}
	return finish(ctx, "")
}

// runTurn runs the event's turn, which was tried `tried` times before,
// retrying failures up to MaxAttempts tries in all unless they are
// [Permanent]. A [Later] failure returns at once, counted as a try: the
// caller parks the entry (see [Queue.deferral]) rather than wait with the
// partition. An [Unavailable] failure is retried with backoff without
// counting as a try, for up to MaxDelay in all: an outage of the store is
// waited out with the partition, in order, instead of sending the events
// it meets to the dead letters. The result's count is the tries so far.
func (q *Queue) runTurn(ctx context.Context, ev *msg.Event, tried int) (*msg.TurnResult, int, error) {
	var waited time.Duration // waiting out an unavailable store
	outage := 0
	for attempt := tried + 1; ; {
		res, err := q.cfg.Runner.Run(ctx, ev)
		if err == nil {
			return res, attempt, nil
		}
		if ctx.Err() != nil {
			return nil, attempt, err
		}
		if isUnavailable(err) && !isPermanent(err) && waited < q.cfg.MaxDelay {
			if outage++; outage == 1 {
				q.log.Warn("queue: the store is unavailable; the turn waits", "bot", ev.Bot, "channel", ev.Channel,
					"event", ev.ID, "err", err)
			}
			// Backing off, but not so far that the partition idles long
			// after the store is back.
			d := min(q.backoff(outage, 0), maxOutageWait)
			q.sleep(ctx, d)
			waited += d
			continue
		}
		if _, later := laterDelay(err); later || isPermanent(err) || attempt >= q.cfg.MaxAttempts {
			return nil, attempt, err
		}
		q.sleep(ctx, q.backoff(attempt, 0))
		attempt++
	}
}

// send delivers a turn's replies through the channel's adapter, retrying
// retryable failures with backoff and honouring the platform's Retry-After.
// A turn that streamed its reply is finished through its stream, which
// makes the streamed message final (or has nothing to finish, and the
// replies are sent as usual).
func (q *Queue) send(ctx context.Context, ev *msg.Event, res *msg.TurnResult, rs channels.ReplyStream) (int, error) {
	sender, ok := q.cfg.Sender(ev.Channel)
	if !ok {
		return 0, Permanent(fmt.Errorf("channel %q cannot send replies", ev.Channel))
	}
	settings, err := q.cfg.Settings(ctx, ev.Bot, ev.Channel)
	if err != nil {
		return 0, fmt.Errorf("channel settings: %w", err)
	}
	if res.Event == nil {
		res.Event = ev
	}
	for attempt := 1; ; attempt++ {
		err := finishOrSend(ctx, sender, settings, res, rs)
		if err == nil {
			return attempt, nil
		}
		var se *channels.SendError
		retryable := errors.As(err, &se) && se.Retryable
		if !retryable || attempt >= q.cfg.MaxAttempts || ctx.Err() != nil {
			return attempt, err
		}
		var after time.Duration
		if se != nil {
			after = se.RetryAfter
		}
		q.sleep(ctx, q.backoff(attempt, after))
	}
}

// backoff is the wait before try attempt+1: the platform's Retry-After when
// given, else Backoff doubled per try up to MaxBackoff, with jitter.
func (q *Queue) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	d := q.cfg.Backoff << min(attempt-1, 20)
	if d > q.cfg.MaxBackoff || d <= 0 {
		d = q.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func (q *Queue) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errLeaseLost stops processing an entry of a partition this replica no
// longer owns.
var errLeaseLost = errors.New("queue: partition lease lost")

// permanentError marks a failure that retrying cannot fix; discard drops
// the event instead of keeping it as a dead letter.
type permanentError struct {
	err     error
	discard bool
}

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix (an unknown
// bot): the queue moves the event to the dead letters at once.
func Permanent(err error) error { return permanentError{err: err} }

// Discard marks err as a failure after which the event has nowhere to go
// (its bot was deleted, or its conversation or user was erased after it was
// received): the queue drops the event at once, keeping no dead letter,
// since a dead letter would outlive the deletion or the erasure.
func Discard(err error) error { return permanentError{err: err, discard: true} }

func isPermanent(err error) bool {
	var pe permanentError
	return errors.As(err, &pe)
}

func isDiscard(err error) bool {
	var pe permanentError
	return errors.As(err, &pe) && pe.discard
}

// maxOutageWait bounds the wait between tries of a turn while the store
// is unavailable.
const maxOutageWait = 5 * time.Second

// unavailableError marks a failure of the store a turn needs (Redis
// unreachable, failing over, restarting).
type unavailableError struct{ err error }

func (e unavailableError) Error() string { return e.err.Error() }
func (e unavailableError) Unwrap() error { return e.err }

// Unavailable marks err as a failure of the shared store rather than of
// the event (Redis is unreachable, restarting or failing over): the queue
// retries the turn with backoff, holding the partition so that order is
// kept, without counting a try toward the dead letters, for up to
// Config.MaxDelay in all; past that the failure counts as a try.
func Unavailable(err error) error { return unavailableError{err} }

func isUnavailable(err error) bool {
	var ue unavailableError
	return errors.As(err, &ue)
}

// laterError marks a failure that clears by itself after a delay.
type laterError struct {
	err   error
	after time.Duration
}

func (e laterError) Error() string { return e.err.Error() }
func (e laterError) Unwrap() error { return e.err }

// minLater is the shortest wait before a [Later] failure is retried.
const minLater = 10 * time.Millisecond

// Later marks err as a failure that clears by itself after the given delay
// (the bot is over a rate or concurrency limit): the queue parks the event,
// and the later events of its conversation behind it, and retries the turn
// after the delay without counting a try toward the dead letters; the
// partition goes on with other conversations meanwhile.
func Later(err error, after time.Duration) error { return laterError{err, max(after, minLater)} }

func laterDelay(err error) (time.Duration, bool) {
	var le laterError
	if errors.As(err, &le) {
		return le.after, true
	}
	return 0, false
}
