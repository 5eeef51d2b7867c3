// Package config loads Parley's configuration from environment variables.
// [Load] is a pure function of the environment it is given; only main reads
// the real process environment.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/seal"
)

// Config is everything `parley serve` can be told.
type Config struct {
	// Addr is the HTTP listen address (PARLEY_ADDR, default ":8080").
	Addr string
	// RedisURL selects a real Redis (REDIS_URL); empty means the embedded store.
	RedisURL string
	// DataDir holds the embedded store's snapshot and the generated admin key
	// (PARLEY_DATA_DIR, default "./parley-data").
	DataDir string
	// AdminKey authenticates the management API (PARLEY_ADMIN_KEY); empty
	// means generate one at first start and keep it in DataDir.
	AdminKey string
	// SecretKey encrypts bots' secrets and channels' secret settings at rest
	// (PARLEY_SECRET_KEY: 32 bytes in base64 or 64 hex digits). Empty
	// means the key kept in DataDir with the embedded store (generated at
	// first start), and no key with Redis: secrets are then refused.
	SecretKey Key
	// SecretKeysPrevious are keys that still open values sealed before a
	// rotation, which are sealed again under SecretKey at start
	// (PARLEY_SECRET_KEY_PREVIOUS, comma-separated, same format).
	SecretKeysPrevious []Key
	// KeyPrefix starts every Redis key (PARLEY_KEY_PREFIX, default "parley:").
	KeyPrefix string
	// MaxBodyBytes bounds request bodies (PARLEY_MAX_BODY_BYTES, default 1048576).
	MaxBodyBytes int64
	// ReadTimeout bounds reading a whole request, headers and body
	// (PARLEY_READ_TIMEOUT, default 15s): a client that trickles its body
	// is cut off. The headers alone get at most 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of the answer (PARLEY_WRITE_TIMEOUT, default 60s). It must be at least
	// ReadTimeout plus MinTurnTime, so that the slowest turn a bot can
	// configure still gets its answer out.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request (PARLEY_IDLE_TIMEOUT, default 60s).
	IdleTimeout time.Duration
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-Proto and X-Forwarded-Host headers are believed
	// (PARLEY_TRUSTED_PROXIES, comma-separated CIDRs or addresses, default
	// none).
	TrustedProxies []netip.Prefix
	// SnapshotInterval is how often the embedded store is saved (PARLEY_SNAPSHOT_INTERVAL, default 10s).
	SnapshotInterval time.Duration
	// ShutdownTimeout bounds draining in-flight turns at shutdown (PARLEY_SHUTDOWN_TIMEOUT, default 30s).
	ShutdownTimeout time.Duration
	// LogFollowers bounds the open log streams (GET /v1/bots/{bot}/logs
	// as server-sent events) of one bot on one server (PARLEY_LOG_FOLLOWERS, default 8).
	LogFollowers int
	// LogHeartbeat is how often a silent log stream sends a comment line
	// (PARLEY_LOG_HEARTBEAT, default 15s).
	LogHeartbeat time.Duration
	// PoolSize caps the Lua VMs per handler version (PARLEY_POOL_SIZE, default 2 x CPUs).
	PoolSize int
	// SandboxIdleTimeout is how long a Lua VM may stay unused before it is
	// closed, down to its bot's min_vms; handlers idle this long scale to
	// zero (PARLEY_SANDBOX_IDLE_TIMEOUT, default 60s).
	SandboxIdleTimeout time.Duration
	// ScheduleMinInterval is the shortest time between two runs of a
	// schedule (PARLEY_SCHEDULE_MIN_INTERVAL, default 1m); shorter
	// schedules are refused.
	ScheduleMinInterval time.Duration
	// CatalogRefresh is how often cached bots are checked for changes missed
	// on Pub/Sub (PARLEY_CATALOG_REFRESH, default 2s).
	CatalogRefresh time.Duration
	// RedisConnectTimeout bounds the start-up check of a real Redis (PARLEY_REDIS_CONNECT_TIMEOUT, default 5s).
	RedisConnectTimeout time.Duration
	// QueuePartitions is the number of streams of the async channels' queue
	// (PARLEY_QUEUE_PARTITIONS, default 16); every replica must use the same.
	QueuePartitions int
	// BotDeleteSettle is how long after a bot's deletion began its data are
	// swept a last time and its name freed (PARLEY_BOT_DELETE_SETTLE, default
	// 1m): writes under way at the time of the deletion land within it.
	BotDeleteSettle time.Duration
	// QueueLease is how long a replica owns a queue partition without renewing
	// it: a crashed replica's work moves after this long (PARLEY_QUEUE_LEASE, default 15s).
	QueueLease time.Duration
	// QueuePoll is how often a replica checks its idle queue partitions, all
	// in one round trip, for events enqueued on other replicas
	// (PARLEY_QUEUE_POLL, default 100ms).
	QueuePoll time.Duration
	// SandboxHeapLimit is the heap size above which the sandbox interrupts
	// the handler call that allocates most (PARLEY_SANDBOX_HEAP_LIMIT, bytes
	// or with a KiB/MiB/GiB suffix, default 1GiB; "off" disables it, which
	// is -1 here).
	SandboxHeapLimit int64
	// Analytics records every turn for the analytics API (PARLEY_ANALYTICS,
	// on or off, default on). Off keeps the API for data already recorded,
	// and erasure.
	Analytics bool
	// AnalyticsMinuteRetention, AnalyticsHourRetention and
	// AnalyticsDayRetention keep the buckets of each step
	// (PARLEY_ANALYTICS_MINUTE_RETENTION 48h, PARLEY_ANALYTICS_HOUR_RETENTION
	// 35d, PARLEY_ANALYTICS_DAY_RETENTION 400d).
	AnalyticsMinuteRetention, AnalyticsHourRetention, AnalyticsDayRetention time.Duration
	// AnalyticsFallbackRetention keeps the daily lists of unmatched
	// utterances (PARLEY_ANALYTICS_FALLBACK_RETENTION, default 30d).
	AnalyticsFallbackRetention time.Duration
	// AnalyticsFlushInterval is how often recorded turns are written to
	// Redis (PARLEY_ANALYTICS_FLUSH_INTERVAL, default 1s).
	AnalyticsFlushInterval time.Duration
	// AnalyticsBuffer bounds the turns waiting to be written; beyond it turns
	// are not recorded (PARLEY_ANALYTICS_BUFFER, default 100000).
	AnalyticsBuffer int
	// TranscriptRetention keeps a conversation's transcript this long after
	// its last turn, for bots without a setting of their own
	// (PARLEY_TRANSCRIPT_RETENTION, default 7d; "0" keeps none, which is -1 here).
	TranscriptRetention time.Duration
	// TranscriptMaxTurns bounds a transcript to its latest turns
	// (PARLEY_TRANSCRIPT_MAX_TURNS, default 200).
	TranscriptMaxTurns int
	// MetricsAccess says who may read GET /metrics: public, admin (with the
	// admin key) or off (PARLEY_METRICS, default public).
	MetricsAccess string
	// Tracing turns on OpenTelemetry traces, exported over OTLP/HTTP: set
	// when OTEL_TRACES_EXPORTER is "otlp", or an OTLP endpoint is set
	// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and
	// OTEL_TRACES_EXPORTER is unset; never with OTEL_SDK_DISABLED=true or
	// OTEL_TRACES_EXPORTER=none. The exporter reads its other OTEL_*
	// variables itself.
	Tracing bool
	// MetricsMaxBots bounds the bots with series of their own in the
	// metrics labelled by bot; the others are counted as bot="_other"
	// (PARLEY_METRICS_MAX_BOTS, default 1000; 0 labels none).
	MetricsMaxBots int
	// TeamsOpenIDMetadataURL is the Bot Framework's OpenID metadata, whose
	// key set verifies the Teams channel's inbound tokens
	// (PARLEY_TEAMS_OPENID_METADATA_URL, default the Bot Framework's).
	TeamsOpenIDMetadataURL string
	// TeamsTokenURL is the token endpoint of the Teams channel's outbound
	// tokens, {tenant} standing for a bot's tenant_id or botframework.com
	// (PARLEY_TEAMS_TOKEN_URL, default Microsoft Entra's).
	TeamsTokenURL string
	// TeamsServiceURL is where the Teams channel sends messages that answer
	// no activity, such as schedules' (PARLEY_TEAMS_SERVICE_URL, default
	// the public cloud's Teams connector).
	TeamsServiceURL string
	// LogLevel is debug, info, warn or error (PARLEY_LOG_LEVEL, default info).
	LogLevel slog.Level
	// LogFormat is text or json (PARLEY_LOG_FORMAT, default text).
	LogFormat string
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ to callers with the admin key, and samples mutex
	// contention and blocking for them (PARLEY_PPROF, on or off, default
	// off).
	Pprof bool
}

// MinTurnTime is the part of PARLEY_WRITE_TIMEOUT beyond PARLEY_READ_TIMEOUT
// a turn may need: the longest handler timeout a bot can set (timeout_ms at
// most 30000) and five seconds to wait for a slot, commit and render.
const MinTurnTime = 35 * time.Second

// Load reads the configuration from environ ("KEY=value" strings, as os.Environ returns).
func Load(environ []string) (Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	c := Config{
		Addr:      or(env["PARLEY_ADDR"], ":8080"),
		RedisURL:  strings.TrimSpace(env["REDIS_URL"]),
		DataDir:   or(env["PARLEY_DATA_DIR"], "./parley-data"),
		AdminKey:  strings.TrimSpace(env["PARLEY_ADMIN_KEY"]),
		KeyPrefix: or(env["PARLEY_KEY_PREFIX"], "parley:"),
		LogFormat: or(env["PARLEY_LOG_FORMAT"], "text"),
	}
	var errs []string
	check := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	check(duration(env, "PARLEY_READ_TIMEOUT", 15*time.Second, &c.ReadTimeout))
	check(duration(env, "PARLEY_WRITE_TIMEOUT", time.Minute, &c.WriteTimeout))
	check(duration(env, "PARLEY_IDLE_TIMEOUT", time.Minute, &c.IdleTimeout))
	if c.WriteTimeout < c.ReadTimeout+MinTurnTime {
		errs = append(errs, fmt.Sprintf("PARLEY_WRITE_TIMEOUT (%s) must be at least PARLEY_READ_TIMEOUT (%s) plus %s, "+
			"the longest turn a bot can configure with its answer", c.WriteTimeout, c.ReadTimeout, MinTurnTime))
	}
	check(prefixes(env, "PARLEY_TRUSTED_PROXIES", &c.TrustedProxies))
	check(c.loadSecretKeys(env))
	check(duration(env, "PARLEY_SNAPSHOT_INTERVAL", 10*time.Second, &c.SnapshotInterval))
	check(duration(env, "PARLEY_SHUTDOWN_TIMEOUT", 30*time.Second, &c.ShutdownTimeout))
	check(duration(env, "PARLEY_CATALOG_REFRESH", 2*time.Second, &c.CatalogRefresh))
	check(duration(env, "PARLEY_SCHEDULE_MIN_INTERVAL", time.Minute, &c.ScheduleMinInterval))
	check(duration(env, "PARLEY_REDIS_CONNECT_TIMEOUT", 5*time.Second, &c.RedisConnectTimeout))
	check(duration(env, "PARLEY_QUEUE_LEASE", 15*time.Second, &c.QueueLease))
	check(duration(env, "PARLEY_BOT_DELETE_SETTLE", time.Minute, &c.BotDeleteSettle))
	check(duration(env, "PARLEY_QUEUE_POLL", 100*time.Millisecond, &c.QueuePoll))
	check(duration(env, "PARLEY_SANDBOX_IDLE_TIMEOUT", time.Minute, &c.SandboxIdleTimeout))
	check(integer(env, "PARLEY_QUEUE_PARTITIONS", 16, &c.QueuePartitions))
	check(integer(env, "PARLEY_LOG_FOLLOWERS", 8, &c.LogFollowers))
	check(duration(env, "PARLEY_LOG_HEARTBEAT", 15*time.Second, &c.LogHeartbeat))
	check(byteSize(env, "PARLEY_SANDBOX_HEAP_LIMIT", 1<<30, &c.SandboxHeapLimit))
	check(c.loadAnalytics(env))
	check(webURL(env, "PARLEY_TEAMS_OPENID_METADATA_URL", &c.TeamsOpenIDMetadataURL))
	check(webURL(env, "PARLEY_TEAMS_TOKEN_URL", &c.TeamsTokenURL))
	check(webURL(env, "PARLEY_TEAMS_SERVICE_URL", &c.TeamsServiceURL))
	var body, pool int
	check(integer(env, "PARLEY_MAX_BODY_BYTES", 1<<20, &body))
	check(integer(env, "PARLEY_POOL_SIZE", 0, &pool))
	c.MaxBodyBytes, c.PoolSize = int64(body), pool
	if err := c.LogLevel.UnmarshalText([]byte(or(env["PARLEY_LOG_LEVEL"], "info"))); err != nil {
		errs = append(errs, fmt.Sprintf("PARLEY_LOG_LEVEL: %v", err))
	}
	switch v := or(env["PARLEY_PPROF"], "off"); v {
	case "on", "off":
		c.Pprof = v == "on"
	default:
		errs = append(errs, fmt.Sprintf("PARLEY_PPROF must be on or off, got %q", v))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Sprintf("PARLEY_LOG_FORMAT must be text or json, got %q", c.LogFormat))
	}
	if c.AdminKey != "" && len(c.AdminKey) < 16 {
		errs = append(errs, "PARLEY_ADMIN_KEY must be at least 16 characters")
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// Key is a secret key's bytes. It prints as [redacted], so a logged or
// printed Config does not show it.
type Key []byte

const redacted = "[redacted]"

// String is [redacted].
func (Key) String() string { return redacted }

// GoString is [redacted].
func (Key) GoString() string { return redacted }

// Format writes [redacted] for every verb.
func (Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// loadSecretKeys reads PARLEY_SECRET_KEY and PARLEY_SECRET_KEY_PREVIOUS. An
// error names the variable, never the text it holds.
func (c *Config) loadSecretKeys(env map[string]string) error {
	const hint = "32 bytes in base64 or 64 hex digits, for example from: openssl rand -base64 32"
	if v := strings.TrimSpace(env["PARLEY_SECRET_KEY"]); v != "" {
		k, err := seal.ParseKey(v)
		if err != nil {
			return fmt.Errorf("PARLEY_SECRET_KEY: %w; want %s", err, hint)
		}
		c.SecretKey = k
	}
	for i, v := range strings.Split(env["PARLEY_SECRET_KEY_PREVIOUS"], ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		k, err := seal.ParseKey(v)
		if err != nil {
			return fmt.Errorf("PARLEY_SECRET_KEY_PREVIOUS: key %d: %w; want %s", i+1, err, hint)
		}
		c.SecretKeysPrevious = append(c.SecretKeysPrevious, k)
	}
	if len(c.SecretKeysPrevious) > 0 && c.SecretKey == nil {
		return errors.New("PARLEY_SECRET_KEY_PREVIOUS is set without PARLEY_SECRET_KEY: set the new key too")
	}
	return nil
}

func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

// webURL reads an http(s) URL; unset leaves out empty, for the default of
// whoever uses it.
func webURL(env map[string]string, key string, out *string) error {
	v := strings.TrimSpace(env[key])
	*out = v
	if v == "" {
		return nil
	}
	u, err := url.Parse(strings.ReplaceAll(v, "{tenant}", "t"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s must be an http(s) URL, got %q", key, v)
	}
	return nil
}

func duration(env map[string]string, key string, def time.Duration, out *time.Duration) error {
	*out = def
	v := strings.TrimSpace(env[key])
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s must be a positive duration like 10s, got %q", key, v)
	}
	*out = d
	return nil
}

func integer(env map[string]string, key string, def int, out *int) error {
	*out = def
	v := strings.TrimSpace(env[key])
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s must be a positive integer, got %q", key, v)
	}
	*out = n
	return nil
}

// prefixes reads a comma-separated list of CIDRs; a bare address is a
// network of that one address.
func prefixes(env map[string]string, key string, out *[]netip.Prefix) error {
	*out = nil
	for _, v := range strings.Split(env[key], ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return fmt.Errorf("%s must list networks like 10.0.0.0/8 or addresses, got %q", key, v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		*out = append(*out, p.Masked())
	}
	return nil
}

// byteSize reads a size in bytes, with an optional KiB, MiB or GiB suffix;
// "off" stores -1.
func byteSize(env map[string]string, key string, def int64, out *int64) error {
	*out = def
	v := strings.TrimSpace(env[key])
	if v == "" {
		return nil
	}
	if strings.EqualFold(v, "off") {
		*out = -1
		return nil
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = strings.TrimSpace(n), m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%s must be a positive size like 512MiB or 2GiB, or off, got %q", key, env[key])
	}
	*out = n * mult
	return nil
}

// loadAnalytics reads the analytics and metrics variables.
func (c *Config) loadAnalytics(env map[string]string) error {
	var errs []string
	check := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	const day = 24 * time.Hour
	switch v := or(env["PARLEY_ANALYTICS"], "on"); v {
	case "on", "off":
		c.Analytics = v == "on"
	default:
		errs = append(errs, fmt.Sprintf("PARLEY_ANALYTICS must be on or off, got %q", v))
	}
	check(days(env, "PARLEY_ANALYTICS_MINUTE_RETENTION", 48*time.Hour, &c.AnalyticsMinuteRetention))
	check(days(env, "PARLEY_ANALYTICS_HOUR_RETENTION", 35*day, &c.AnalyticsHourRetention))
	check(days(env, "PARLEY_ANALYTICS_DAY_RETENTION", 400*day, &c.AnalyticsDayRetention))
	check(days(env, "PARLEY_ANALYTICS_FALLBACK_RETENTION", 30*day, &c.AnalyticsFallbackRetention))
	check(duration(env, "PARLEY_ANALYTICS_FLUSH_INTERVAL", time.Second, &c.AnalyticsFlushInterval))
	check(integer(env, "PARLEY_ANALYTICS_BUFFER", 100000, &c.AnalyticsBuffer))
	if v := strings.TrimSpace(env["PARLEY_TRANSCRIPT_RETENTION"]); v == "0" || v == "off" {
		c.TranscriptRetention = -1
	} else {
		check(days(env, "PARLEY_TRANSCRIPT_RETENTION", 7*day, &c.TranscriptRetention))
	}
	check(integer(env, "PARLEY_TRANSCRIPT_MAX_TURNS", 200, &c.TranscriptMaxTurns))
	if strings.TrimSpace(env["PARLEY_METRICS_MAX_BOTS"]) == "0" {
		c.MetricsMaxBots = 0
	} else {
		check(integer(env, "PARLEY_METRICS_MAX_BOTS", 1000, &c.MetricsMaxBots))
	}
	tracing, err := tracingEnabled(env)
	if err != nil {
		errs = append(errs, err.Error())
	}
	c.Tracing = tracing
	switch c.MetricsAccess = or(env["PARLEY_METRICS"], "public"); c.MetricsAccess {
	case "public", "admin", "off":
	default:
		errs = append(errs, fmt.Sprintf("PARLEY_METRICS must be public, admin or off, got %q", c.MetricsAccess))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// days reads a duration that may also be a number of days ("30d").
func days(env map[string]string, key string, def time.Duration, out *time.Duration) error {
	v := strings.TrimSpace(env[key])
	n, ok := strings.CutSuffix(v, "d")
	if !ok {
		return duration(env, key, def, out)
	}
	d, err := strconv.Atoi(n)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s must be a positive duration like 36h or 30d, got %q", key, v)
	}
	*out = time.Duration(d) * 24 * time.Hour
	return nil
}

// tracingEnabled reads the standard OpenTelemetry variables that decide
// whether traces are exported, refusing what Parley cannot export.
func tracingEnabled(env map[string]string) (bool, error) {
	exp := strings.ToLower(strings.TrimSpace(env["OTEL_TRACES_EXPORTER"]))
	if exp != "" && exp != "otlp" && exp != "none" {
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER must be otlp or none, got %q", exp)
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := env[k]; p != "" && p != "http/protobuf" {
			return false, fmt.Errorf("%s must be http/protobuf (Parley exports traces over OTLP/HTTP), got %q", k, p)
		}
	}
	if strings.EqualFold(strings.TrimSpace(env["OTEL_SDK_DISABLED"]), "true") {
		return false, nil
	}
	endpoint := env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != ""
	return exp == "otlp" || (exp == "" && endpoint), nil
}
