// Command parley runs the Parley server and talks to it.
//
//	parley serve                       run the gateway (embedded store unless REDIS_URL is set)
//	parley deploy DIR                  upload a bot directory (bot.yaml + intents/*.lua)
//	parley canary BOT INTENT P|promote|abort  change a canary rollout
//	parley invoke BOT TEXT [--user U]  run one turn and print the answer
//	parley analytics BOT [--from --to --by]  print a bot's analytics
//	parley nlu eval DATA.json          evaluate the built-in intent classifier
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/redis/go-redis/v9"
)

const usage = `Parley: serverless functions for conversations.

Usage:
  parley serve                                  run the server
  parley deploy DIR [--canary P] [--url URL] [--key KEY]
                                                upload a bot directory (bot.yaml, intents/*.lua);
                                                with --canary, changed handlers go to P% of new
                                                conversations until promoted
  parley canary BOT INTENT PERCENT|promote|abort
                                                change a canary's share, promote it or abort it
  parley invoke BOT TEXT [--user U] [--conversation C] [--url URL] [--key KEY]
                                                run one turn through the bot and print the answer
  parley analytics BOT [--from -24h] [--to now] [--by intent,channel] [--step hour]
                       [--channel C] [--intent I] [--series] [--fallbacks N]
                                                print turns, users, fallback and error rates and
                                                latency percentiles as a table
  parley nlu eval DATA.json [--json] [--holdout 0.2]
                                                train the built-in classifier on a data set and report
                                                accuracy, out-of-scope recall, confusions and timings
  parley version

serve reads its configuration from the environment (see docs/configuration.md: PARLEY_ADDR,
REDIS_URL, PARLEY_DATA_DIR, PARLEY_ADMIN_KEY, ...). deploy, invoke and analytics talk to
PARLEY_URL (default http://localhost:8080) with PARLEY_ADMIN_KEY.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(environ, stderr)
	case "deploy":
		err = deploy(args[1:], environ, stdout)
	case "canary":
		err = canaryCommand(args[1:], environ, stdout)
	case "invoke":
		err = invoke(args[1:], environ, stdout)
	case "analytics":
		err = analyticsCommand(args[1:], environ, stdout)
	case "nlu":
		err = nluCommand(args[1:], stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "parley", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "parley: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "parley %s: %v\n\n%s", args[0], err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "parley %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func serve(environ []string, stderr io.Writer) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(handler)
	redis.SetLogger(redisLogger{log.With("component", "redis")})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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

// redisLogger routes the Redis client's own messages (reconnects, dial
// failures) into the structured log instead of raw stderr lines.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
