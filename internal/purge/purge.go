// Package purge removes everything a deleted bot owns from the store, in the
// background, so that a bot created later under the same name starts from
// nothing.
//
// What a bot owns is listed in one place, by the composition root: every
// component that keeps per-bot keys names their prefixes (BotKeyPrefixes),
// grouped here in [Family] values by kind of data, and components whose
// per-bot data are entries in shared keys (queued events, index members)
// remove them with a [Cleaner].
//
// A purge sweeps the keyspace with SCAN MATCH (never KEYS), on every master
// of a Redis Cluster, and deletes the keys that start with one of the bot's
// prefixes, in batches. It sweeps once at once, waits Config.Settle for
// writes already under way when the bot was deleted (turns in flight,
// buffered analytics and invocation logs, other replicas' caches), sweeps
// again, and only then frees the name. The deletion is durable (the
// catalog's marker): a purge interrupted by a restart is taken up again by
// [Purger.Run] on any replica, one replica at a time (a lease).
//
// Concurrency: a Purger is safe for concurrent use; Run is called once per
// process.
package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/redis/go-redis/v9"
)

// Family is one kind of data a bot owns: the keys that start with any of
// Prefixes.
type Family struct {
	// Kind names the data in counts of removed keys ("sessions", ...).
	Kind string
	// Prefixes are literal key prefixes; each must contain the bot's name.
	Prefixes []string
}

// Cleaner removes a bot's data that are not whole keys of its own.
type Cleaner interface {
	// PurgeBot removes bot's data and reports how many items it removed.
	PurgeBot(ctx context.Context, bot string) (int64, error)
}

// Registry keeps the deletions under way; *bots.Catalog implements it.
type Registry interface {
	DeleteBot(ctx context.Context, bot string) (*bots.Deletion, error)
	Deletion(ctx context.Context, bot string) (*bots.Deletion, error)
	PendingDeletions(ctx context.Context) ([]string, error)
	ClaimDeletion(ctx context.Context, bot, owner string, lease time.Duration) (bool, error)
	ReleaseDeletion(ctx context.Context, bot, owner string) error
	RecordDeletion(ctx context.Context, bot string, removed map[string]int64) error
	FinishDeletion(ctx context.Context, bot string) error
}

// Config configures a [Purger].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// Registry keeps the deletions (required).
	Registry Registry
	// Families lists the keys a bot owns (required).
	Families func(bot string) []Family
	// Cleaners remove a bot's entries in shared keys, by kind.
	Cleaners map[string]Cleaner
	// Settle is how long after a deletion began the final sweep runs, so
	// that writes under way at the time have landed (default 1m).
	Settle time.Duration
	// Interval is how often pending deletions are looked for, to take up
	// those interrupted by a restart (default 10s).
	Interval time.Duration
	// Lease is how long a replica owns a deletion without renewing it
	// (default 30s).
	Lease time.Duration
	// Count is the SCAN COUNT hint, and so the batch size (default 1000).
	Count int
	// Logger receives progress and failures; nil discards them.
	Logger *slog.Logger
}

// Purger removes deleted bots' data. Create it with [New].
type Purger struct {
	rdb  redis.UniversalClient
	cfg  Config
	log  *slog.Logger
	id   string
	wake chan struct{}

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

// New returns a Purger over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Purger {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.Settle <= 0 {
		cfg.Settle = time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Count <= 0 {
		cfg.Count = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Purger{rdb: rdb, cfg: cfg, log: log, id: uuid.NewString(), wake: make(chan struct{}, 1),
		running: make(map[string]bool)}
}

// Delete starts deleting a bot: it is gone at once, and its data are
// removed in the background (by Run, on this replica unless it stops).
func (p *Purger) Delete(ctx context.Context, bot string) (*bots.Deletion, error) {
	d, err := p.cfg.Registry.DeleteBot(ctx, bot)
	if err != nil {
		return nil, err
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return d, nil
}

// Status returns a bot's deletion under way, or nil.
func (p *Purger) Status(ctx context.Context, bot string) (*bots.Deletion, error) {
	return p.cfg.Registry.Deletion(ctx, bot)
}

// Run purges deleted bots until ctx ends: those deleted through this
// replica at once, and every Interval any pending deletion no replica holds.
// It waits for the purges it started before returning.
func (p *Purger) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	defer p.wg.Wait()
	for {
		p.startPending(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.wake:
		}
	}
}

// startPending starts a purge for every pending deletion not already
// running here.
func (p *Purger) startPending(ctx context.Context) {
	names, err := p.cfg.Registry.PendingDeletions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("list pending bot deletions", "err", err)
		}
		return
	}
	for _, bot := range names {
		p.mu.Lock()
		busy := p.running[bot]
		p.running[bot] = true
		p.mu.Unlock()
		if busy {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				delete(p.running, bot)
				p.mu.Unlock()
			}()
			if err := p.Purge(ctx, bot); err != nil && ctx.Err() == nil {
				p.log.Warn("bot deletion interrupted; it is taken up again later", "bot", bot, "err", err)
			}
		}()
	}
}

// Purge removes a deleted bot's data and frees its name, unless another
// replica holds the deletion. A bot without a deletion under way is only
// dropped from the pending list.
func (p *Purger) Purge(ctx context.Context, bot string) error {
	ok, err := p.cfg.Registry.ClaimDeletion(ctx, bot, p.id, p.cfg.Lease)
	if errors.Is(err, bots.ErrNotDeleting) {
		return p.cfg.Registry.FinishDeletion(ctx, bot)
	}
	if err != nil || !ok {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go p.keepLease(ctx, cancel, bot)
	defer func() {
		if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errLeaseLost) {
			// Stopped (shutdown): let another replica, or the next start, go on at once.
			done, stop := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer stop()
			if err := p.cfg.Registry.ReleaseDeletion(done, bot, p.id); err != nil {
				p.log.Warn("release a bot deletion", "bot", bot, "err", err)
			}
		}
	}()

	d, err := p.cfg.Registry.Deletion(ctx, bot)
	if err != nil {
		return err
	}
	if d == nil {
		return p.cfg.Registry.FinishDeletion(ctx, bot)
	}
	total := make(map[string]int64)
	sweep := func() error {
		removed, err := p.Sweep(ctx, bot)
		for k, n := range removed {
			total[k] += n
		}
		if rerr := p.cfg.Registry.RecordDeletion(ctx, bot, removed); err == nil {
			err = rerr
		}
		return err
	}
	if err := sweep(); err != nil {
		return err
	}
	if wait := time.Until(d.Started.Add(p.cfg.Settle)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	if err := sweep(); err != nil {
		return err
	}
	if err := p.cfg.Registry.FinishDeletion(ctx, bot); err != nil {
		return err
	}
	args := []any{"bot", bot, "took", time.Since(d.Started).Round(time.Second)}
	for k, n := range total {
		args = append(args, k, n)
	}
	p.log.Info("bot deleted: all its data are removed and its name is free", args...)
	return nil
}

// errLeaseLost stops a purge whose lease another replica took.
var errLeaseLost = errors.New("purge: lease on the deletion lost")

// keepLease renews the lease on bot's deletion until ctx ends, and cancels
// the purge when the lease is lost.
func (p *Purger) keepLease(ctx context.Context, cancel context.CancelCauseFunc, bot string) {
	t := time.NewTicker(p.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := p.cfg.Registry.ClaimDeletion(ctx, bot, p.id, p.cfg.Lease)
		if err == nil && !ok {
			cancel(errLeaseLost)
			return
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("renew the lease on a bot deletion", "bot", bot, "err", err)
		}
	}
}

// Sweep removes once what bot owns: the entries its cleaners know of, then
// every key that starts with one of its prefixes. It reports the keys (and
// entries) removed by kind.
func (p *Purger) Sweep(ctx context.Context, bot string) (map[string]int64, error) {
	removed := make(map[string]int64)
	for kind, c := range p.cfg.Cleaners {
		n, err := c.PurgeBot(ctx, bot)
		removed[kind] += n
		if err != nil {
			return removed, fmt.Errorf("purge %s of %s: %w", kind, bot, err)
		}
	}
	families := p.cfg.Families(bot)
	var mu sync.Mutex
	err := Scan(ctx, p.rdb, globEscape(p.cfg.KeyPrefix)+"*"+globEscape(bot)+"*", p.cfg.Count, func(keys []string) error {
		kinds := make([]string, 0, len(keys))
		owned := make([]string, 0, len(keys))
		for _, k := range keys {
			if kind, ok := owner(families, k); ok {
				owned = append(owned, k)
				kinds = append(kinds, kind)
			}
		}
		if len(owned) == 0 {
			return nil
		}
		// One key per command: the keys of a batch lie in many cluster slots.
		cmds := make([]*redis.IntCmd, len(owned))
		if _, err := p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, k := range owned {
				cmds[i] = pl.Unlink(ctx, k)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("delete keys of %s: %w", bot, err)
		}
		mu.Lock()
		for i, c := range cmds {
			removed[kinds[i]] += c.Val()
		}
		mu.Unlock()
		return nil
	})
	return removed, err
}

// owner returns the kind of the family key belongs to.
func owner(families []Family, key string) (string, bool) {
	for _, f := range families {
		for _, prefix := range f.Prefixes {
			if strings.HasPrefix(key, prefix) {
				return f.Kind, true
			}
		}
	}
	return "", false
}

// Scan calls fn with the keys matching the glob pattern match, a batch of
// about count keys at a time, on every master of a Redis Cluster or on the
// one server otherwise. fn is called for one batch at a time, also on a
// cluster, whose masters are scanned at once. A key may be seen more than
// once.
func Scan(ctx context.Context, rdb redis.UniversalClient, match string, count int, fn func(keys []string) error) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		// ForEachMaster scans the masters at once; fn sees one batch at
		// a time all the same.
		var mu sync.Mutex
		one := func(keys []string) error {
			mu.Lock()
			defer mu.Unlock()
			return fn(keys)
		}
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return scanNode(ctx, node, match, count, one)
		})
	}
	return scanNode(ctx, rdb, match, count, fn)
}

func scanNode(ctx context.Context, c redis.Cmdable, match string, count int, fn func(keys []string) error) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, int64(count)).Result()
		if err != nil {
			return fmt.Errorf("scan keys: %w", err)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// globEscape quotes the characters special in a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\*?[]`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ScanPrefix is Scan for the keys that start with prefix.
func ScanPrefix(ctx context.Context, rdb redis.UniversalClient, prefix string, count int, fn func(keys []string) error) error {
	return Scan(ctx, rdb, globEscape(prefix)+"*", count, fn)
}
