package bots

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The change feed: every write bumps the bot's generation and is announced
// on a Pub/Sub channel, so every replica drops its snapshot of the bot. A
// periodic generation check catches announcements missed while
// disconnected.

// announce drops the local snapshot of bot and tells the other replicas to drop theirs.
func (c *Catalog) announce(ctx context.Context, bot string) {
	c.invalidate(bot)
	if err := c.rdb.Publish(ctx, c.ks.changes(), bot).Err(); err != nil {
		c.log.Warn("announce bot change", "bot", bot, "err", err)
	}
}

// Run keeps the cache fresh until ctx ends: it drops bots announced as
// changed by any replica, and every RefreshInterval compares the cached
// generations with Redis to catch announcements lost while disconnected.
// With OnLoad set, it also loads the bots that keep VMs warm, at start and
// after each of their changes. Run returns once those loads have ended.
func (c *Catalog) Run(ctx context.Context) error {
	var warming sync.WaitGroup
	defer warming.Wait()
	sub := c.rdb.Subscribe(ctx, c.ks.changes())
	defer sub.Close()
	msgs := sub.Channel()
	tick := time.NewTicker(c.cfg.RefreshInterval)
	defer tick.Stop()
	if c.cfg.OnLoad != nil {
		// After subscribing, so no change made during the warm-up is missed.
		warming.Go(func() {
			if err := c.warmUp(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("load the bots with warm VMs", "err", err)
			}
		})
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			c.invalidate(m.Payload)
			c.reloadWarm(ctx, &warming, m.Payload)
		case <-tick.C:
			changed, err := c.changed(ctx)
			if err != nil && ctx.Err() == nil {
				c.log.Warn("check bots for changes", "err", err)
			}
			for _, name := range changed {
				c.invalidate(name)
				c.reloadWarm(ctx, &warming, name)
			}
		}
	}
}

// invalidate drops the snapshot of bot, so the next Bot loads it again.
func (c *Catalog) invalidate(bot string) { c.snapshots.invalidate(bot) }

// changed lists the cached bots whose generation in Redis differs from the
// cached one.
func (c *Catalog) changed(ctx context.Context) ([]string, error) {
	cached := c.snapshots.generations()
	if len(cached) == 0 {
		return nil, nil
	}
	gens := make(map[string]*redis.StringCmd, len(cached))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for name := range cached {
			gens[name] = p.Get(ctx, c.keys(name).gen)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read bot generations: %w", err)
	}
	var out []string
	for name, cmd := range gens {
		if g, _ := cmd.Int64(); g != cached[name] {
			out = append(out, name)
		}
	}
	return out, nil
}
