package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
)

// The TTL clock ticks every minTick, or less often when a tick is
// expensive: the pause between ticks is at least tickBudget times what the
// last tick took, and at most maxTick.
const (
	minTick    = 100 * time.Millisecond
	maxTick    = 2 * time.Second
	tickBudget = 20
)

// embedded is the in-process store: miniredis plus its TTL clock and
// snapshots.
type embedded struct {
	srv      *miniredis.Miniredis
	server   *server.Server
	client   *redis.Client
	log      *slog.Logger
	dir      string // DataDir as configured
	file     string // the snapshot
	interval time.Duration
	unlock   func() error // releases the DataDir lock

	// gate makes snapshots point-in-time: commands sent through client hold
	// it for reading (see gateHook), a snapshot holds it for writing.
	gate sync.RWMutex
	// dirty is set by any command that may change data since the last
	// snapshot began.
	dirty atomic.Bool

	clockMu  sync.Mutex
	lastTick time.Time // monotonic; TTLs have been advanced up to here

	saveMu sync.Mutex
	closed bool            // no more snapshots; guarded by saveMu
	warned map[string]bool // warnings given once; guarded by saveMu

	running atomic.Bool // Run is running
}

// openEmbedded starts miniredis, restores the snapshot in cfg.DataDir and
// connects a client to it.
func openEmbedded(ctx context.Context, cfg Config) (st *Store, err error) {
	dir := cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory for the embedded store: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = unlock()
		}
	}()
	file := filepath.Join(dir, snapshotName)
	snap, err := readSnapshot(file)
	if err != nil {
		return nil, err
	}
	removeStaleTemps(dir, cfg.Logger)

	srv := miniredis.NewMiniRedis()
	// Anyone on this host can reach a loopback port; a password that only
	// this process knows keeps them out.
	password := rand.Text()
	srv.RequireAuth(password)
	if err := srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded store: %w", err)
	}
	client := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		Password:              password,
		ClientName:            clientName,
		ContextTimeoutEnabled: true,
		Protocol:              protocol,
	})
	e := &embedded{
		srv:      srv,
		server:   srv.Server(),
		client:   client,
		log:      cfg.Logger,
		dir:      dir,
		file:     file,
		interval: cfg.SnapshotInterval,
		unlock:   unlock,
		warned:   map[string]bool{},
	}
	defer func() {
		if err != nil {
			_ = client.Close()
			srv.Close()
		}
	}()
	client.AddHook(gateHook{gate: &e.gate})

	now := time.Now()
	e.lastTick = now
	if snap != nil {
		restored, expired, err := e.restore(ctx, snap, now)
		if err != nil {
			return nil, fmt.Errorf("restore snapshot %s: %w; move the file away to start with an empty store", file, err)
		}
		cfg.Logger.Info("restored the embedded store", "file", file, "keys", restored, "expired", expired,
			"saved_at", snap.SavedAt)
	}
	e.server.SetPreHook(e.observe)
	e.dirty.Store(false)
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("ping embedded store: %w", err)
	}
	return &Store{
		client:   client,
		describe: "embedded store, data in " + dir,
		emb:      e,
		done:     make(chan struct{}),
	}, nil
}

// neutral lists commands that miniredis does not mark read-only but that
// never change data themselves. EVAL and EXEC are here because the
// commands they run pass observe on their own.
var neutral = map[string]bool{
	"AUTH": true, "CLIENT": true, "CLUSTER": true, "COMMAND": true, "DISCARD": true, "ECHO": true,
	"EVAL": true, "EVALSHA": true, "EXEC": true, "HELLO": true, "INFO": true, "MEMORY": true,
	"MULTI": true, "OBJECT": true, "PING": true, "PSUBSCRIBE": true, "PUBLISH": true, "PUBSUB": true,
	"PUNSUBSCRIBE": true, "QUIT": true, "SCRIPT": true, "SELECT": true, "SUBSCRIBE": true, "TIME": true,
	"UNSUBSCRIBE": true, "UNWATCH": true, "WAIT": true, "WATCH": true, "XINFO": true,
}

// observe runs before every command miniredis dispatches, including those a
// Lua script calls, and marks the store dirty on anything that may write.
func (e *embedded) observe(_ *server.Peer, cmd string, _ ...string) bool {
	if !e.dirty.Load() && !neutral[cmd] && e.server.IsRegisteredCommand(cmd) && !e.server.IsReadOnlyCommand(cmd) {
		e.dirty.Store(true)
	}
	return false // let miniredis run the command
}

// gateHook makes every command sent through the embedded client hold
// gate for reading while it runs, so that a snapshot, which holds it for
// writing, sees no command half done. Blocking commands could hold it for
// ever and pass without it, as does everything in a context marked with
// bypassGate (the snapshot's own reads, and the connection set-up that
// go-redis runs inside a command).
type gateHook struct{ gate *sync.RWMutex }

type bypassGate struct{}

// blocking lists commands that may wait for data (go-redis lower-cases names).
var blocking = map[string]bool{
	"blpop": true, "brpop": true, "brpoplpush": true, "blmove": true, "blmpop": true,
	"bzpopmin": true, "bzpopmax": true, "bzmpop": true, "xread": true, "xreadgroup": true,
	"wait": true, "waitaof": true,
}

func (gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(bypassGate{}) != nil || blocking[cmd.Name()] {
			return next(ctx, cmd)
		}
		h.gate.RLock()
		defer h.gate.RUnlock()
		return next(context.WithValue(ctx, bypassGate{}, true), cmd)
	}
}

func (h gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(bypassGate{}) != nil {
			return next(ctx, cmds)
		}
		for _, cmd := range cmds {
			if blocking[cmd.Name()] {
				return next(ctx, cmds)
			}
		}
		h.gate.RLock()
		defer h.gate.RUnlock()
		return next(context.WithValue(ctx, bypassGate{}, true), cmds)
	}
}

// advanceClock lets miniredis's TTLs shrink by the time passed since the
// last tick, and returns how long that took.
func (e *embedded) advanceClock() time.Duration {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.advanceClockLocked()
}

func (e *embedded) advanceClockLocked() time.Duration {
	now := time.Now()
	elapsed := now.Sub(e.lastTick) // monotonic: wall clock steps don't count
	if elapsed <= 0 {
		return 0
	}
	e.srv.FastForward(elapsed)
	e.lastTick = now
	return time.Since(now)
}

// nextTick is the pause after a tick that took cost.
func nextTick(cost time.Duration) time.Duration {
	return min(max(minTick, tickBudget*cost), maxTick)
}

// run is Store.Run for the embedded store.
func (e *embedded) run(ctx context.Context, done <-chan struct{}) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("another Run of this store is still running")
	}
	defer e.running.Store(false)
	tick := time.NewTimer(minTick)
	defer tick.Stop()
	snap := time.NewTicker(e.interval)
	defer snap.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-tick.C:
			tick.Reset(nextTick(e.advanceClock()))
		case <-snap.C:
			// The snapshot is local work; finish it even if ctx ends meanwhile.
			if _, err := e.save(context.WithoutCancel(ctx), false); err != nil && !errors.Is(err, errClosed) {
				e.log.Error("saving the embedded store failed; retrying at the next interval", "file", e.file, "err", err)
			}
		}
	}
}

// save writes a snapshot if something changed since the last one, or
// always with force. It reports whether it wrote one.
func (e *embedded) save(ctx context.Context, force bool) (bool, error) {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	return e.saveLocked(ctx, force)
}

func (e *embedded) saveLocked(ctx context.Context, force bool) (bool, error) {
	if e.closed {
		return false, errClosed
	}
	if !force && !e.dirty.Load() {
		return false, nil
	}
	start := time.Now()
	snap, err := e.capture(ctx)
	if err == nil {
		err = writeSnapshot(e.dir, e.file, snap)
	}
	if err != nil {
		e.dirty.Store(true) // try again next time
		return false, err
	}
	e.log.Debug("saved the embedded store", "file", e.file, "keys", len(snap.Keys), "took", time.Since(start))
	return true, nil
}

// capture copies the data set while no command runs through the client.
func (e *embedded) capture(ctx context.Context) (*snapshotFile, error) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.advanceClockLocked()
	e.gate.Lock()
	defer e.gate.Unlock()
	e.dirty.Store(false)
	return e.dump(context.WithValue(ctx, bypassGate{}, true), e.lastTick)
}

// warnOnce logs msg the first time it is given for key. Call with saveMu held.
func (e *embedded) warnOnce(key, msg string, args ...any) {
	if e.warned[key] {
		return
	}
	e.warned[key] = true
	e.log.Warn(msg, args...)
}

// close saves a final snapshot and stops everything.
func (e *embedded) close() error {
	var errs []error
	e.saveMu.Lock()
	if _, err := e.saveLocked(context.Background(), true); err != nil {
		errs = append(errs, fmt.Errorf("final snapshot of the embedded store: %w", err))
	}
	e.closed = true
	e.saveMu.Unlock()
	if err := e.client.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close embedded store client: %w", err))
	}
	e.srv.Close()
	if err := e.unlock(); err != nil {
		errs = append(errs, fmt.Errorf("unlock data directory: %w", err))
	}
	return errors.Join(errs...)
}
