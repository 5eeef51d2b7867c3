// Package config loads Parley's configuration from environment variables.
// [Load] is a pure function of the environment it is given; only main reads
// the real process environment.
package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
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
	// KeyPrefix starts every Redis key (PARLEY_KEY_PREFIX, default "parley:").
	KeyPrefix string
	// MaxBodyBytes bounds request bodies (PARLEY_MAX_BODY_BYTES, default 1048576).
	MaxBodyBytes int64
	// SnapshotInterval is how often the embedded store is saved (PARLEY_SNAPSHOT_INTERVAL, default 10s).
	SnapshotInterval time.Duration
	// ShutdownTimeout bounds draining in-flight turns at shutdown (PARLEY_SHUTDOWN_TIMEOUT, default 30s).
	ShutdownTimeout time.Duration
	// PoolSize caps the Lua VMs per handler version (PARLEY_POOL_SIZE, default 2 x CPUs).
	PoolSize int
	// CatalogRefresh is how often cached bots are checked for changes missed
	// on Pub/Sub (PARLEY_CATALOG_REFRESH, default 2s).
	CatalogRefresh time.Duration
	// RedisConnectTimeout bounds the start-up check of a real Redis (PARLEY_REDIS_CONNECT_TIMEOUT, default 5s).
	RedisConnectTimeout time.Duration
	// LogLevel is debug, info, warn or error (PARLEY_LOG_LEVEL, default info).
	LogLevel slog.Level
	// LogFormat is text or json (PARLEY_LOG_FORMAT, default text).
	LogFormat string
}

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
	check(duration(env, "PARLEY_SNAPSHOT_INTERVAL", 10*time.Second, &c.SnapshotInterval))
	check(duration(env, "PARLEY_SHUTDOWN_TIMEOUT", 30*time.Second, &c.ShutdownTimeout))
	check(duration(env, "PARLEY_CATALOG_REFRESH", 2*time.Second, &c.CatalogRefresh))
	check(duration(env, "PARLEY_REDIS_CONNECT_TIMEOUT", 5*time.Second, &c.RedisConnectTimeout))
	var body, pool int
	check(integer(env, "PARLEY_MAX_BODY_BYTES", 1<<20, &body))
	check(integer(env, "PARLEY_POOL_SIZE", 0, &pool))
	c.MaxBodyBytes, c.PoolSize = int64(body), pool
	if err := c.LogLevel.UnmarshalText([]byte(or(env["PARLEY_LOG_LEVEL"], "info"))); err != nil {
		errs = append(errs, fmt.Sprintf("PARLEY_LOG_LEVEL: %v", err))
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

func or(v, def string) string {
	if strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
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
