package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Warm VMs: bots with min_vms are loaded at start and again right after each
// change, so OnLoad can fill their sandbox pools before a turn needs them.

// warm reports whether bot keeps VMs warm (min_vms): as last loaded here,
// or, for a bot this process has not loaded, as its settings in Redis say.
func (c *Catalog) warm(ctx context.Context, bot string) bool {
	if last := c.snapshots.newest(bot); last != nil {
		return last.Settings.MinVMs > 0
	}
	var s Settings
	raw, err := c.rdb.Get(ctx, c.keys(bot).settings).Bytes()
	return err == nil && json.Unmarshal(raw, &s) == nil && s.MinVMs > 0
}

// reloadWarm loads a changed bot again at once when it keeps VMs warm, so
// the pools of its new versions fill before a turn needs them. The load
// runs in a goroutine counted by wg.
func (c *Catalog) reloadWarm(ctx context.Context, wg *sync.WaitGroup, bot string) {
	if c.cfg.OnLoad == nil {
		return
	}
	wg.Go(func() {
		if !c.warm(ctx, bot) {
			return
		}
		if _, err := c.Bot(ctx, bot); err != nil && ctx.Err() == nil && !errors.Is(err, ErrBotNotFound) {
			c.log.Warn("reload a bot with warm VMs", "bot", bot, "err", err)
		}
	})
}

// warmUp loads the bots that keep VMs warm (min_vms), for OnLoad.
func (c *Catalog) warmUp(ctx context.Context) error {
	names, err := c.ListBots(ctx)
	if err != nil || len(names) == 0 {
		return err
	}
	settings := make([]*redis.StringCmd, len(names))
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			settings[i] = p.Get(ctx, c.keys(name).settings)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read bot settings: %w", err)
	}
	for i, name := range names {
		var s Settings
		raw, err := settings[i].Bytes()
		if err != nil || json.Unmarshal(raw, &s) != nil || s.MinVMs == 0 {
			continue
		}
		if _, err := c.Bot(ctx, name); err != nil && !errors.Is(err, ErrBotNotFound) {
			c.log.Warn("load a bot with warm VMs", "bot", name, "err", err)
		}
	}
	return nil
}
