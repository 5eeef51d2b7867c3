package ratelimit

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/internal/rate"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

var allowScript = redisx.NewScript(luaFS, "lua/allow.lua")

// Defaults for [Config] fields left zero.
const (
	DefaultKeyPrefix = redisx.DefaultPrefix
	DefaultTimeout   = 250 * time.Millisecond
)

// Config configures a [Limiter]. Zero values mean the defaults above.
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// Timeout bounds one check (default 250ms); a check that takes longer
	// lets the turn through.
	Timeout time.Duration
	// Logger receives a warning for every turn let through because Redis
	// could not answer; nil discards them.
	Logger *slog.Logger
}

// Scope names the limit that refused a turn.
type Scope string

// The scopes of [Decision].
const (
	ScopeBot          Scope = "bot"
	ScopeConversation Scope = "conversation"
)

// Decision is the answer to one check.
type Decision struct {
	// Allowed is true when the turn may run; it then counts against both limits.
	Allowed bool
	// Scope is the limit that refused the turn (the one with the longer wait
	// when both did); empty when Allowed.
	Scope Scope
	// RetryAfter is how long until a turn of this conversation would be
	// allowed; zero when Allowed.
	RetryAfter time.Duration
}

// Limiter enforces rate limits in Redis. Create it with [New].
type Limiter struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
	log     *slog.Logger
}

// New returns a Limiter over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{rdb: rdb, prefix: cfg.KeyPrefix, timeout: cfg.Timeout, log: log}
}

// Load registers the limiter's script with Redis (on every shard of a cluster).
func (l *Limiter) Load(ctx context.Context) error {
	if err := redisx.Preload(ctx, l.rdb, allowScript); err != nil {
		return fmt.Errorf("load rate limit script: %w", err)
	}
	return nil
}

// Keys. Both carry the bot's hash tag, so one script checks both in one
// Redis Cluster slot. A conversation's key holds a hash of its id, never
// the id: the key outlives an erasure of the conversation's user (until
// its limit's period has passed), and must not name anyone meanwhile.
func (l *Limiter) botKey(bot string) string { return l.prefix + "rl:{" + bot + "}" }

// BotKeyPrefixes returns the prefixes of the rate limit counters of bot and
// of its conversations: every key that starts with one of them is the bot's
// (a bot name holds no "}", so no other bot's key shares it).
func (l *Limiter) BotKeyPrefixes(bot string) []string { return []string{l.botKey(bot)} }
func (l *Limiter) conversationKey(bot, conversation string) string {
	sum := sha256.Sum256([]byte(conversation))
	return l.prefix + "rl:{" + bot + "}:c:" + hex.EncodeToString(sum[:16])
}

// Allow checks one turn of a conversation against lim and, when both
// limits allow it, counts it against both, in one round trip. With no
// limits set it returns at once without asking Redis.
//
// Allow fails open: when Redis cannot answer (down, slow beyond
// Config.Timeout, or an error), the turn is allowed and a warning logged.
func (l *Limiter) Allow(ctx context.Context, bot, conversation string, lim rate.Limits) Decision {
	if lim.Bot.IsZero() && lim.Conversation.IsZero() {
		return Decision{Allowed: true}
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	bi, bt := gcra(lim.Bot)
	ci, ct := gcra(lim.Conversation)
	res, err := allowScript.Run(ctx, l.rdb, []string{l.botKey(bot), l.conversationKey(bot, conversation)},
		bi, bt, ci, ct).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected script answer %v", res)
	}
	if err != nil {
		l.log.WarnContext(ctx, "rate limit unchecked: the store did not answer; letting the turn through",
			"bot", bot, "err", err)
		return Decision{Allowed: true}
	}
	if res[0] == 0 {
		return Decision{Allowed: true}
	}
	scope := ScopeBot
	if res[0] == 2 {
		scope = ScopeConversation
	}
	return Decision{Scope: scope, RetryAfter: time.Duration(res[1]) * time.Microsecond}
}

// gcra is the rate r as the script takes it: the emission interval (the time one
// turn uses up) and the burst tolerance, both in microseconds; zero for no
// limit.
func gcra(r rate.Rate) (interval, tolerance int64) {
	if r.IsZero() {
		return 0, 0
	}
	interval = max(r.Period.Microseconds()/int64(r.Count), 1)
	return interval, interval * int64(r.Count)
}
