package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// MissingSecrets are the secrets the settings name that are not set.
	MissingSecrets []string `json:"missing_secrets,omitempty"`
}

// GetBot describes a bot.
func (c *Catalog) GetBot(ctx context.Context, name string) (*BotInfo, error) {
	k := c.keys(name)
	var settings *redis.StringCmd
	var channels *redis.StringSliceCmd
	var current, rollouts *redis.MapStringStringCmd
	var nlu *redis.StringCmd
	var secrets *redis.StringSliceCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		secrets = p.HKeys(ctx, k.secrets)
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
	info.MissingSecrets = missing(info.Settings.NeededSecrets(), secrets.Val())
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

// PutChannel stores a channel's settings for a bot; the caller validates
// them. They are sealed with Config.Keys; without a key, a value for a
// secret setting is refused with ErrNoSecretKey.
func (c *Catalog) PutChannel(ctx context.Context, bot, channel string, settings map[string]string) error {
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	stored, err := c.sealChannel(bot, channel, settings)
	if err != nil {
		return err
	}
	k := c.keys(bot)
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k.channels, channel, stored)
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

// ChannelSettings returns a channel's stored settings for a bot, opened:
// the caller masks the secret ones before showing them.
func (c *Catalog) ChannelSettings(ctx context.Context, bot, channel string) (map[string]string, error) {
	raw, err := c.rdb.HGet(ctx, c.keys(bot).channels, channel).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBotNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read channel %s of %s: %w", channel, bot, err)
	}
	return c.openChannel(bot, channel, raw)
}

// missing lists the names of want that are not in have, in want's order.
func missing(want, have []string) []string {
	var out []string
	for _, name := range want {
		if !slices.Contains(have, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// MissingSecrets lists the secrets of names that a bot does not have.
func (c *Catalog) MissingSecrets(ctx context.Context, bot string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	have, err := c.rdb.HKeys(ctx, c.keys(bot).secrets).Result()
	if err != nil {
		return nil, fmt.Errorf("list secrets of %s: %w", bot, err)
	}
	return missing(names, have), nil
}
