package bots

import (
	"context"
	"errors"
	"sync"
)

// The snapshot cache: what [Catalog.Bot] serves, loaded from Redis on first
// use (load.go) and dropped when the bot changes (feed.go).

// cache holds the snapshots Bot serves and, per bot, the newest snapshot
// this process loaded.
type cache struct {
	mu        sync.Mutex
	snapshots map[string]*Bot
	// last is the newest snapshot loaded per bot, kept after its cache
	// entry is dropped so a reload reuses its compiled programs and knows
	// which versions it retires.
	last map[string]*Bot
	// epochs counts the invalidations of each bot, so a load that read
	// Redis before a change is not cached after it.
	epochs map[string]uint64
}

func newCache() *cache {
	return &cache{snapshots: make(map[string]*Bot), last: make(map[string]*Bot), epochs: make(map[string]uint64)}
}

// get returns the cached snapshot of name (nil when there is none) and the
// epoch a load started now belongs to.
func (s *cache) get(name string) (*Bot, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshots[name], s.epochs[name]
}

// put caches b, loaded in epoch, unless the bot was invalidated since or a
// newer generation is cached, and records it as the newest load. It returns
// the versions the previous newest load served and b does not, and whether
// b is newer than that load.
func (s *cache) put(name string, b *Bot, epoch uint64) (retired []retiredVersion, loaded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A load that raced with an invalidation may have read the state before
	// the change: it answers this call but is not cached, or the replica
	// would serve it until the next generation check.
	if s.epochs[name] == epoch {
		if prev := s.snapshots[name]; prev == nil || prev.generation <= b.generation {
			s.snapshots[name] = b
		}
	}
	if last := s.last[name]; last == nil || last.generation < b.generation {
		retired = retiredBy(last, b)
		s.last[name] = b
		loaded = true
	}
	return retired, loaded
}

// newest returns the newest snapshot of name loaded here, or nil.
func (s *cache) newest(name string) *Bot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[name]
}

// forget drops the newest snapshot of name and returns it.
func (s *cache) forget(name string) *Bot {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.last[name]
	delete(s.last, name)
	return last
}

// invalidate drops the cached snapshot of name.
func (s *cache) invalidate(name string) {
	s.mu.Lock()
	delete(s.snapshots, name)
	s.epochs[name]++
	s.mu.Unlock()
}

// generations returns the generation of every cached snapshot, by bot.
func (s *cache) generations() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.snapshots))
	for name, b := range s.snapshots {
		out[name] = b.generation
	}
	return out
}

// Bot returns the cached snapshot of a bot, loading it from Redis when it is
// not cached or has changed.
func (c *Catalog) Bot(ctx context.Context, name string) (*Bot, error) {
	b, epoch := c.snapshots.get(name)
	if b != nil {
		return b, nil
	}
	b, err := c.load(ctx, name)
	if errors.Is(err, ErrBotNotFound) {
		// Deleted (perhaps through another replica): its pools go too, so a
		// bot created later under this name starts from nothing.
		c.retireAll(name)
	}
	if err != nil {
		return nil, err
	}
	retired, loaded := c.snapshots.put(name, b, epoch)
	c.retire(name, retired)
	if loaded && c.cfg.OnLoad != nil {
		c.cfg.OnLoad(b)
	}
	return b, nil
}

// retireAll forgets the newest snapshot of a bot and retires every version
// it served.
func (c *Catalog) retireAll(name string) {
	if last := c.snapshots.forget(name); last != nil {
		c.retire(name, retiredBy(last, &Bot{}))
	}
}

// retire reports versions no longer served to OnRetire.
func (c *Catalog) retire(bot string, versions []retiredVersion) {
	if c.cfg.OnRetire == nil {
		return
	}
	for _, r := range versions {
		c.cfg.OnRetire(bot, r.intent, r.version)
	}
}

// retiredVersion is a handler version a process stops serving.
type retiredVersion struct {
	intent  string
	version int
}

// retiredBy lists the handler versions served in prev but not in next.
func retiredBy(prev, next *Bot) []retiredVersion {
	if prev == nil {
		return nil
	}
	var out []retiredVersion
	for intent, h := range prev.Handlers {
		now := next.Handlers[intent]
		for _, r := range h.releases() {
			if !now.serves(r.Version) {
				out = append(out, retiredVersion{intent: intent, version: r.Version})
			}
		}
	}
	return out
}
