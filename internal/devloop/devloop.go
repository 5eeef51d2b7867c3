// Package devloop is `parley dev`: a Parley on the embedded store in this
// process, serving a bot directory that it redeploys whenever a file of it
// changes, and whose conversation tests it can rerun on every change.
//
//	err := devloop.Run(ctx, devloop.Options{Dir: "examples/pizzabot", Out: os.Stdout, Test: true})
//
// A file that does not parse or compile is reported with its file and
// line, and the version deployed before keeps serving. Run returns when ctx
// ends, after the server drained. The user manual is docs/testing.md.
package devloop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/botdir"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/convtest"
)

// Options configures Run.
type Options struct {
	// Dir is the bot directory.
	Dir string
	// Addr is where the server listens (default "localhost:8080").
	Addr string
	// DataDir keeps the embedded store's data; empty means a temporary
	// directory, removed when Run returns.
	DataDir string
	// Test reruns Dir/tests on every change, in a Parley of their own.
	Test bool
	// Environ is the environment, as KEY=VALUE lines: bot.yaml's ${VAR}
	// references and PARLEY_ADMIN_KEY are read from it, and the server's
	// settings (docs/configuration.md), except that the store is always the
	// embedded one.
	Environ []string
	// Out receives what dev prints; nil discards it.
	Out io.Writer
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Debounce is how long dev waits after a change for more changes
	// before it redeploys (default 150ms).
	Debounce time.Duration
	// Ready, when set, is called once the bot was first deployed.
	Ready func(Info)
}

// Info is what a developer needs to reach the running bot.
type Info struct {
	// URL is the server's base URL.
	URL string
	// Bot is the bot's name.
	Bot string
	// AdminKey is the management API's and the console's key.
	AdminKey string
	// WebToken is the web channel's token.
	WebToken string
}

// Console is the console's URL.
func (i Info) Console() string { return i.URL + "/console/" }

// WebURL is the web channel's webhook.
func (i Info) WebURL() string { return i.URL + "/hooks/" + i.Bot + "/web" }

// generatedPrefix marks the values dev makes up for unset variables.
const generatedPrefix = "parley-dev-"

// Run serves the bot directory until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Addr == "" {
		opts.Addr = "localhost:8080"
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 150 * time.Millisecond
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &dev{opts: opts, env: make(map[string]string), made: make(map[string]string), dropped: make(map[string]bool)}
	for _, kv := range opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			d.env[k] = v
		}
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		tmp, err := os.MkdirTemp("", "parley-dev-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	cfg, err := config.Load(opts.Environ)
	if err != nil {
		return err
	}
	cfg.RedisURL, cfg.DataDir, cfg.Addr = "", dataDir, opts.Addr
	if cfg.AdminKey == "" {
		cfg.AdminKey = "pk_dev_" + randomHex(16)
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", opts.Dir, err)
	}
	defer watcher.Close()
	for _, sub := range []string{"", "intents", "tests"} {
		if err := watcher.Add(filepath.Join(opts.Dir, sub)); err != nil && sub == "" {
			return fmt.Errorf("watch %s: %w", opts.Dir, err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	d.api = apiclient.InProcess(a.Handler(), a.AdminKey())
	d.info = Info{URL: "http://" + hostPort(ln.Addr()), AdminKey: a.AdminKey()}

	srvCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	served := make(chan error, 1)
	go func() { served <- a.ServeListener(srvCtx, ln) }()

	d.printf("parley dev: serving %s on %s (embedded store in %s)\n", opts.Dir, d.info.URL, dataDir)
	d.printf("  console    %s  (admin key %s)\n", d.info.Console(), d.info.AdminKey)
	d.reload(ctx)
	err = d.watch(ctx, watcher, served)
	stopServer()
	if !errors.Is(err, errServerStopped) {
		err = errors.Join(err, <-served)
	}
	if d.harness != nil {
		err = errors.Join(err, d.harness.Close())
	}
	err = errors.Join(err, a.Close())
	d.printf("parley dev: stopped\n")
	return err
}

type dev struct {
	opts Options
	api  *apiclient.Client
	info Info
	// env is the environment; made holds the values made up for the
	// variables it lacks, kept for the whole run.
	env  map[string]string
	made map[string]string
	// dropped are the channels left unconnected (their variables are not
	// set), said once each.
	dropped map[string]bool
	// deployed is the bot as last deployed.
	deployed *botdir.Bot
	ready    bool
	harness  *convtest.Harness
	mu       sync.Mutex // serializes printing
}

func (d *dev) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.opts.Out, format, args...)
}

// lookup reads an environment variable, making up a value for one that is
// not set.
func (d *dev) lookup(name string) (string, bool) {
	if v, ok := d.env[name]; ok {
		return v, true
	}
	if _, ok := d.made[name]; !ok {
		d.made[name] = generatedPrefix + randomHex(12)
	}
	return d.made[name], true
}

// read reads the bot directory as dev serves it: the web channel connected
// (with a made-up token when its variable is not set), other channels only
// when their variables are set.
func (d *dev) read() (*botdir.Bot, error) {
	b, err := botdir.Read(d.opts.Dir, botdir.Options{Env: d.lookup, Secrets: app.ChannelSecrets()})
	if err != nil {
		return nil, err
	}
	channels := make(map[string]map[string]string, len(b.Channels)+1)
	for name, settings := range b.Channels {
		if name == "web" || !madeUp(settings) {
			channels[name] = settings
		} else if !d.dropped[name] {
			d.dropped[name] = true
			d.printf("  channel %s is not connected: its secret settings name variables that are not set\n", name)
		}
	}
	if channels["web"] == nil {
		if _, ok := d.made["web token"]; !ok {
			d.made["web token"] = generatedPrefix + randomHex(12)
		}
		channels["web"] = map[string]string{"token": d.made["web token"]}
	}
	b.Channels = channels
	return b, nil
}

func madeUp(settings map[string]string) bool {
	for _, v := range settings {
		if strings.Contains(v, generatedPrefix) {
			return true
		}
	}
	return false
}

// reload reads and deploys the bot directory, and reruns its tests.
func (d *dev) reload(ctx context.Context) {
	at := time.Now().Format(time.TimeOnly)
	b, err := d.read()
	if err != nil {
		d.printf("[%s] error: %v\n", at, err)
		if d.deployed != nil {
			d.printf("[%s] the previous version keeps serving\n", at)
		}
		return
	}
	var changes strings.Builder
	_, err = botdir.Deploy(ctx, d.api, b, botdir.DeployOptions{Previous: d.deployed, Out: &changes})
	for _, line := range strings.SplitAfter(changes.String(), "\n") {
		if line != "" {
			d.printf("[%s] %s", at, line)
		}
	}
	if err != nil {
		d.deployed = nil // send everything again next time
		d.printf("[%s] error: %v\n[%s] the previous version keeps serving\n", at, err, at)
		return
	}
	if changes.Len() == 0 {
		d.printf("[%s] no change\n", at)
	}
	d.deployed = b
	if !d.ready {
		d.ready = true
		d.info.Bot, d.info.WebToken = b.Name, b.Channels["web"]["token"]
		d.printf("  web        %s  (token %s)\n", d.info.WebURL(), d.info.WebToken)
		d.printf("  try        curl -s %s -H 'Authorization: Bearer %s' -d '{\"user\": \"me\", \"text\": \"hello\"}'\n",
			d.info.WebURL(), d.info.WebToken)
		for _, name := range slices.Sorted(maps.Keys(d.made)) {
			if name != "web token" {
				d.printf("  note       %s is not set: a made-up value stands in\n", name)
			}
		}
		d.printf("  watching   %s for changes (Ctrl-C stops)\n", d.opts.Dir)
		if d.opts.Ready != nil {
			d.opts.Ready(d.info)
		}
	}
	if d.opts.Test {
		d.test(ctx)
	}
}

// test reruns the bot's tests.
func (d *dev) test(ctx context.Context) {
	at := time.Now().Format(time.TimeOnly)
	if _, err := os.Stat(filepath.Join(d.opts.Dir, "tests")); err != nil {
		d.printf("[%s] tests: %s has none\n", at, filepath.Join(d.opts.Dir, "tests"))
		return
	}
	suite, err := convtest.Load(d.opts.Dir, convtest.LoadOptions{Env: d.lookup})
	if err != nil {
		d.printf("[%s] tests: %v\n", at, err)
		return
	}
	if d.harness == nil {
		if d.harness, err = convtest.NewHarness(ctx, convtest.HarnessOptions{}); err != nil {
			d.printf("[%s] tests: %v\n", at, err)
			return
		}
	}
	report, err := d.harness.Run(ctx, suite, convtest.RunOptions{})
	if err != nil {
		d.printf("[%s] tests: %v\n", at, err)
		return
	}
	var out strings.Builder
	_ = convtest.WriteText(&out, report, false)
	if report.Failed == 0 {
		d.printf("[%s] tests: %s", at, out.String())
	} else {
		d.printf("[%s] tests:\n%s", at, out.String())
	}
}

// errServerStopped is watch's error when the server stopped by itself.
var errServerStopped = errors.New("the server stopped")

// watch redeploys on changes until ctx ends or the server stops.
func (d *dev) watch(ctx context.Context, w *fsnotify.Watcher, served <-chan error) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return fmt.Errorf("%w: %w", errServerStopped, err)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			d.printf("watch: %v\n", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if d.relevant(w, ev) {
				timer.Reset(d.opts.Debounce)
			}
		case <-timer.C:
			d.reload(ctx)
		}
	}
}

// relevant reports whether ev changes the bot or its tests, and watches
// the intents and tests directories when they appear.
func (d *dev) relevant(w *fsnotify.Watcher, ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	rel, err := filepath.Rel(d.opts.Dir, ev.Name)
	if err != nil {
		return false
	}
	if (rel == "intents" || rel == "tests") && ev.Has(fsnotify.Create) {
		_ = w.Add(ev.Name)
		return true
	}
	dir, file := filepath.Split(rel)
	switch filepath.Clean(dir) {
	case ".":
		return file == "bot.yaml"
	case "intents":
		return strings.HasSuffix(file, ".lua")
	case "tests":
		return strings.HasSuffix(file, ".yaml") || strings.HasSuffix(file, ".yml")
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hostPort is a listener's address as a URL host: a wildcard address
// becomes localhost.
func hostPort(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
