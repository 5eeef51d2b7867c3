package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero values of [Config].
const (
	// DefaultDataDir is where the embedded store keeps its snapshot.
	DefaultDataDir = "./parley-data"
	// DefaultSnapshotInterval is how often the embedded store is saved.
	DefaultSnapshotInterval = 10 * time.Second
	// DefaultConnectTimeout bounds the start-up ping of a real Redis.
	DefaultConnectTimeout = 5 * time.Second
)

// clientName is the name every connection announces (CLIENT SETNAME).
const clientName = "parley"

// protocol is the RESP version Parley speaks unless a URL asks for another
// (?protocol=3). Parley uses nothing of RESP3; with it, go-redis looks for
// server push notifications before every command it sends, a read system
// call each time, which was a tenth of a web turn's CPU under load.
const protocol = 2

// Config selects and tunes the store. The zero value is an embedded store
// in [DefaultDataDir].
type Config struct {
	// URL is a redis:// or rediss:// URL (standalone or TLS). Several
	// comma-separated redis:// addresses, or a URL with the query parameter
	// cluster=true, mean Redis Cluster; options and credentials then come
	// from the first address. Empty means the embedded store.
	URL string
	// DataDir is where the embedded store snapshots its data (default
	// "./parley-data"). Unused with a real Redis.
	DataDir string
	// SnapshotInterval is how often the embedded store is saved when
	// something changed (default 10s). Unused with a real Redis.
	SnapshotInterval time.Duration
	// ConnectTimeout bounds the start-up ping of a real Redis (default 5s).
	ConnectTimeout time.Duration
	// Logger receives warnings and progress; nil discards them.
	Logger *slog.Logger
}

// Store is an open Redis: a real one or the embedded one.
type Store struct {
	client   redis.UniversalClient
	describe string
	emb      *embedded // nil for a real Redis

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
}

// Open connects to the Redis that cfg selects, or starts the embedded store
// and restores its snapshot. ctx bounds the start-up work only.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.SnapshotInterval < 0 {
		return nil, fmt.Errorf("snapshot interval must not be negative, got %s", cfg.SnapshotInterval)
	}
	if cfg.ConnectTimeout < 0 {
		return nil, fmt.Errorf("connect timeout must not be negative, got %s", cfg.ConnectTimeout)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.URL == "" {
		return openEmbedded(ctx, cfg)
	}
	return openRedis(ctx, cfg)
}

// Client returns the client every part of Parley shares. It stays valid
// until Close.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Embedded reports whether this is the embedded store.
func (s *Store) Embedded() bool { return s.emb != nil }

// Describe says which store this is, for logs, with any password redacted:
// "redis redis://10.0.0.5:6379/0" or "embedded store, data in ./parley-data".
func (s *Store) Describe() string { return s.describe }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping %s: %w", s.describe, err)
	}
	return nil
}

// Run keeps the embedded store's TTL clock going and saves snapshots every
// SnapshotInterval when something changed, until ctx ends or the store is
// closed; then it returns nil. A failed periodic snapshot is logged and
// retried at the next interval. For a real Redis, Run just waits.
func (s *Store) Run(ctx context.Context) error {
	if s.emb == nil {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		return nil
	}
	return s.emb.run(ctx, s.done)
}

// Close releases the store. The embedded store first saves a final
// snapshot, then stops its server. Close may be called more than once;
// later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		if s.emb == nil {
			if err := s.client.Close(); err != nil {
				s.closeErr = fmt.Errorf("close redis client: %w", err)
			}
			return
		}
		s.closeErr = s.emb.close()
	})
	return s.closeErr
}

// errClosed is returned by work attempted after Close.
var errClosed = errors.New("store is closed")
