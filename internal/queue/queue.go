package queue

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	enqueueScript = redisx.NewScript(luaFS, "lua/enqueue.lua")
	renewScript   = redisx.NewScript(luaFS, "lua/renew.lua")
	releaseScript = redisx.NewScript(luaFS, "lua/release.lua")
	parkScript    = redisx.NewScript(luaFS, "lua/park.lua")
	reparkScript  = redisx.NewScript(luaFS, "lua/repark.lua")
	unparkScript  = redisx.NewScript(luaFS, "lua/unpark.lua")
)

// Defaults for [Config] fields left zero.
const (
	DefaultPartitions    = 16
	DefaultDedupTTL      = 24 * time.Hour
	DefaultLease         = 15 * time.Second
	DefaultPollInterval  = 100 * time.Millisecond
	DefaultBatch         = 16
	DefaultMaxAttempts   = 5
	DefaultBackoff       = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultDrainTimeout  = 10 * time.Second
	DefaultDeadLetterMax = 10000
	DefaultMaxPending    = 10000
	DefaultMaxDelay      = 15 * time.Minute
	DefaultKeyPrefix     = redisx.DefaultPrefix
	group                = "parley"
)

// Runner runs one conversation turn. Run must be idempotent per event ID: a
// second run of a processed event returns the remembered answer. A failure
// that retrying cannot fix should be wrapped with [Permanent].
type Runner interface {
	Run(ctx context.Context, ev *msg.Event) (*msg.TurnResult, error)
}

// Config configures a [Queue]. Zero values mean the defaults above.
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// Partitions is the number of streams events are spread over (default
	// 16). Every replica must use the same number.
	Partitions int
	// DedupTTL is how long a delivery id is remembered (default 24h).
	DedupTTL time.Duration
	// Lease is how long a replica owns a partition without renewing it
	// (default 15s); a crashed replica's partitions move after this long.
	Lease time.Duration
	// PollInterval is how often the idle partitions are checked for events
	// enqueued by other replicas, all in one pipelined round trip (default
	// 100ms); such an event waits up to about two intervals to be read.
	// Events enqueued in this process wake their partition at once.
	PollInterval time.Duration
	// Batch is how many entries one read fetches (default 16).
	Batch int
	// MaxAttempts bounds the tries of a turn or a send before the event goes
	// to the dead letters (default 5).
	MaxAttempts int
	// Backoff is the first wait between tries, doubled each time up to
	// MaxBackoff (defaults 500ms and 30s). A platform's Retry-After wins.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// DrainTimeout is how long an in-flight entry may take to finish once
	// Run's context ends (default 10s); after that it is abandoned and stays
	// pending for another replica.
	DrainTimeout time.Duration
	// DeadLetterMax bounds each bot's dead letters, oldest dropped first
	// (default 10000).
	DeadLetterMax int64
	// MaxPending bounds the events waiting in one partition, in flight and
	// parked included (default 10000); Enqueue refuses more with [ErrFull].
	MaxPending int64
	// MaxDelay bounds how long an event may wait in all for its bot to be
	// back under its limits ([Later] failures, which are not counted as
	// tries, default 15m), and, separately, for the store to be reachable
	// again ([Unavailable] failures); past it, a failure counts as a try,
	// and the event goes to the dead letters after MaxAttempts.
	MaxDelay time.Duration
	// OnDeadLetter, when set, is called for every event moved to the dead
	// letters, with its bot (for metrics).
	OnDeadLetter func(bot string)
	// ID names this replica in leases and consumer groups (default random).
	ID string
	// Runner runs turns (required for Run).
	Runner Runner
	// Sender returns the adapter that sends replies on a channel (required for Run).
	Sender func(channel string) (channels.Sender, bool)
	// Settings returns a bot's settings for a channel (required for Run).
	Settings func(ctx context.Context, bot, channel string) (channels.Settings, error)
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
}

// Queue is the durable event queue. Create it with [New]; it is safe for
// concurrent use.
type Queue struct {
	rdb  redis.UniversalClient
	cfg  Config
	log  *slog.Logger
	wake []chan struct{}
}

// New returns a Queue over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Queue {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.DeadLetterMax <= 0 {
		cfg.DeadLetterMax = DefaultDeadLetterMax
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.ID == "" {
		cfg.ID = uuid.NewString()
	}
	def(&cfg.DedupTTL, DefaultDedupTTL)
	def(&cfg.Lease, DefaultLease)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.Backoff, DefaultBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.DrainTimeout, DefaultDrainTimeout)
	def(&cfg.MaxDelay, DefaultMaxDelay)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{rdb: rdb, cfg: cfg, log: log, wake: make([]chan struct{}, cfg.Partitions)}
	for i := range q.wake {
		q.wake[i] = make(chan struct{}, 1)
	}
	return q
}

// Keys. Every key of a partition carries the partition's hash tag, so the
// scripts stay in one Redis Cluster slot.
func (q *Queue) tag(p int) string          { return q.cfg.KeyPrefix + "q:{p" + strconv.Itoa(p) + "}" }
func (q *Queue) streamKey(p int) string    { return q.tag(p) }
func (q *Queue) leaseKey(p int) string     { return q.tag(p) + ":lease" }
func (q *Queue) dueKey(p int) string       { return q.tag(p) + ":due" }
func (q *Queue) parkedNKey(p int) string   { return q.tag(p) + ":parked-count" }
func (q *Queue) membersKey() string        { return q.cfg.KeyPrefix + "q:members" }
func (q *Queue) deadKey(bot string) string { return q.cfg.KeyPrefix + "deadletters:{" + bot + "}" }
func (q *Queue) seenKey(p int, ev *msg.Event) string {
	return q.tag(p) + ":seen:" + ev.Bot + ":" + ev.Channel + ":" + ev.ID
}
func (q *Queue) sentKey(p int, ev *msg.Event) string {
	return q.tag(p) + ":sent:" + ev.Bot + ":" + ev.Channel + ":" + ev.ID
}

// parkedKey is the list of a conversation's parked entries; member is
// [convMember].
func (q *Queue) parkedKey(p int, member string) string { return q.tag(p) + ":parked:" + member }

// convMember names a conversation in its partition's due set: the bot and
// the conversation's key. Bot names hold no colon, so it is unambiguous.
func convMember(bot string, conv msg.ConversationKey) string { return bot + ":" + string(conv) }

// Partition returns the partition of a conversation: all events of one
// conversation go to one partition, which keeps them in order.
func (q *Queue) Partition(bot string, conv msg.ConversationKey) int {
	h := fnv.New32a()
	h.Write([]byte(bot))
	h.Write([]byte{0})
	h.Write([]byte(conv))
	return int(h.Sum32() % uint32(q.cfg.Partitions))
}

// Load registers the queue's scripts with Redis (on every shard of a cluster).
func (q *Queue) Load(ctx context.Context) error {
	if err := redisx.Preload(ctx, q.rdb, enqueueScript, renewScript, releaseScript, parkScript, reparkScript, unparkScript); err != nil {
		return fmt.Errorf("load queue scripts: %w", err)
	}
	return nil
}

// ErrFull is returned by Enqueue when the event's partition already holds
// MaxPending events (parked ones included): the platform should deliver the
// webhook again later.
var ErrFull error = &apierr.Error{Status: http.StatusServiceUnavailable, Code: "queue_full",
	Message: "too many events are waiting; retry later", Retry: 5 * time.Second,
	Err: errors.New("queue: too many events waiting")}

// Enqueue stores ev for processing. ev.ID must be the platform's delivery
// id: a delivery already enqueued within DedupTTL is not enqueued again, and
// Enqueue reports false for it. A partition holding MaxPending events
// refuses more with ErrFull, before the delivery is marked seen. An event
// without a Received time gets the current time.
func (q *Queue) Enqueue(ctx context.Context, ev *msg.Event) (bool, error) {
	if ev.ID == "" || ev.Bot == "" || ev.Channel == "" {
		return false, errors.New("queue: an event needs an id, a bot and a channel")
	}
	if ev.Received.IsZero() {
		ev.Received = time.Now().UTC()
	}
	return q.enqueue(ctx, ev, q.cfg.DedupTTL)
}

func (q *Queue) enqueue(ctx context.Context, ev *msg.Event, dedup time.Duration) (bool, error) {
	raw, err := encodeEvent(ctx, ev)
	if err != nil {
		return false, fmt.Errorf("encode event: %w", err)
	}
	p := q.Partition(ev.Bot, ev.Key())
	res, err := enqueueScript.Run(ctx, q.rdb, []string{q.seenKey(p, ev), q.streamKey(p), q.parkedNKey(p)},
		dedup.Milliseconds(), raw, time.Now().UnixMicro(), q.cfg.MaxPending).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue: %w", err)
	}
	if _, full := res.(int64); full {
		return false, ErrFull
	}
	select {
	case q.wake[p] <- struct{}{}:
	default:
	}
	return true, nil
}
