package webchat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
)

// Defaults for [Config] fields left zero.
const (
	DefaultMaxLen  = 200
	DefaultTTL     = 24 * time.Hour
	DefaultCatchUp = 2 * time.Second
	// readPage is how many entries a follower reads at a time.
	readPage = 100
)

// Config configures an [Outbox]. Zero values mean the defaults.
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// MaxLen bounds the entries an outbox keeps (default 200); older ones
	// are dropped.
	MaxLen int
	// TTL is how long an outbox is kept after its last append (default 24h).
	TTL time.Duration
	// CatchUp is how often a follower reads its outbox without a notice
	// (default 2s).
	CatchUp time.Duration
	// Logger receives subscription failures; nil discards them.
	Logger *slog.Logger
}

// Entry is one answer in an outbox.
type Entry struct {
	// ID is the entry's stream id, "<ms>-<seq>".
	ID string
	// Data is the answer as it was appended.
	Data []byte
}

// Outbox appends to and follows the outboxes. Create it with [New].
type Outbox struct {
	rdb    redis.UniversalClient
	cfg    Config
	prefix string
	log    *slog.Logger

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// New returns the outboxes kept in rdb.
func New(rdb redis.UniversalClient, cfg Config) *Outbox {
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.CatchUp <= 0 {
		cfg.CatchUp = DefaultCatchUp
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{rdb: rdb, cfg: cfg, prefix: redisx.Prefix(cfg.KeyPrefix), log: log,
		waiters: map[string]map[chan struct{}]struct{}{}}
}

// key is the outbox of a web conversation.
func (o *Outbox) key(bot, conversation string) string {
	sum := sha256.Sum256([]byte(bot + "\x00" + string(msg.KeyOf("web", conversation))))
	return o.prefix + "web:{" + bot + ":" + hex.EncodeToString(sum[:16]) + "}:out"
}

func (o *Outbox) wakeChannel() string { return o.prefix + "web:wake" }

// BotKeyPrefixes returns the prefix of bot's outboxes (a bot name holds no
// ":"), for deleting a bot.
func (o *Outbox) BotKeyPrefixes(bot string) []string { return []string{o.prefix + "web:{" + bot + ":"} }

// Append adds answer to the conversation's outbox, renews its expiry and
// wakes its followers, in one round trip; it returns the entry's id.
func (o *Outbox) Append(ctx context.Context, bot, conversation string, answer []byte) (string, error) {
	key := o.key(bot, conversation)
	var add *redis.StringCmd
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		add = p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: int64(o.cfg.MaxLen), Values: []any{"a", answer}})
		p.PExpire(ctx, key, o.cfg.TTL)
		p.Publish(ctx, o.wakeChannel(), key)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("webchat: append: %w", err)
	}
	return add.Val(), nil
}

// Forget deletes the outboxes of the web conversations among conversations
// (an erasure of their user); it implements analytics.Forgetter.
func (o *Outbox) Forget(ctx context.Context, bot, _ string, conversations []msg.ConversationKey) (map[string]int, error) {
	n := 0
	for _, k := range conversations {
		channel, conv, ok := k.Split()
		if !ok || channel != "web" {
			continue
		}
		removed, err := o.rdb.Del(ctx, o.key(bot, conv)).Result()
		if err != nil {
			return nil, fmt.Errorf("webchat: forget: %w", err)
		}
		n += int(removed)
	}
	return map[string]int{"web_outboxes": n}, nil
}

// ValidID reports whether s is an entry id ("<ms>-<seq>").
func ValidID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}

// Run holds the replica's one subscription to the wake-up channel until ctx
// ends, waking the followers of each outbox named in a notice.
func (o *Outbox) Run(ctx context.Context) error {
	sub := o.rdb.Subscribe(ctx, o.wakeChannel())
	defer func() { _ = sub.Close() }()
	ch := sub.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			o.wake(m.Payload)
		}
	}
}

// wake signals every follower of key, without blocking.
func (o *Outbox) wake(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.waiters[key] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Follower reads one outbox as it grows. Create it with [Outbox.Follow].
type Follower struct {
	o      *Outbox
	key    string
	last   string
	wakeup chan struct{}
	ticker *time.Ticker
	first  bool
}

// Follow starts following a conversation's outbox after the entry after
// ("0" for everything kept, "" for what is appended from now on). Close it
// when done.
func (o *Outbox) Follow(ctx context.Context, bot, conversation, after string) (*Follower, error) {
	f := &Follower{o: o, key: o.key(bot, conversation), last: after, wakeup: make(chan struct{}, 1),
		ticker: time.NewTicker(o.cfg.CatchUp), first: true}
	if after == "" {
		// From now on: after the newest entry kept, if any.
		last, err := o.rdb.XRevRangeN(ctx, f.key, "+", "-", 1).Result()
		if err != nil {
			f.ticker.Stop()
			return nil, fmt.Errorf("webchat: follow: %w", err)
		}
		f.last = "0"
		if len(last) == 1 {
			f.last = last[0].ID
		}
	}
	o.mu.Lock()
	if o.waiters[f.key] == nil {
		o.waiters[f.key] = map[chan struct{}]struct{}{}
	}
	o.waiters[f.key][f.wakeup] = struct{}{}
	o.mu.Unlock()
	return f, nil
}

// Last is the id of the last entry delivered (or the starting point).
func (f *Follower) Last() string { return f.last }

// read returns the entries after the last one delivered.
func (f *Follower) read(ctx context.Context) ([]Entry, error) {
	msgs, err := f.o.rdb.XRangeN(ctx, f.key, "("+f.last, "+", readPage).Result()
	if err != nil {
		return nil, fmt.Errorf("webchat: read: %w", err)
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		data, _ := m.Values["a"].(string)
		out = append(out, Entry{ID: m.ID, Data: []byte(data)})
		f.last = m.ID
	}
	return out, nil
}

// ErrClosed is returned by [Follower.Next] after Close.
var ErrClosed = errors.New("webchat: follower closed")

// Next returns the next entries, oldest first, waiting for them until ctx
// ends (then it returns ctx's error). The first call returns what was
// kept after the starting point at once, if anything.
func (f *Follower) Next(ctx context.Context) ([]Entry, error) {
	if f.ticker == nil {
		return nil, ErrClosed
	}
	if f.first {
		f.first = false
		if entries, err := f.read(ctx); err != nil || len(entries) > 0 {
			return entries, err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.wakeup:
		case <-f.ticker.C:
		}
		entries, err := f.read(ctx)
		if err != nil || len(entries) > 0 {
			return entries, err
		}
	}
}

// Close stops following.
func (f *Follower) Close() {
	if f.ticker == nil {
		return
	}
	f.ticker.Stop()
	f.ticker = nil
	f.o.mu.Lock()
	defer f.o.mu.Unlock()
	delete(f.o.waiters[f.key], f.wakeup)
	if len(f.o.waiters[f.key]) == 0 {
		delete(f.o.waiters, f.key)
	}
}
