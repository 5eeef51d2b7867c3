package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A bot's settings and channels, and the management view of a bot. Deleting
// a bot is in delete.go.

// PutBot creates or updates a bot's settings. created is true for a new bot.
// A bot whose deletion is under way cannot be created again until the
// deletion finishes: PutBot returns ErrBotDeleting.
func (c *Catalog) PutBot(ctx context.Context, name string, s Settings) (created bool, err error) {
	if err := ValidateBotName(name); err != nil {
		return false, err
	}
	if err := s.Validate(); err != nil {
		return false, err
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return false, fmt.Errorf("encode settings: %w", err)
	}
	k := c.keys(name)
	stored, err := putBotScript.Run(ctx, c.rdb, []string{k.settings, k.gen, c.ks.deletion(name)}, raw).Int()
	if err != nil {
		return false, fmt.Errorf("save bot %s: %w", name, err)
	}
	if stored < 0 {
		return false, ErrBotDeleting
	}
	added := c.rdb.SAdd(ctx, c.ks.index(), name)
	if err := added.Err(); err != nil {
		return false, fmt.Errorf("save bot %s: %w", name, err)
	}
	c.announce(ctx, name)
	return added.Val() == 1, nil
}

// BotInfo is a bot as the management API shows it.
type BotInfo struct {
	// Name is the bot's name.
	Name string `json:"name"`
	// Settings are the bot's settings.
	Settings Settings `json:"settings"`
	// Channels are the connected channels, sorted.
	Channels []string `json:"channels"`
	// Intents are the stable version of each intent's handler.
	Intents map[string]int `json:"intents"`
	// Canaries are the running canaries, by intent.
	Canaries map[string]Canary `json:"canaries,omitempty"`
	// NLU counts the NLU examples of each intent.
	NLU map[string]int `json:"nlu_examples,omitempty"`
}

// GetBot describes a bot.
func (c *Catalog) GetBot(ctx context.Context, name string) (*BotInfo, error) {
	k := c.keys(name)
	var settings *redis.StringCmd
	var channels *redis.StringSliceCmd
	var current, rollouts *redis.MapStringStringCmd
	var nlu *redis.StringCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		settings = p.Get(ctx, k.settings)
		channels = p.HKeys(ctx, k.channels)
		current = p.HGetAll(ctx, k.current)
		rollouts = p.HGetAll(ctx, k.rollouts)
		nlu = p.Get(ctx, k.nlu)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read bot %s: %w", name, err)
	}
	raw, err := settings.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBotNotFound
	}
	info := &BotInfo{Name: name, Intents: make(map[string]int)}
	if err := json.Unmarshal(raw, &info.Settings); err != nil {
		return nil, fmt.Errorf("decode settings of %s: %w", name, err)
	}
	info.Channels = channels.Val()
	sort.Strings(info.Channels)
	for intent, v := range current.Val() {
		info.Intents[intent], _ = strconv.Atoi(v)
	}
	for intent, r := range decodeRollouts(rollouts.Val()) {
		if r.Canary != 0 {
			if info.Canaries == nil {
				info.Canaries = make(map[string]Canary)
			}
			info.Canaries[intent] = Canary{Version: r.Canary, Percent: r.Percent}
		}
	}
	if raw, err := nlu.Bytes(); err == nil {
		var n NLU
		if json.Unmarshal(raw, &n) == nil {
			info.NLU = make(map[string]int, len(n.Intents))
			for intent, ex := range n.Intents {
				info.NLU[intent] = len(ex)
			}
		}
	}
	return info, nil
}

// ListBots returns every bot name, sorted.
func (c *Catalog) ListBots(ctx context.Context) ([]string, error) {
	names, err := c.rdb.SMembers(ctx, c.ks.index()).Result()
	if err != nil {
		return nil, fmt.Errorf("list bots: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

func (c *Catalog) requireBot(ctx context.Context, name string) error {
	n, err := c.rdb.Exists(ctx, c.keys(name).settings).Result()
	if err != nil {
		return fmt.Errorf("read bot %s: %w", name, err)
	}
	if n == 0 {
		return ErrBotNotFound
	}
	return nil
}

// PutChannel stores a channel's settings for a bot; the caller validates them.
func (c *Catalog) PutChannel(ctx context.Context, bot, channel string, settings map[string]string) error {
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encode channel settings: %w", err)
	}
	k := c.keys(bot)
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k.channels, channel, raw)
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("save channel %s of %s: %w", channel, bot, err)
	}
	c.announce(ctx, bot)
	return nil
}

// DeleteChannel disconnects a channel from a bot.
func (c *Catalog) DeleteChannel(ctx context.Context, bot, channel string) error {
	k := c.keys(bot)
	var del *redis.IntCmd
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, k.channels, channel)
		p.Incr(ctx, k.gen)
		return nil
	}); err != nil {
		return fmt.Errorf("delete channel %s of %s: %w", channel, bot, err)
	}
	c.announce(ctx, bot)
	if del.Val() == 0 {
		return ErrBotNotFound
	}
	return nil
}

// ChannelSettings returns a channel's stored settings for a bot.
func (c *Catalog) ChannelSettings(ctx context.Context, bot, channel string) (map[string]string, error) {
	raw, err := c.rdb.HGet(ctx, c.keys(bot).channels, channel).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBotNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read channel %s of %s: %w", channel, bot, err)
	}
	var settings map[string]string
	if err := json.Unmarshal(raw, &settings); err != nil {
		return nil, fmt.Errorf("decode channel %s of %s: %w", channel, bot, err)
	}
	return settings, nil
}
