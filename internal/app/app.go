// Package app is Parley's composition root: the one place that knows every
// concrete type and wires the store, catalog, sandbox, sessions, engine,
// channel adapters and gateway together.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/parleyhq/parley/adminapi"
	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/alexa"
	"github.com/parleyhq/parley/channels/dialogflow"
	"github.com/parleyhq/parley/channels/dialogflowcx"
	"github.com/parleyhq/parley/channels/discord"
	"github.com/parleyhq/parley/channels/lex"
	"github.com/parleyhq/parley/channels/line"
	"github.com/parleyhq/parley/channels/messenger"
	"github.com/parleyhq/parley/channels/slack"
	"github.com/parleyhq/parley/channels/teams"
	"github.com/parleyhq/parley/channels/telegram"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twiliovoice"
	"github.com/parleyhq/parley/channels/web"
	"github.com/parleyhq/parley/channels/whatsapp"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/internal/analytics"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/egress"
	"github.com/parleyhq/parley/internal/handoff"
	"github.com/parleyhq/parley/internal/invocations"
	"github.com/parleyhq/parley/internal/kvstore"
	"github.com/parleyhq/parley/internal/llm"
	"github.com/parleyhq/parley/internal/logctx"
	"github.com/parleyhq/parley/internal/purge"
	"github.com/parleyhq/parley/internal/queue"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/internal/scheduler"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/internal/webchat"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// App is one running Parley process.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	store   *store.Store
	catalog *bots.Catalog
	runtime *sandbox.Runtime
	egress  *egress.Client
	server  *gateway.Server
	// admin is the management API, whose log streams end when the server
	// starts shutting down.
	admin     *adminapi.API
	queue     *queue.Queue
	queueConn *store.Store // the queue's own connections to a real Redis; nil with the embedded store
	scheduler *scheduler.Scheduler
	handoffs  *handoff.Manager
	purger    *purge.Purger
	adminKey  string

	invocations *invocations.Recorder
	obs         *observability
	// outbox keeps the web conversations' answers for live connections.
	outbox *webchat.Outbox

	// What in-process hosts reach through the methods of inprocess.go.
	engine   *engine.Engine
	sessions *sessions.Store
	channels *channels.Registry
	owners   botKeyOwners
}

// channelAdapters lists every channel Parley serves. Register new adapters
// here. send is the HTTP client of the channels that send replies through
// their platform's API; nil means each adapter's default. cfg names the
// platform endpoints that are server configuration (Teams').
func channelAdapters(cfg config.Config, log *slog.Logger, send *http.Client, webCfg web.Config) (*channels.Registry, error) {
	if send == nil {
		// Platform sends within a traced turn carry the trace on; the
		// adapters stay free of the tracing package.
		send = &http.Client{Timeout: 10 * time.Second, Transport: tracing.Transport(nil)}
	}
	return channels.NewRegistry(
		web.New(webCfg),
		slack.New(slack.Config{Client: send}),
		telegram.New(telegram.Config{Client: send}),
		alexa.New(alexa.Config{Logger: log.With("component", "alexa"), Client: send}), // progressive responses
		twiliovoice.New(twiliovoice.Config{}),
		dialogflow.New(dialogflow.Config{}),
		dialogflowcx.New(dialogflowcx.Config{}),
		lex.New(lex.Config{}),
		twilio.New(twilio.Config{Client: send}),
		messenger.New(messenger.Config{Client: send}),
		whatsapp.New(whatsapp.Config{Client: send}),
		line.New(line.Config{Client: send}),
		discord.New(discord.Config{Client: send}),
		teams.New(teams.Config{Client: send, OpenIDMetadataURL: cfg.TeamsOpenIDMetadataURL,
			TokenURL: cfg.TeamsTokenURL, ServiceURL: cfg.TeamsServiceURL}),
	)
}

// New opens the store and builds every component. Close releases them.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	return NewWithHooks(ctx, cfg, log, Hooks{})
}

// NewWithHooks is New with parts replaced for a host that runs bots under
// test (see Hooks); a server calls New.
func NewWithHooks(ctx context.Context, cfg config.Config, log *slog.Logger, hooks Hooks) (*App, error) {
	log = slog.New(logctx.NewHandler(log.Handler())) // every record logged with a request's context names the request
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
	if cfg.Pprof {
		sampleContention()
	}
	if a.adminKey, err = loadAdminKey(cfg, log); err != nil {
		st.Close()
		return nil, err
	}
	rdb := st.Client()
	kv := kvstore.New(rdb, kvstore.Config{KeyPrefix: cfg.KeyPrefix})
	if err := kv.Load(ctx); err != nil {
		log.Warn("could not preload store module scripts; they load on first use", "err", err)
	}
	a.outbox = webchat.New(rdb, webchat.Config{KeyPrefix: cfg.KeyPrefix, Logger: log.With("component", "webchat")})
	registry, err := channelAdapters(cfg, log, hooks.SendClient, web.Config{Tokens: web.NewTokens(webTokenSecret(a.adminKey)),
		Outbox: a.outbox})
	if err != nil {
		st.Close()
		return nil, err
	}
	keys, err := loadSecretKeys(cfg, st.Embedded(), log)
	if err != nil {
		st.Close()
		return nil, err
	}
	// The catalog calls back into the runtime only when it loads a bot,
	// which happens after New.
	a.catalog = bots.New(rdb, bots.Config{
		KeyPrefix:       cfg.KeyPrefix,
		RefreshInterval: cfg.CatalogRefresh,
		Logger:          log.With("component", "catalog"),
		Keys:            keys,
		SecretSettings:  secretSettingsOf(registry),
		OnRetire: func(bot, intent string, version int) {
			a.runtime.Drop(sandbox.PoolKey{Bot: bot, Intent: intent, Version: version})
		},
		OnLoad: func(b *bots.Bot) { prewarm(a.runtime, b) },
	})
	sealStored(ctx, a.catalog, log)
	outbound := hooks.HTTP
	if outbound == nil {
		a.egress = egress.New(egress.Config{})
		outbound = a.egress
	}
	llmBudget := llm.NewRedisBudget(rdb, cfg.KeyPrefix)
	// Wired before the runtime, whose Config takes it; the metrics join it
	// once the observability exists.
	models := &llmMeter{}
	// A host that answers handlers' http calls itself (parley test) has no
	// egress: its handlers get "llm: not available" rather than a real call.
	var model sandbox.LLM
	if a.egress != nil {
		model = llm.New(llm.Config{HTTP: a.egress, Secrets: a.catalog, Budget: llmBudget, Meter: models,
			Logger: log.With("component", "llm")})
	}
	a.runtime = sandbox.New(sandbox.Config{
		MaxVMsPerPool: cfg.PoolSize,
		IdleTimeout:   cfg.SandboxIdleTimeout,
		Logger:        log.With("component", "lua"),
		HeapLimit:     cfg.SandboxHeapLimit,
		KV:            kv,
		HTTP:          outbound,
		Secrets:       a.catalog,
		Clock:         hooks.Clock,
		LLM:           model,
		ChannelKinds:  registry.Names(),
	})
	a.invocations = invocations.New(rdb, invocations.Config{KeyPrefix: cfg.KeyPrefix, Logger: log.With("component", "invocations")})
	sess := sessions.New(rdb, sessions.Config{KeyPrefix: cfg.KeyPrefix})
	if err := sess.Load(ctx); err != nil {
		log.Warn("could not preload session scripts; they load on first use", "err", err)
	}
	// What an erasure removes besides sessions and analytics; the queue's dead
	// letters join once the queue exists (it needs the engine, which needs
	// the observability).
	forget := map[string]analytics.Forgetter{"invocation_logs": a.invocations, "web_outboxes": a.outbox}
	a.obs = newObservability(cfg, rdb, sess, forget, log)
	a.obs.watchSandbox(a.runtime)
	a.obs.metrics.WatchStore(st.Ping)
	models.metrics = a.obs.metrics
	limiter := ratelimit.New(rdb, ratelimit.Config{KeyPrefix: cfg.KeyPrefix, Logger: log.With("component", "ratelimit")})
	if err := limiter.Load(ctx); err != nil {
		log.Warn("could not preload the rate limit script; it loads on first use", "err", err)
	}
	handoffs := handoff.NewStore(rdb, cfg.KeyPrefix)
	if err := handoffs.Load(ctx); err != nil {
		log.Warn("could not preload handoff scripts; they load on first use", "err", err)
	}
	// The handoff manager runs handback turns on the engine, which asks it
	// who owns a conversation: it reaches the engine through a reference
	// set once the engine exists.
	handback := &engineRef{}
	var webhook *handoff.Webhook
	if a.egress != nil {
		webhook = handoff.NewWebhook(handoff.WebhookConfig{HTTP: a.egress, Secrets: a.catalog,
			Logger: log.With("component", "handoff")})
	}
	a.handoffs = handoff.New(handoff.Config{Store: handoffs, Bots: a.catalog, Runner: handback, Channels: registry,
		Conversations: sessionExists{sess}, Recorder: a.obs, Webhook: webhook, Logger: log.With("component", "handoff")})
	eng := engine.New(engine.Config{Bots: a.catalog, Sessions: sess, Runtime: a.runtime, Logger: log.With("component", "engine"),
		Invocations: a.obs.countStarts(a.invocations), Observer: a.obs, Limiter: limiter, Handoffs: a.handoffs})
	handback.eng = eng
	a.scheduler = scheduler.New(rdb, scheduler.Config{
		KeyPrefix:   cfg.KeyPrefix,
		MinInterval: cfg.ScheduleMinInterval,
		Logger:      log.With("component", "scheduler"),
		Runner:      eng,
		Bots:        a.catalog,
		Channels:    registry,
		OnRun:       a.obs.metrics.ScheduleRun,
	})
	queuePoll, qrdb := cfg.QueuePoll, rdb
	if st.Embedded() {
		// One process: every enqueue wakes its partition, so polls only catch strays.
		queuePoll = max(queuePoll, time.Second)
	} else {
		// The queue's workers poll all the time: give them connections of their
		// own, so they never wait for (or delay) the request path's.
		a.queueConn, err = store.Open(ctx, store.Config{URL: cfg.RedisURL, ConnectTimeout: cfg.RedisConnectTimeout,
			Logger: log.With("component", "queue")})
		if err != nil {
			a.Close()
			return nil, err
		}
		qrdb = a.queueConn.Client()
	}
	a.queue = queue.New(qrdb, queue.Config{
		KeyPrefix:    cfg.KeyPrefix,
		Partitions:   cfg.QueuePartitions,
		Lease:        cfg.QueueLease,
		PollInterval: queuePoll,
		DrainTimeout: cfg.ShutdownTimeout,
		Runner:       turnRunner{eng},
		Sender:       senderFor(registry),
		Settings:     a.channelSettings,
		OnDeadLetter: a.obs.metrics.DeadLettered,
		Logger:       log.With("component", "queue"),
	})
	a.obs.watchQueue(a.queue)
	forget["dead_letters"] = a.queue
	if err := a.queue.Load(ctx); err != nil {
		log.Warn("could not preload queue scripts; they load on first use", "err", err)
	}
	owners := botKeyOwners{"catalog": a.catalog, "store": kv, "sessions": sess, "analytics": a.obs.analytics,
		"invocation_logs": a.invocations, "schedules": a.scheduler, "rate_limits": limiter, "queue": a.queue,
		"llm_budget": llmBudget, "web_outboxes": a.outbox, "handoffs": handoffs}
	a.engine, a.sessions, a.channels, a.owners = eng, sess, registry, owners
	a.purger = purge.New(rdb, purge.Config{
		KeyPrefix: cfg.KeyPrefix,
		Registry:  a.catalog,
		Families:  owners.families,
		Cleaners:  map[string]purge.Cleaner{"queued_events": a.queue, "schedule_index": a.scheduler, "handoff_index": handoffs},
		Settle:    cfg.BotDeleteSettle,
		Logger:    log.With("component", "purge"),
	})
	admin, err := adminapi.New(adminapi.Config{
		AdminKey:      a.adminKey,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		Logger:        log.With("component", "adminapi"),
		Catalog:       a.catalog,
		Deletions:     a.purger,
		Dispatcher:    eng,
		Channels:      registry,
		Conversations: a.obs.analytics,
		Queue:         a.queue,
		Schedules:     a.scheduler,
		Secrets:       a.catalog,
		Invocations:   a.invocations,
		MaxFollowers:  cfg.LogFollowers,
		Heartbeat:     cfg.LogHeartbeat,
		Analytics:     a.obs.analytics,
		Handoffs:      a.handoffs,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.admin = admin
	a.server, err = gateway.New(gateway.Config{
		AdminKey:       a.adminKey,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: cfg.TrustedProxies,
		Logger:         log.With("component", "gateway"),
		Catalog:        a.catalog,
		Dispatcher:     eng,
		Channels:       registry,
		Store:          st,
		Queue:          a.queue,

		Instruments:       a.obs.analytics,
		Requests:          a.obs.metrics,
		Metrics:           a.obs.handler(),
		MetricsRequireKey: cfg.MetricsAccess == "admin",
		Pprof:             cfg.Pprof,
		Admin:             admin,
		WebChat:           gateway.WebChatConfig{Outboxes: a.outbox, Sessions: limiter},
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Sampling of the mutex and block profiles while the pprof endpoints are on:
// one contention event in mutexProfileFraction, and blocking events with a
// probability of their duration over blockProfileRate. Both cost little
// next to a turn; off, neither profile records anything.
const (
	mutexProfileFraction = 100
	blockProfileRate     = int(10 * time.Microsecond)
)

// sampleContention turns on the mutex and block profiles for GET
// /debug/pprof/mutex and /debug/pprof/block.
func sampleContention() {
	runtime.SetMutexProfileFraction(mutexProfileFraction)
	runtime.SetBlockProfileRate(blockProfileRate)
}

// Handler is the HTTP API, for tests and embedding.
func (a *App) Handler() http.Handler { return a.server }

// AdminKey is the management API key in use.
func (a *App) AdminKey() string { return a.adminKey }

// shutdownGrace is the time services get, beyond the shutdown timeout that
// bounds their in-flight work, to write what they hold and let go of their
// leases.
const shutdownGrace = 5 * time.Second

// services lists the process's long-running parts besides the HTTP server.
// The sandbox's reaper and heap guard belong to the Runtime and stop with
// Close.
func (a *App) services() []service {
	return []service{
		{"catalog", a.catalog.Run},         // change announcements and refreshes
		{"store", a.store.Run},             // the embedded store's TTL clock and snapshots
		{"scheduler", a.scheduler.Run},     // cron triggers
		{"queue", a.queue.Run},             // the chat channels' workers
		{"invocations", a.invocations.Run}, // invocation logs, written in batches
		{"analytics", a.obs.run},           // recorded turns, written in batches
		{"purge", a.purger.Run},            // deleted bots' data
		{"webchat", a.outbox.Run},          // wake-ups of the web channel's live connections
		{"handoffs", a.handoffs.Run},       // idle handoffs released, webhooks delivered
	}
}

// StartBackground runs the background services until ctx ends or one of
// them fails, which stops the others. The returned function waits for them
// to drain (for at most the shutdown timeout and a few seconds) and returns
// their errors.
func (a *App) StartBackground(ctx context.Context) (wait func() error) {
	context.AfterFunc(ctx, a.admin.CloseStreams)
	context.AfterFunc(ctx, a.server.CloseLive)
	return a.startServices(ctx, a.services()).wait
}

// startServices runs services under a new supervisor; wait stops them and
// waits for them.
func (a *App) startServices(ctx context.Context, services []service) *running {
	g := newSupervisor(ctx)
	for _, s := range services {
		g.goRun(s)
	}
	return &running{g: g, timeout: a.cfg.ShutdownTimeout + shutdownGrace}
}

// running is a set of started services.
type running struct {
	g       *supervisor
	timeout time.Duration
}

// wait stops the services and waits for them.
func (r *running) wait() error {
	r.g.stop()
	return r.g.wait(r.timeout)
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

// maxHeaderTime bounds reading a request's headers.
const maxHeaderTime = 10 * time.Second

// ServeListener is Serve on an existing listener. It runs the background
// services beside the HTTP server: when ctx ends, the server drains its
// in-flight requests first, then the services drain and stop. When a
// service fails, the server and the other services stop the same way and
// ServeListener returns that service's error.
func (a *App) ServeListener(ctx context.Context, ln net.Listener) error {
	return a.serveWith(ctx, ln, a.services())
}

// serveWith is ServeListener with the given background services.
func (a *App) serveWith(ctx context.Context, ln net.Listener, services []service) error {
	// The services outlive the HTTP drain: in-flight turns still enqueue,
	// record analytics and read the catalog.
	bg := a.startServices(context.WithoutCancel(ctx), services)
	front, stopFront := context.WithCancel(ctx)
	defer stopFront()
	stopOnFailure := context.AfterFunc(bg.g.ctx, stopFront)
	defer stopOnFailure()

	httpErr := a.serveHTTP(front, ln)
	return errors.Join(bg.wait(), httpErr)
}

// serveHTTP serves ln until ctx ends, then drains in-flight requests for up
// to the shutdown timeout.
func (a *App) serveHTTP(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: a.server,
		ReadHeaderTimeout: min(maxHeaderTime, a.cfg.ReadTimeout),
		ReadTimeout:       a.cfg.ReadTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	// Log streams never end by themselves: end them when the drain starts.
	srv.RegisterOnShutdown(a.admin.CloseStreams)
	srv.RegisterOnShutdown(a.server.CloseLive) // live connections are hijacked: Shutdown does not wait for them
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("parley is listening", "addr", ln.Addr().String(), "store", a.store.Describe())

	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight turns", "timeout", a.cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("drain in-flight requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close waits for the catalog's background trainings (cancelled), stops the
// sandbox, writes the turns analytics still holds, and closes the store (the
// embedded store saves a final snapshot).
func (a *App) Close() error {
	if a.catalog != nil {
		a.catalog.Close()
	}
	if a.runtime != nil {
		a.runtime.Close()
	}
	if a.egress != nil {
		a.egress.Close()
	}
	if a.obs != nil {
		if err := a.obs.close(); err != nil {
			a.log.Warn("analytics: turns recorded during shutdown were lost", "err", err)
		}
	}
	if a.queueConn != nil {
		a.queueConn.Close()
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

// webTokenSecret is the server secret of the web channel's user tokens,
// derived from the admin key, which every replica shares: rotating the
// admin key revokes every user token, as rotating a channel's token revokes
// that channel's.
func webTokenSecret(adminKey string) []byte {
	m := hmac.New(sha256.New, []byte(adminKey))
	m.Write([]byte("parley web user tokens"))
	return m.Sum(nil)
}

// botKeyOwners are the components that keep keys of their own for each
// bot, by the kind of data they hold: deleting a bot removes every key that
// starts with one of their prefixes. A component with new per-bot keys
// names their prefixes (BotKeyPrefixes) and is listed here.
type botKeyOwners map[string]interface{ BotKeyPrefixes(bot string) []string }

// families lists the keys bot owns, by kind.
func (o botKeyOwners) families(bot string) []purge.Family {
	out := make([]purge.Family, 0, len(o))
	for kind, c := range o {
		out = append(out, purge.Family{Kind: kind, Prefixes: c.BotKeyPrefixes(bot)})
	}
	return out
}

// turnRunner runs the queue's turns on the engine; the event of a bot that
// no longer exists is dropped (its data are being removed), a bot over a
// limit is retried once the limit allows the turn, and a turn the store
// failed is retried until the store is back.
type turnRunner struct{ eng *engine.Engine }

func (r turnRunner) Run(ctx context.Context, ev *msg.Event) (*msg.TurnResult, error) {
	t, err := r.eng.Run(ctx, ev)
	if err != nil {
		return nil, queueError(err)
	}
	return &t.TurnResult, nil
}

// queueError tells the queue what a failed turn means for its event.
func queueError(err error) error {
	var busy *engine.BusyError
	switch {
	case errors.Is(err, bots.ErrBotNotFound), errors.Is(err, engine.ErrErased):
		return queue.Discard(err)
	case errors.As(err, &busy):
		return queue.Later(err, busy.RetryAfter)
	case errors.Is(err, engine.ErrUnavailable):
		// Redis unreachable or restarting: waited out, not a dead letter.
		return queue.Unavailable(err)
	}
	return err
}

// engineRef runs turns on an engine set after it was handed out.
type engineRef struct{ eng *engine.Engine }

func (r *engineRef) Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error) {
	return r.eng.Run(ctx, ev)
}

// sessionExists tells the handoff manager whether a conversation has a
// session.
type sessionExists struct{ s *sessions.Store }

func (e sessionExists) Exists(ctx context.Context, bot string, conv msg.ConversationKey) (bool, error) {
	_, ok, err := e.s.Get(ctx, bot, conv)
	return ok, err
}

// senderFor finds the adapters that send replies themselves.
func senderFor(r *channels.Registry) func(string) (channels.Sender, bool) {
	return func(name string) (channels.Sender, bool) {
		a, ok := r.Get(name)
		if !ok {
			return nil, false
		}
		s, ok := a.(channels.Sender)
		return s, ok
	}
}

// channelSettings reads a bot's settings for a channel from the catalog's
// cache, for the queue's sends.
func (a *App) channelSettings(ctx context.Context, bot, channel string) (channels.Settings, error) {
	b, err := a.catalog.Bot(ctx, bot)
	if errors.Is(err, bots.ErrBotNotFound) {
		return nil, queue.Discard(err)
	}
	if err != nil {
		return nil, err
	}
	s, ok := b.Channels[channel]
	if !ok {
		return nil, queue.Permanent(channels.ErrNotConfigured)
	}
	return s, nil
}

// prewarm fills the pools of the versions a bot serves to its min_vms.
func prewarm(rt *sandbox.Runtime, b *bots.Bot) {
	if b.Settings.MinVMs == 0 {
		return
	}
	for intent, h := range b.Handlers {
		for _, version := range []int{h.Version, h.Canary.Version} {
			if version != 0 {
				rt.Prewarm(sandbox.PoolKey{Bot: b.Name, Intent: intent, Version: version}, b.Settings.MinVMs, b.Settings.MaxVMs)
			}
		}
	}
}
