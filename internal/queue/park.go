package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// Deferral. A turn refused for now ([Later]) is not waited for inline: its
// entry is parked, moved from the stream to a list per conversation
// (parkedKey) in the same script that acknowledges it, and the
// conversation gets a due time in the partition's due set. Later entries of
// a parked conversation queue behind it in the list, so the partition goes
// on with other conversations at once while each conversation keeps its
// order. When due, a conversation's first parked entry runs; once done it
// is removed (and the next one is due at once), or it is parked again with
// a new due time. Only the partition's lease holder changes its parked
// state, and the scripts check the lease, so the owner keeps the due set in
// memory (loaded when it takes the partition over) and asks Redis nothing
// on the common path.

// parkedEntry is an event set aside until its conversation may go on.
type parkedEntry struct {
	// Event is the event as enqueued.
	Event json.RawMessage `json:"event"`
	// Delayed is the sum of the [Later] delays so far, in milliseconds.
	Delayed int64 `json:"delayed_ms,omitempty"`
	// Attempts is how many tries were counted so far.
	Attempts int `json:"attempts,omitempty"`
}

// dueSet is the partition owner's copy of the partition's due set:
// conversation member -> when its first parked entry may run.
type dueSet map[string]time.Time

// loadDue reads partition p's due set.
func (q *Queue) loadDue(ctx context.Context, p int) (dueSet, error) {
	zs, err := q.rdb.ZRangeWithScores(ctx, q.dueKey(p), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read parked conversations: %w", err)
	}
	due := make(dueSet, len(zs))
	for _, z := range zs {
		if m, ok := z.Member.(string); ok {
			due[m] = time.UnixMilli(int64(z.Score))
		}
	}
	return due, nil
}

// next returns the earliest due time; ok is false when nothing is parked.
func (d dueSet) next() (at time.Time, ok bool) {
	for _, t := range d {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// ready lists the conversations due by now, earliest first.
func (d dueSet) ready(now time.Time) []string {
	var out []string
	for m, t := range d {
		if !t.After(now) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return d[a].Compare(d[b]) })
	return out
}

// deferral decides what follows a failed turn that has now been tried
// attempts times in all: ok reports that it waits (parked until at, with pe
// updated); otherwise it goes to the dead letters. A [Later] refusal waits
// without counting as a try while the delays add up to at most MaxDelay;
// past that it counts, and waits a backoff while tries are left.
func (q *Queue) deferral(err error, pe parkedEntry, attempts int) (parkedEntry, time.Time, bool) {
	after, later := laterDelay(err)
	if !later || isPermanent(err) {
		return pe, time.Time{}, false
	}
	if time.Duration(pe.Delayed)*time.Millisecond+after <= q.cfg.MaxDelay {
		pe.Delayed += after.Milliseconds()
		pe.Attempts = attempts - 1
		return pe, time.Now().Add(after), true
	}
	if attempts >= q.cfg.MaxAttempts {
		return pe, time.Time{}, false
	}
	pe.Attempts = attempts
	return pe, time.Now().Add(q.backoff(attempts, 0)), true
}

// dueMillis is at in unix milliseconds, rounded up so that a limit's
// Retry-After has passed when the entry runs.
func dueMillis(at time.Time) int64 { return (at.UnixMicro() + 999) / 1000 }

// park moves stream entry id to the end of its conversation's parked list
// and acknowledges it, in one script. A zero at queues it behind the
// entries already parked, keeping their due time.
func (q *Queue) park(ctx context.Context, p int, id, member string, pe parkedEntry, at time.Time, due dueSet) error {
	raw, err := json.Marshal(pe)
	if err != nil {
		return fmt.Errorf("encode parked entry: %w", err)
	}
	var atArg string
	if !at.IsZero() {
		atArg = strconv.FormatInt(dueMillis(at), 10)
	}
	res, err := parkScript.Run(ctx, q.rdb,
		[]string{q.leaseKey(p), q.streamKey(p), q.parkedKey(p, member), q.dueKey(p), q.parkedNKey(p)},
		q.cfg.ID, id, raw, member, atArg, time.Now().UnixMilli(), group).Int64()
	switch {
	case err != nil:
		return fmt.Errorf("park entry: %w", err)
	case res < 0:
		return errLeaseLost
	case res > 0:
		due[member] = time.UnixMilli(res)
	}
	return nil // res == 0: another replica finished the entry
}

// resumeDue runs the first parked entry of every conversation that is due,
// earliest first, until stop ends. A conversation whose entry fails (Redis
// or the bot's settings unreachable) is tried again after Backoff, and the
// partition goes on meanwhile. The due set stays a superset of the parked
// conversations in Redis whatever fails: a conversation leaves it only after
// a script confirmed that nothing of it is parked.
func (q *Queue) resumeDue(stop, work context.Context, p int, due dueSet) error {
	for _, member := range due.ready(time.Now()) {
		if stop.Err() != nil {
			return nil
		}
		if err := q.resume(work, p, member, due); err != nil {
			if !errors.Is(err, errLeaseLost) {
				due[member] = time.Now().Add(q.cfg.Backoff)
			}
			return err
		}
	}
	return nil
}

// resume runs a conversation's first parked entry: answered and removed,
// parked again, or dead-lettered and removed.
func (q *Queue) resume(ctx context.Context, p int, member string, due dueSet) error {
	list := q.parkedKey(p, member)
	head, err := q.rdb.LIndex(ctx, list, 0).Result()
	if errors.Is(err, redis.Nil) {
		// Nothing parked after all: forget the conversation.
		if err := q.rdb.ZRem(ctx, q.dueKey(p), member).Err(); err != nil {
			return fmt.Errorf("forget parked conversation: %w", err)
		}
		delete(due, member)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read parked entry: %w", err)
	}
	var ev *msg.Event
	sentKey := list // a key in the slot that unpark leaves alone when no marker is set
	finish := func(ctx context.Context, sent string) error {
		ttl := "0"
		if sent != "" {
			sentKey, ttl = sent, strconv.FormatInt(q.cfg.DedupTTL.Milliseconds(), 10)
		}
		left, err := unparkScript.Run(ctx, q.rdb, []string{list, q.dueKey(p), q.parkedNKey(p), sentKey, q.leaseKey(p)},
			head, member, time.Now().UnixMilli(), ttl, q.cfg.ID).Int64()
		switch {
		case err != nil:
			return fmt.Errorf("unpark entry: %w", err)
		case left == -2:
			// The entry was removed meanwhile (its user was erased): look
			// at the conversation again at once.
			due[member] = time.Now()
		case left < 0:
			return errLeaseLost // another replica moved on: the partition is not ours
		case left == 0:
			delete(due, member)
		default:
			due[member] = time.Now()
		}
		return nil
	}
	var pe parkedEntry
	if err = json.Unmarshal([]byte(head), &pe); err == nil {
		ev = &msg.Event{}
		err = json.Unmarshal(pe.Event, ev)
	}
	if err != nil {
		q.log.Error("queue: dropping an unreadable parked entry", "partition", p, "conversation", member, "err", err)
		return finish(ctx, "")
	}
	n, err := q.rdb.Exists(ctx, q.sentKey(p, ev)).Result()
	if err != nil {
		return err
	}
	if n > 0 {
		return finish(ctx, "")
	}
	ctx, span := startTurn(ctx, ev, pe.Event)
	defer span.End()
	turn, rs, attempts, err := q.runStreamed(ctx, ev, pe.Attempts)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if next, at, ok := q.deferral(err, pe, attempts); ok {
			return q.repark(ctx, p, member, head, next, at, due)
		}
		return q.giveUp(ctx, ev, "turn", attempts, err, finish)
	}
	return q.deliver(ctx, p, ev, turn, rs, finish)
}

// repark puts a conversation's first parked entry, read as head, back to
// wait until at.
func (q *Queue) repark(ctx context.Context, p int, member, head string, pe parkedEntry, at time.Time, due dueSet) error {
	raw, err := json.Marshal(pe)
	if err != nil {
		return fmt.Errorf("encode parked entry: %w", err)
	}
	res, err := reparkScript.Run(ctx, q.rdb, []string{q.leaseKey(p), q.parkedKey(p, member), q.dueKey(p)},
		q.cfg.ID, head, raw, member, dueMillis(at)).Int64()
	switch {
	case err != nil:
		return fmt.Errorf("park entry again: %w", err)
	case res == 0:
		// The entry was removed meanwhile (its user was erased): look at
		// the conversation again at once.
		due[member] = time.Now()
		return nil
	case res != 1:
		return errLeaseLost
	}
	due[member] = at
	return nil
}

// ParkedConversation is a conversation of a bot whose events wait, parked,
// for their turn (see [Later]).
type ParkedConversation struct {
	// Channel and Conversation say which conversation it is (the
	// platform's own id), Partition where it waits.
	Channel      string `json:"channel"`
	Conversation string `json:"conversation"`
	Partition    int    `json:"partition"`
	key          msg.ConversationKey
	// Due is when its first parked event runs next.
	Due time.Time `json:"due"`
	// Entries is how many of its events are parked, the first included.
	Entries int64 `json:"entries"`
	// Event is the first parked event, the one that runs next.
	Event *msg.Event `json:"event,omitempty"`
	// Attempts is how many tries of that event were counted so far, and
	// DelayedMS how long it has waited on refusals that asked for a delay.
	Attempts  int   `json:"attempts"`
	DelayedMS int64 `json:"delayed_ms"`
}

// Parked lists up to limit of a bot's parked conversations, the one due
// first first. It reads every partition's due set with ZSCAN (matching the
// bot's members) and each conversation's list in one pipeline; nothing is
// changed.
func (q *Queue) Parked(ctx context.Context, bot string, limit int) ([]ParkedConversation, error) {
	var out []ParkedConversation
	prefix := bot + ":"
	for p := range q.cfg.Partitions {
		var cursor uint64
		for {
			kv, next, err := q.rdb.ZScan(ctx, q.dueKey(p), cursor, prefix+"*", 1000).Result()
			if err != nil {
				return nil, fmt.Errorf("read parked conversations: %w", err)
			}
			// kv alternates members and scores.
			for i := 0; i+1 < len(kv); i += 2 {
				score, err := strconv.ParseFloat(kv[i+1], 64)
				if err != nil {
					continue
				}
				key := msg.ConversationKey(kv[i][len(prefix):])
				channel, id, _ := key.Split()
				out = append(out, ParkedConversation{Channel: channel, Conversation: id, Partition: p, key: key,
					Due: time.UnixMilli(int64(score)).UTC()})
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b ParkedConversation) int { return a.Due.Compare(b.Due) })

	// The due set may still name a conversation whose last entry just ran:
	// keep those with entries, up to limit.
	kept := make([]ParkedConversation, 0, min(limit, len(out)))
	for start := 0; start < len(out) && len(kept) < limit; start += limit {
		batch := out[start:min(start+limit, len(out))]
		lens := make([]*redis.IntCmd, len(batch))
		heads := make([]*redis.StringCmd, len(batch))
		_, err := q.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, c := range batch {
				key := q.parkedKey(c.Partition, convMember(bot, c.key))
				lens[i] = pipe.LLen(ctx, key)
				heads[i] = pipe.LIndex(ctx, key, 0)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read parked entries: %w", err)
		}
		for i, c := range batch {
			if n := lens[i].Val(); n > 0 && len(kept) < limit {
				c.Entries = n
				var pe parkedEntry
				if json.Unmarshal([]byte(heads[i].Val()), &pe) == nil {
					ev := &msg.Event{}
					if json.Unmarshal(pe.Event, ev) == nil {
						c.Event = ev
					}
					c.Attempts, c.DelayedMS = pe.Attempts, pe.Delayed
				}
				kept = append(kept, c)
			}
		}
	}
	return kept, nil
}
