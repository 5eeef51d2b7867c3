package invocations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/redisx"
)

var recordScript = redisx.NewScript(luaFS, "lua/record.lua")

// Defaults of following.
const (
	// DefaultCatchUpInterval is how often a [Feed] reads the recent list
	// for entries its subscription missed, and renews its bot's mark as
	// followed.
	DefaultCatchUpInterval = 2 * time.Second
	// followTTL is how long a bot stays marked as followed without a
	// renewal.
	followTTL = 30 * time.Second
	// followedRefresh is how stale the recorder's view of the followed bots
	// may be.
	followedRefresh = time.Second
)

// ID is an entry's position in its bot's log: the Redis clock in
// milliseconds when the entry was written and a sequence number within
// that millisecond. IDs of one bot grow in the order its entries are
// written, across replicas.
type ID struct {
	MS, Seq uint64
}

// ParseID reads an ID written as "<ms>-<seq>".
func ParseID(s string) (ID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return ID{}, fmt.Errorf("invocations: %q is not an entry id (<ms>-<seq>)", s)
	}
	return ID{MS: a, Seq: b}, nil
}

// String writes the ID as "<ms>-<seq>".
func (id ID) String() string {
	return strconv.FormatUint(id.MS, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// After reports whether id comes after o.
func (id ID) After(o ID) bool { return id.MS > o.MS || (id.MS == o.MS && id.Seq > o.Seq) }

// entryID is e's ID; the zero ID for an entry without one.
func entryID(e Entry) ID {
	id, _ := ParseID(e.ID)
	return id
}

func (r *Recorder) followedKey() string { return r.cfg.KeyPrefix + "logs:followed" }

// liveChannel is the Pub/Sub channel of a bot's new entries.
func (r *Recorder) liveChannel(bot string) string { return r.cfg.KeyPrefix + "logs:live:" + bot }

// followedView is the recorder's cached set of bots someone follows.
type followedView struct {
	mu   sync.Mutex
	at   time.Time
	bots map[string]bool
}

// followedBots returns the bots with a follower on any replica, read from
// Redis at most once per second. On a failed read it keeps the last view
// (a follower still gets its entries from its catch-up reads).
func (r *Recorder) followedBots(ctx context.Context) map[string]bool {
	v := &r.followed
	v.mu.Lock()
	defer v.mu.Unlock()
	now := r.now()
	if now.Sub(v.at) < followedRefresh && v.bots != nil {
		return v.bots
	}
	v.at = now
	nowMS := strconv.FormatInt(now.UnixMilli(), 10)
	var live *redis.StringSliceCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, r.followedKey(), "-inf", "("+nowMS)
		live = p.ZRangeByScore(ctx, r.followedKey(), &redis.ZRangeBy{Min: nowMS, Max: "+inf"})
		return nil
	})
	if err != nil {
		r.log.Warn("could not read the followed bots", "err", err)
		if v.bots == nil {
			v.bots = map[string]bool{}
		}
		return v.bots
	}
	v.bots = make(map[string]bool, len(live.Val()))
	for _, b := range live.Val() {
		v.bots[b] = true
	}
	return v.bots
}

// FollowQuery says what a [Feed] delivers.
type FollowQuery struct {
	// Intent and Outcome keep only matching entries when set.
	Intent  string
	Outcome string
	// After, when set, starts the feed with the kept entries that come
	// after it: what a client that saw After missed.
	After *ID
	// Since, when After is nil, starts the feed with the kept entries
	// recorded at or after it.
	Since time.Time
	// CatchUpInterval overrides DefaultCatchUpInterval.
	CatchUpInterval time.Duration
}

// ErrFeedClosed is returned by [Feed.Next] after Close.
var ErrFeedClosed = errors.New("invocations: feed closed")

// Feed delivers a bot's entries as they are written, on any replica, in
// the order of their ids, each once. Create it with [Recorder.Follow].
//
// The bot's recent list is the only source: a feed reads the entries after
// the last one it delivered from there. It reads when the recorder that
// wrote a batch publishes the batch's last id on the bot's Pub/Sub channel
// (which recorders do, in the script that pushes the batch, while some feed
// marks the bot as followed), and every CatchUpInterval in case a
// notification was lost (Pub/Sub drops what is published while a
// subscriber reconnects, and a recorder learns of a new follower within a
// second). An entry is missed only when more entries than the list keeps
// (Config.MaxRecent) are written between two reads.
type Feed struct {
	r       *Recorder
	bot     string
	q       FollowQuery
	sub     *redis.PubSub
	ch      <-chan *redis.Message
	ticker  *time.Ticker
	last    ID
	pending []Entry
}

// Follow subscribes to bot's new entries and returns the feed, which
// starts with the kept entries q.After or q.Since select. Close it when
// done.
func (r *Recorder) Follow(ctx context.Context, bot string, q FollowQuery) (*Feed, error) {
	if q.CatchUpInterval <= 0 {
		q.CatchUpInterval = DefaultCatchUpInterval
	}
	f := &Feed{r: r, bot: bot, q: q}
	if err := f.markFollowed(ctx); err != nil {
		return nil, err
	}
	f.sub = r.rdb.Subscribe(ctx, r.liveChannel(bot))
	// Wait for the subscription, so nothing published from here on is lost.
	if _, err := f.sub.Receive(ctx); err != nil {
		_ = f.sub.Close()
		return nil, fmt.Errorf("invocations: subscribe: %w", err)
	}
	f.ch = f.sub.Channel(redis.WithChannelSize(256))
	entries, err := f.read(ctx)
	if err != nil {
		_ = f.sub.Close()
		return nil, err
	}
	switch {
	case q.After != nil:
		f.last = *q.After
		f.take(entries)
	case !q.Since.IsZero():
		var since []Entry
		for _, e := range entries {
			if !e.Time.Before(q.Since) {
				since = append(since, e)
			}
		}
		f.take(since)
	}
	if len(entries) > 0 {
		f.last = laterID(f.last, entryID(entries[len(entries)-1]))
	}
	f.ticker = time.NewTicker(q.CatchUpInterval)
	return f, nil
}

// laterID returns the later of two IDs.
func laterID(a, b ID) ID {
	if b.After(a) {
		return b
	}
	return a
}

// markFollowed marks the bot as followed for followTTL.
func (f *Feed) markFollowed(ctx context.Context) error {
	until := float64(f.r.now().Add(followTTL).UnixMilli())
	if err := f.r.rdb.ZAdd(ctx, f.r.followedKey(), redis.Z{Score: until, Member: f.bot}).Err(); err != nil {
		return fmt.Errorf("invocations: follow: %w", err)
	}
	return nil
}

// readPage is how many entries a feed reads from the list at a time.
const readPage = 50

// read returns the kept entries after the last one seen, oldest first.
func (f *Feed) read(ctx context.Context) ([]Entry, error) {
	var out []Entry
	for start := 0; start < f.r.cfg.MaxRecent; start += readPage {
		stop := min(start+readPage, f.r.cfg.MaxRecent) - 1
		raws, err := f.r.rdb.LRange(ctx, f.r.recentKey(f.bot), int64(start), int64(stop)).Result()
		if err != nil {
			return nil, fmt.Errorf("invocations: follow: %w", err)
		}
		for _, raw := range raws {
			var e Entry
			if json.Unmarshal([]byte(raw), &e) != nil || e.ID == "" || !entryID(e).After(f.last) {
				// newest first: the rest were seen (or predate ids)
				slices.Reverse(out)
				return out, nil
			}
			out = append(out, e)
		}
		if len(raws) < stop-start+1 {
			break
		}
	}
	slices.Reverse(out)
	return out, nil
}

// take queues the entries, oldest first, that come after the last one seen
// and pass the filters.
func (f *Feed) take(entries []Entry) {
	q := Query{Intent: f.q.Intent, Outcome: f.q.Outcome}
	for _, e := range entries {
		id := entryID(e)
		if !id.After(f.last) {
			continue
		}
		f.last = id
		if q.matches(e) {
			f.pending = append(f.pending, e)
		}
	}
}

// Next returns the next entries, oldest first, waiting for them until ctx
// ends (then it returns ctx's error).
func (f *Feed) Next(ctx context.Context) ([]Entry, error) {
	for len(f.pending) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case m, ok := <-f.ch:
			if !ok {
				return nil, ErrFeedClosed
			}
			if id, err := ParseID(m.Payload); err == nil && !id.After(f.last) {
				continue // already read
			}
			entries, err := f.read(ctx)
			if err != nil {
				return nil, err
			}
			f.take(entries)
		case <-f.ticker.C:
			if err := f.markFollowed(ctx); err != nil {
				return nil, err
			}
			entries, err := f.read(ctx)
			if err != nil {
				return nil, err
			}
			f.take(entries)
		}
	}
	out := f.pending
	f.pending = nil
	return out, nil
}

// Close ends the subscription. The bot's mark as followed expires on its
// own, as other feeds may share it.
func (f *Feed) Close() error {
	if f.ticker != nil {
		f.ticker.Stop()
	}
	return f.sub.Close()
}
