package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/tracing"
)

func newServeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the server",
		Long: `Run the server: webhooks, the management API and the console.

serve reads its configuration from the environment (see docs/configuration.md):
PARLEY_ADDR, REDIS_URL (the embedded store without it), PARLEY_DATA_DIR,
PARLEY_ADMIN_KEY, ... It stops on SIGINT or SIGTERM, draining what runs.`,
		Args: argsBetween(0, 0, "no arguments (its configuration comes from the environment)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), c)
		},
	}
}

func serve(ctx context.Context, c *cli) error {
	cfg, err := config.Load(c.environ)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var handler slog.Handler = slog.NewTextHandler(c.stderr, opts)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(c.stderr, opts)
	}
	log := slog.New(handler)
	if _, set := c.env["GOGC"]; !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	if cfg.Tracing {
		shutdown, err := tracing.Setup(ctx, buildVersion().Version)
		if err != nil {
			return err
		}
		defer func() {
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := shutdown(flush); err != nil {
				log.Warn("flush traces", "err", err)
			}
		}()
		log.Info("exporting traces over OTLP/HTTP")
	}

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	serveErr := a.Serve(ctx)
	if err := a.Close(); err != nil {
		log.Error("close store", "err", err)
		if serveErr == nil {
			serveErr = err
		}
	}
	if serveErr == nil {
		log.Info("parley stopped")
	}
	return serveErr
}

// defaultGCPercent is the server's GOGC when the environment sets none: the
// heap may grow to three times what is live between two collections, not
// twice. Most of a busy server's live heap is long-lived (Lua VMs, the
// analytics buffer, caches) while each turn allocates about 16 KB that dies
// with it, so collecting half as often takes about half the marking work
// (an estimated 2 to 3 % of a core at 10,000 turns a second, from five
// collections a second of about 10 ms marking each) for a few tens of MB.
// GOMEMLIMIT, which the deployment manifests set, still bounds the heap.
const defaultGCPercent = 200

// redisLogger routes the Redis client's own messages (reconnects, dial
// failures) into the structured log instead of raw stderr lines.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
