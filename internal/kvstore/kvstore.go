package kvstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/sandbox"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	setScript    = redisx.NewScript(luaFS, "lua/set.lua")
	deleteScript = redisx.NewScript(luaFS, "lua/delete.lua")
)

// Defaults for the zero values of [Config].
const (
	DefaultKeyPrefix     = redisx.DefaultPrefix
	DefaultMaxKeys       = 1000
	DefaultMaxValueBytes = 64 << 10
	DefaultMaxKeyBytes   = 256
)

// Config configures a [Store]. Zero values mean the defaults.
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// MaxKeys is the most keys one bot may hold (default 1000).
	MaxKeys int
	// MaxValueBytes is the largest value (default 64 KiB).
	MaxValueBytes int
	// MaxKeyBytes is the longest key name (default 256).
	MaxKeyBytes int
}

// Store is a namespaced, quota-bound key/value store per bot. It implements
// [sandbox.KV].
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

var _ sandbox.KV = (*Store)(nil)

// New returns a Store over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.MaxValueBytes <= 0 {
		cfg.MaxValueBytes = DefaultMaxValueBytes
	}
	if cfg.MaxKeyBytes <= 0 {
		cfg.MaxKeyBytes = DefaultMaxKeyBytes
	}
	return &Store{rdb: rdb, cfg: cfg}
}

// Load registers the scripts with Redis so the first write does not pay for
// a NOSCRIPT round trip.
func (s *Store) Load(ctx context.Context) error {
	if err := redisx.Preload(ctx, s.rdb, setScript, deleteScript); err != nil {
		return fmt.Errorf("load kv scripts: %w", err)
	}
	return nil
}

func (s *Store) valueKey(bot, key string) string {
	return s.cfg.KeyPrefix + "kv:{" + bot + "}:v:" + key
}

func (s *Store) indexKey(bot string) string {
	return s.cfg.KeyPrefix + "kv:{" + bot + "}:idx"
}

// BotKeyPrefixes returns the prefixes of the store module's keys of bot:
// every key that starts with one of them is the bot's.
func (s *Store) BotKeyPrefixes(bot string) []string {
	return []string{s.cfg.KeyPrefix + "kv:{" + bot + "}:"}
}

func (s *Store) checkKey(bot, key string) error {
	if bot == "" {
		return errors.New("kvstore: no bot")
	}
	if key == "" || len(key) > s.cfg.MaxKeyBytes {
		return fmt.Errorf("%w: keys are 1 to %d bytes", sandbox.ErrQuota, s.cfg.MaxKeyBytes)
	}
	return nil
}

// Get returns the value of bot's key; ok is false when there is none.
func (s *Store) Get(ctx context.Context, bot, key string) ([]byte, bool, error) {
	if err := s.checkKey(bot, key); err != nil {
		return nil, false, err
	}
	v, err := s.rdb.Get(ctx, s.valueKey(bot, key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kvstore: get: %w", err)
	}
	return v, true, nil
}

// Set stores value under bot's key, with a ttl unless it is zero. A new key
// beyond Config.MaxKeys and a value over Config.MaxValueBytes are refused
// with errors wrapping sandbox.ErrQuota.
func (s *Store) Set(ctx context.Context, bot, key string, value []byte, ttl time.Duration) error {
	if err := s.checkKey(bot, key); err != nil {
		return err
	}
	if len(value) > s.cfg.MaxValueBytes {
		return fmt.Errorf("%w: values are at most %d bytes, got %d", sandbox.ErrQuota, s.cfg.MaxValueBytes, len(value))
	}
	ms := int64(0)
	if ttl > 0 {
		ms = max(ttl.Milliseconds(), 1)
	}
	n, err := setScript.Run(ctx, s.rdb, []string{s.valueKey(bot, key), s.indexKey(bot)},
		key, value, ms, s.cfg.MaxKeys).Int()
	if err != nil {
		return fmt.Errorf("kvstore: set: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: a bot may keep at most %d keys", sandbox.ErrQuota, s.cfg.MaxKeys)
	}
	return nil
}

// Delete removes bot's key; a missing key is no error.
func (s *Store) Delete(ctx context.Context, bot, key string) error {
	if err := s.checkKey(bot, key); err != nil {
		return err
	}
	if err := deleteScript.Run(ctx, s.rdb, []string{s.valueKey(bot, key), s.indexKey(bot)}, key).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("kvstore: delete: %w", err)
	}
	return nil
}

// Count returns the number of live keys of bot.
func (s *Store) Count(ctx context.Context, bot string) (int, error) {
	now := time.Now().UnixMilli()
	n, err := s.rdb.ZCount(ctx, s.indexKey(bot), fmt.Sprintf("(%d", now), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("kvstore: count: %w", err)
	}
	return int(n), nil
}
