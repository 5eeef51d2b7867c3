package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.RedisURL != "" || c.DataDir != "./parley-data" || c.MaxBodyBytes != 1<<20 ||
		c.SnapshotInterval != 10*time.Second || c.LogLevel != slog.LevelInfo || c.KeyPrefix != "parley:" || c.Pprof {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadValues(t *testing.T) {
	c, err := Load([]string{"PARLEY_ADDR=127.0.0.1:9000", "REDIS_URL=redis://r:6379/1", "PARLEY_DATA_DIR=/tmp/x",
		"PARLEY_ADMIN_KEY=0123456789abcdef", "PARLEY_MAX_BODY_BYTES=2048", "PARLEY_SNAPSHOT_INTERVAL=1m",
		"PARLEY_LOG_LEVEL=debug", "PARLEY_LOG_FORMAT=json", "PARLEY_POOL_SIZE=3", "PARLEY_PPROF=on", "UNRELATED=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.RedisURL != "redis://r:6379/1" || c.DataDir != "/tmp/x" ||
		c.AdminKey != "0123456789abcdef" || c.MaxBodyBytes != 2048 || c.SnapshotInterval != time.Minute ||
		c.LogLevel != slog.LevelDebug || c.LogFormat != "json" || c.PoolSize != 3 || !c.Pprof {
		t.Errorf("values = %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load([]string{"PARLEY_MAX_BODY_BYTES=lots", "PARLEY_SNAPSHOT_INTERVAL=-1s", "PARLEY_LOG_LEVEL=loud",
		"PARLEY_ADMIN_KEY=short", "PARLEY_PPROF=yes"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"PARLEY_MAX_BODY_BYTES", "PARLEY_SNAPSHOT_INTERVAL", "PARLEY_LOG_LEVEL", "PARLEY_ADMIN_KEY", "PARLEY_PPROF"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSandboxHeapLimit(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want int64
		bad  bool
	}{
		{"", 1 << 30, false}, {"512MiB", 512 << 20, false}, {"2GiB", 2 << 30, false}, {"65536", 65536, false},
		{"64 KiB", 64 << 10, false}, {"off", -1, false}, {"OFF", -1, false},
		{"0", 0, true}, {"-5MiB", 0, true}, {"lots", 0, true}, {"1TB", 0, true},
	} {
		c, err := Load([]string{"PARLEY_SANDBOX_HEAP_LIMIT=" + tt.v})
		if tt.bad {
			if err == nil {
				t.Errorf("%q accepted", tt.v)
			}
			continue
		}
		if err != nil || c.SandboxHeapLimit != tt.want {
			t.Errorf("%q: got %d, %v; want %d", tt.v, c.SandboxHeapLimit, err, tt.want)
		}
	}
}

func TestSandboxIdleTimeout(t *testing.T) {
	c, err := Load(nil)
	if err != nil || c.SandboxIdleTimeout != time.Minute {
		t.Errorf("default: %v, %v", c.SandboxIdleTimeout, err)
	}
	c, err = Load([]string{"PARLEY_SANDBOX_IDLE_TIMEOUT=5m"})
	if err != nil || c.SandboxIdleTimeout != 5*time.Minute {
		t.Errorf("5m: %v, %v", c.SandboxIdleTimeout, err)
	}
	if _, err := Load([]string{"PARLEY_SANDBOX_IDLE_TIMEOUT=0"}); err == nil || !strings.Contains(err.Error(), "PARLEY_SANDBOX_IDLE_TIMEOUT") {
		t.Errorf("0: %v", err)
	}
}

func TestServerTimeouts(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadTimeout != 15*time.Second || c.WriteTimeout != time.Minute || c.IdleTimeout != time.Minute {
		t.Errorf("default timeouts: read %v, write %v, idle %v", c.ReadTimeout, c.WriteTimeout, c.IdleTimeout)
	}
	if c.WriteTimeout < c.ReadTimeout+30*time.Second {
		t.Errorf("default write timeout %v leaves a 30 s handler no time after a %v read", c.WriteTimeout, c.ReadTimeout)
	}
	c, err = Load([]string{"PARLEY_READ_TIMEOUT=5s", "PARLEY_WRITE_TIMEOUT=2m", "PARLEY_IDLE_TIMEOUT=30s"})
	if err != nil || c.ReadTimeout != 5*time.Second || c.WriteTimeout != 2*time.Minute || c.IdleTimeout != 30*time.Second {
		t.Errorf("set timeouts: %v, read %v, write %v, idle %v", err, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout)
	}
	// A write timeout that would cut off the longest turn a bot can set is refused.
	for _, env := range [][]string{
		{"PARLEY_WRITE_TIMEOUT=30s"},
		{"PARLEY_READ_TIMEOUT=40s", "PARLEY_WRITE_TIMEOUT=60s"},
		{"PARLEY_IDLE_TIMEOUT=0s"},
	} {
		if _, err := Load(env); err == nil {
			t.Errorf("Load(%q) accepted", env)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(nil)
	if err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default trusted proxies %v, %v; want none", c.TrustedProxies, err)
	}
	c, err = Load([]string{"PARLEY_TRUSTED_PROXIES= 10.0.0.0/8, 192.168.1.7 ,fd00::/8,::ffff:172.16.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.168.1.7/32 fd00::/8 172.16.0.1/32"; strings.Join(got, " ") != want {
		t.Errorf("trusted proxies %q, want %q", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0"} {
		if _, err := Load([]string{"PARLEY_TRUSTED_PROXIES=" + bad}); err == nil || !strings.Contains(err.Error(), "PARLEY_TRUSTED_PROXIES") {
			t.Errorf("PARLEY_TRUSTED_PROXIES=%s: %v", bad, err)
		}
	}
}

func TestSecretKeys(t *testing.T) {
	const b64 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=" // bytes 1..32
	const hexKey = "2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40"
	c, err := Load([]string{"PARLEY_SECRET_KEY=" + b64, "PARLEY_SECRET_KEY_PREVIOUS= " + hexKey + " ,"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretKey) != 32 || c.SecretKey[0] != 1 || len(c.SecretKeysPrevious) != 1 || c.SecretKeysPrevious[0][0] != 0x21 {
		t.Fatalf("keys = %x, %x", []byte(c.SecretKey), c.SecretKeysPrevious)
	}
	for _, shown := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%x", c.SecretKey)} {
		if strings.Contains(shown, "[1 2 3") || strings.Contains(shown, "0102030405") || strings.Contains(shown, "0x1, 0x2") {
			t.Fatalf("a printed config shows the key: %s", shown)
		}
	}
	if c, err := Load(nil); err != nil || c.SecretKey != nil {
		t.Fatalf("no key: %v, %v", c.SecretKey, err)
	}
	for _, env := range [][]string{
		{"PARLEY_SECRET_KEY=not-a-key-at-all-but-long-enough"},
		{"PARLEY_SECRET_KEY=AQIDBAUGBwgJCgsMDQ4PEA=="}, // 16 bytes
		{"PARLEY_SECRET_KEY=" + b64, "PARLEY_SECRET_KEY_PREVIOUS=zzzz-secret-material"},
		{"PARLEY_SECRET_KEY_PREVIOUS=" + b64},
	} {
		_, err := Load(env)
		if err == nil {
			t.Errorf("%v: accepted", env)
			continue
		}
		if strings.Contains(err.Error(), "not-a-key") || strings.Contains(err.Error(), "zzzz") || strings.Contains(err.Error(), "AQID") {
			t.Errorf("the error shows the key: %v", err)
		}
		if !strings.Contains(err.Error(), "PARLEY_SECRET_KEY") {
			t.Errorf("the error does not name the variable: %v", err)
		}
	}
}

// TestTeamsEndpoints: the Teams channel's endpoints are server
// configuration, http(s) URLs; unset leaves the channel's defaults.
func TestTeamsEndpoints(t *testing.T) {
	c, err := Load(nil)
	if err != nil || c.TeamsOpenIDMetadataURL != "" || c.TeamsTokenURL != "" || c.TeamsServiceURL != "" {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = Load([]string{"PARLEY_TEAMS_OPENID_METADATA_URL=http://127.0.0.1:9000/v1/.well-known/openidconfiguration",
		"PARLEY_TEAMS_TOKEN_URL=https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token",
		"PARLEY_TEAMS_SERVICE_URL=https://smba.infra.gcc.teams.microsoft.com/teams"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TeamsOpenIDMetadataURL != "http://127.0.0.1:9000/v1/.well-known/openidconfiguration" ||
		c.TeamsTokenURL != "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token" ||
		c.TeamsServiceURL != "https://smba.infra.gcc.teams.microsoft.com/teams" {
		t.Errorf("values = %+v", c)
	}
	_, err = Load([]string{"PARLEY_TEAMS_OPENID_METADATA_URL=file:///etc/keys", "PARLEY_TEAMS_TOKEN_URL=login", "PARLEY_TEAMS_SERVICE_URL=ftp://x"})
	for _, want := range []string{"PARLEY_TEAMS_OPENID_METADATA_URL", "PARLEY_TEAMS_TOKEN_URL", "PARLEY_TEAMS_SERVICE_URL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
