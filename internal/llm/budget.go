package llm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/redisx"
)

// budgetTTL keeps a day's count a day past its end, for clock skew between
// replicas.
const budgetTTL = 48 * time.Hour

// RedisBudget counts each bot's model tokens per UTC day in Redis, so that
// llm_tokens_per_day holds across replicas. It implements [Budget].
//
//	<prefix>llm:<bot>:day:<YYYYMMDD>   STRING  the day's tokens (input and output)
type RedisBudget struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

var _ Budget = (*RedisBudget)(nil)

// NewRedisBudget returns a budget over rdb with the key prefix (default
// "parley:").
func NewRedisBudget(rdb redis.UniversalClient, prefix string) *RedisBudget {
	return &RedisBudget{rdb: rdb, prefix: redisx.Prefix(prefix), now: time.Now}
}

func (b *RedisBudget) key(bot string) string {
	return b.prefix + "llm:" + bot + ":day:" + b.now().UTC().Format("20060102")
}

// Used implements [Budget].
func (b *RedisBudget) Used(ctx context.Context, bot string) (int64, error) {
	n, err := b.rdb.Get(ctx, b.key(bot)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("llm budget: %w", err)
	}
	return n, nil
}

// Add implements [Budget].
func (b *RedisBudget) Add(ctx context.Context, bot string, n int64) error {
	key := b.key(bot)
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.IncrBy(ctx, key, n)
		p.Expire(ctx, key, budgetTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("llm budget: %w", err)
	}
	return nil
}

// BotKeyPrefixes names the prefix of bot's keys, for deleting a bot.
func (b *RedisBudget) BotKeyPrefixes(bot string) []string {
	return []string{b.prefix + "llm:" + bot + ":"}
}
