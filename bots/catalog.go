package bots

import (
	"context"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/redis/go-redis/v9"
)

// Config configures a [Catalog].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// RefreshInterval is how often cached bots are checked against Redis for
	// changes whose announcement was missed (default 2s).
	RefreshInterval time.Duration
	// Logger receives reload and subscription errors; nil discards them.
	Logger *slog.Logger
	// OnRetire is called with handler versions this process no longer
	// serves (neither stable, canary nor previous), so their sandbox pools
	// can be released. Optional.
	OnRetire func(bot, intent string, version int)
	// OnLoad is called with every generation of a bot this process loads:
	// its first load and each load after a change. Bots with min_vms are
	// loaded at start and again right after each change, without waiting
	// for a turn, so OnLoad can warm their sandbox pools. Optional.
	OnLoad func(b *Bot)
	// NLUSyncExamples is the most examples PutNLU trains on before it
	// returns (default 2000); larger data trains in the background while the
	// previous model keeps serving.
	NLUSyncExamples int
	// NLUTrainTimeout bounds one training (default 2m).
	NLUTrainTimeout time.Duration
	// OnTrainStart is called as every training of a bot's classifier in
	// this process begins, before it trains, with the training's context
	// and the number of examples. The training waits for it to return. A
	// background training's context ends when a newer upload replaces it
	// or the Catalog closes. Optional.
	OnTrainStart func(ctx context.Context, bot string, examples int)
	// Keys seals bots' secrets and channels' settings at rest. Nil means
	// no key: PutSecret is refused, and so is PutChannel with a value for
	// one of the channel's secret settings (SecretSettings).
	Keys *seal.Keyring
	// SecretSettings names a channel's secret settings, as its adapter
	// declares them. Optional.
	SecretSettings func(channel string) []string
	// OnTrain is called after every training of a bot's classifier in this
	// process, with its duration and error. Optional.
	OnTrain func(bot string, examples int, took time.Duration, err error)
}

// Catalog stores bots in Redis and caches snapshots of them. Create it with
// [New], keep it fresh with [Catalog.Run] and stop its background trainings
// with [Catalog.Close].
//
// It composes one part per job, each guarding its own state: the snapshot
// cache that [Catalog.Bot] serves, the programs compiled by uploads, the
// decoded NLU models and the background trainings.
type Catalog struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger
	ks  keyspace

	snapshots *cache    // what Bot serves, and the newest load of each bot
	uploads   *programs // compiled by uploads here, until the next load uses them
	models    *models   // by bot: the last model loaded, kept across reloads
	trainers  *trainers // by bot: its background training in this process
}

// New returns a Catalog over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Catalog {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 2 * time.Second
	}
	if cfg.NLUSyncExamples <= 0 {
		cfg.NLUSyncExamples = 2000
	}
	if cfg.NLUTrainTimeout <= 0 {
		cfg.NLUTrainTimeout = 2 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Catalog{rdb: rdb, cfg: cfg, log: log, ks: keyspace{prefix: cfg.KeyPrefix},
		snapshots: newCache(), uploads: newPrograms(), models: newModels(), trainers: newTrainers()}
}

// Close cancels the background trainings of this process and waits for
// them to end. Their data stays stored: once the training lease expires
// (NLUTrainTimeout), the next replica that loads the bot trains it. Close
// does not stop [Catalog.Run] (its context does); later uploads still store
// data but start no background training here. Close may be called more
// than once.
func (c *Catalog) Close() {
	c.trainers.close()
}
