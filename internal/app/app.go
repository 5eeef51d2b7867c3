// Package app is Parley's composition root: the one place that knows every
// concrete type and wires the store, catalog, sandbox, sessions, engine,
// channel adapters and gateway together.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/web"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// App is one running Parley process.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	store    *store.Store
	catalog  *bots.Catalog
	runtime  *sandbox.Runtime
	server   *gateway.Server
	adminKey string
}

// channelAdapters lists every channel Parley serves. Register new adapters here.
func channelAdapters() (*channels.Registry, error) {
	return channels.NewRegistry(
		web.New(),
	)
}

// New opens the store and builds every component. Close releases them.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	st, err := store.Open(ctx, store.Config{
		URL:              cfg.RedisURL,
		DataDir:          cfg.DataDir,
		SnapshotInterval: cfg.SnapshotInterval,
		ConnectTimeout:   cfg.RedisConnectTimeout,
		Logger:           log.With("component", "store"),
	})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, store: st}
	if a.adminKey, err = loadAdminKey(cfg, log); err != nil {
		st.Close()
		return nil, err
	}
	rdb := st.Client()
	a.runtime = sandbox.New(sandbox.Config{MaxVMsPerPool: cfg.PoolSize, Logger: log.With("component", "lua")})
	a.catalog = bots.New(rdb, bots.Config{
		KeyPrefix:       cfg.KeyPrefix,
		RefreshInterval: cfg.CatalogRefresh,
		Logger:          log.With("component", "catalog"),
		OnRetire: func(bot, intent string, version int) {
			a.runtime.Drop(sandbox.PoolKey{Bot: bot, Intent: intent, Version: version})
		},
	})
	sess := sessions.New(rdb, sessions.Config{KeyPrefix: cfg.KeyPrefix})
	if err := sess.Load(ctx); err != nil {
		log.Warn("could not preload session scripts; they load on first use", "err", err)
	}
	eng := engine.New(engine.Config{Bots: a.catalog, Sessions: sess, Runtime: a.runtime, Logger: log.With("component", "engine")})
	registry, err := channelAdapters()
	if err != nil {
		a.Close()
		return nil, err
	}
	a.server, err = gateway.New(gateway.Config{
		AdminKey:      a.adminKey,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		Logger:        log.With("component", "gateway"),
		Catalog:       a.catalog,
		Dispatcher:    eng,
		Channels:      registry,
		Store:         st,
		Conversations: eng,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Handler is the HTTP API, for tests and embedding.
func (a *App) Handler() http.Handler { return a.server }

// AdminKey is the management API key in use.
func (a *App) AdminKey() string { return a.adminKey }

// StartBackground runs the catalog's change listener and the store's
// maintenance until ctx ends. The returned function waits for them to stop.
func (a *App) StartBackground(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{a.catalog.Run, a.store.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				a.log.Error("background task stopped", "err", err)
			}
		}()
	}
	return wg.Wait
}

// Serve listens on the configured address until ctx ends, then drains
// in-flight requests for up to the shutdown timeout.
func (a *App) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	return a.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener.
func (a *App) ServeListener(ctx context.Context, ln net.Listener) error {
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	waitBackground := a.StartBackground(bgCtx)
	defer func() {
		stopBackground()
		waitBackground()
	}()

	srv := &http.Server{Handler: a.server, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("parley is listening", "addr", ln.Addr().String(), "store", a.store.Describe())

	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight turns", "timeout", a.cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("drain in-flight requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the sandbox and closes the store (the embedded store saves a
// final snapshot).
func (a *App) Close() error {
	if a.runtime != nil {
		a.runtime.Close()
	}
	return a.store.Close()
}

// loadAdminKey returns the configured key, or the one kept in the data dir,
// generating and announcing it on first start.
func loadAdminKey(cfg config.Config, log *slog.Logger) (string, error) {
	if cfg.AdminKey != "" {
		return cfg.AdminKey, nil
	}
	path := filepath.Join(cfg.DataDir, "admin.key")
	if raw, err := os.ReadFile(path); err == nil {
		if key := strings.TrimSpace(string(raw)); len(key) >= 16 {
			return key, nil
		}
		return "", fmt.Errorf("admin key file %s is shorter than 16 characters; fix or delete it", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin key: %w", err)
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate admin key: %w", err)
	}
	key := "pk_" + hex.EncodeToString(buf)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save admin key: %w", err)
	}
	log.Warn("generated an admin key for the management API; it is shown only this once (it is kept in "+path+")",
		"admin_key", key)
	return key, nil
}
