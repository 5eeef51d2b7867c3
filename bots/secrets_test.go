package bots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sandbox"
)

const secretValue = "sk-live-SECRETVALUE-0123456789"

func testKeyring(t testing.TB, current byte, previous ...byte) *seal.Keyring {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, seal.KeySize))
	}
	kr, err := seal.New(bytes.Repeat([]byte{current}, seal.KeySize), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// webSecrets is the web channel's secret settings, as its adapter names them.
func webSecrets(channel string) []string {
	if channel == "web" {
		return []string{"token"}
	}
	return nil
}

// rawValues returns every value of the bot's hash key, for checking what
// Redis holds.
func rawValues(t *testing.T, rdb redis.UniversalClient, key string) string {
	t.Helper()
	all, err := rdb.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(all)
}

func TestSecretsLifecycle(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Keys: testKeyring(t, 1)})
		if _, err := c.PutSecret(ctx, "nobot", "API_KEY", "v"); !errors.Is(err, ErrBotNotFound) {
			t.Fatalf("a secret of an unknown bot: %v", err)
		}
		if _, err := c.PutBot(ctx, "shop", Settings{Secrets: []string{"API_KEY", "OTHER"}}); err != nil {
			t.Fatal(err)
		}
		info, err := c.GetBot(ctx, "shop")
		if err != nil || fmt.Sprint(info.MissingSecrets) != "[API_KEY OTHER]" {
			t.Fatalf("missing secrets %v, %v", info.MissingSecrets, err)
		}
		created, err := c.PutSecret(ctx, "shop", "API_KEY", "first")
		if err != nil || !created {
			t.Fatalf("put: %v, %v", created, err)
		}
		if v, err := c.Secret(ctx, "shop", "API_KEY"); err != nil || v != "first" {
			t.Fatalf("Secret = %q, %v", v, err)
		}
		created, err = c.PutSecret(ctx, "shop", "API_KEY", secretValue)
		if err != nil || created {
			t.Fatalf("replace: %v, %v", created, err)
		}
		// The snapshot was dropped by the change: the new value at once.
		if v, err := c.Secret(ctx, "shop", "API_KEY"); err != nil || v != secretValue {
			t.Fatalf("Secret after replace = %q, %v", v, err)
		}
		if raw := rawValues(t, rdb, c.keys("shop").secrets); strings.Contains(raw, secretValue) || !strings.Contains(raw, "enc:v1:") {
			t.Fatalf("Redis holds %s", raw)
		}
		list, err := c.ListSecrets(ctx, "shop")
		if err != nil || len(list) != 1 || list[0].Name != "API_KEY" || time.Since(list[0].Updated) > time.Minute {
			t.Fatalf("list %+v, %v", list, err)
		}
		if info, _ := c.GetBot(ctx, "shop"); fmt.Sprint(info.MissingSecrets) != "[OTHER]" {
			t.Fatalf("missing secrets %v", info.MissingSecrets)
		}
		if m, err := c.MissingSecrets(ctx, "shop", []string{"OTHER", "API_KEY", "OTHER"}); err != nil || fmt.Sprint(m) != "[OTHER]" {
			t.Fatalf("MissingSecrets = %v, %v", m, err)
		}
		_, err = c.Secret(ctx, "shop", "OTHER")
		if !errors.Is(err, ErrSecretNotFound) || !errors.Is(err, sandbox.ErrSecretNotSet) {
			t.Fatalf("a missing secret: %v", err)
		}
		if err := c.DeleteSecret(ctx, "shop", "API_KEY"); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteSecret(ctx, "shop", "API_KEY"); !errors.Is(err, ErrSecretNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
		if _, err := c.Secret(ctx, "shop", "API_KEY"); !errors.Is(err, ErrSecretNotFound) {
			t.Fatalf("a deleted secret: %v", err)
		}
		if _, err := c.ListSecrets(ctx, "nobot"); !errors.Is(err, ErrBotNotFound) {
			t.Fatalf("list of an unknown bot: %v", err)
		}

		// A deleted bot's secrets are gone with it, and none can be added.
		if _, err := c.PutSecret(ctx, "shop", "API_KEY", "v"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteBot(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutSecret(ctx, "shop", "NEW", "v"); !errors.Is(err, ErrBotNotFound) {
			t.Fatalf("a secret of a deleted bot: %v", err)
		}
		if _, err := c.Secret(ctx, "shop", "API_KEY"); !errors.Is(err, ErrBotNotFound) {
			t.Fatalf("a deleted bot's secret: %v", err)
		}
		if !strings.HasPrefix(c.keys("shop").secrets, c.BotKeyPrefixes("shop")[0]) {
			t.Fatal("the secrets' key is outside the prefixes a bot's deletion sweeps")
		}
	})
}

// TestLLMKeySecretIsNeeded: the secret named by llm_api_key_secret is one
// the bot needs, like those of secrets, so the bot lists it as missing
// until it is set; a name no secret can have is refused when deleted.
func TestLLMKeySecretIsNeeded(t *testing.T) {
	for _, tc := range []struct {
		s    Settings
		want string
	}{
		{Settings{}, "[]"},
		{Settings{Secrets: []string{"A"}}, "[A]"},
		{Settings{LLMAPIKeySecret: "KEY"}, "[KEY]"},
		{Settings{Secrets: []string{"A", "KEY"}, LLMAPIKeySecret: "KEY"}, "[A KEY]"},
		{Settings{Secrets: []string{"A"}, LLMAPIKeySecret: "KEY"}, "[A KEY]"},
	} {
		if got := fmt.Sprint(tc.s.NeededSecrets()); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.s, got, tc.want)
		}
	}
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		c := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Keys: testKeyring(t, 1)})
		if _, err := c.PutBot(ctx, "faq", Settings{LLMBaseURL: "https://api.openai.com/v1", LLMAPIKeySecret: "OPENAI_API_KEY"}); err != nil {
			t.Fatal(err)
		}
		info, err := c.GetBot(ctx, "faq")
		if err != nil || fmt.Sprint(info.MissingSecrets) != "[OPENAI_API_KEY]" {
			t.Fatalf("missing secrets %v, %v", info.MissingSecrets, err)
		}
		if _, err := c.PutSecret(ctx, "faq", "OPENAI_API_KEY", "sk-0123"); err != nil {
			t.Fatal(err)
		}
		if info, _ := c.GetBot(ctx, "faq"); len(info.MissingSecrets) != 0 {
			t.Fatalf("missing secrets once set: %v", info.MissingSecrets)
		}
		err = c.DeleteSecret(ctx, "faq", "bad-name")
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(ve.Msg, "upper-case") {
			t.Fatalf("deleting a bad name: %v", err)
		}
	})
}

func TestSecretLimits(t *testing.T) {
	ctx := context.Background()
	c := New(testredis.Embedded(t), Config{Keys: testKeyring(t, 1)})
	if _, err := c.PutBot(ctx, "shop", Settings{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "lower", "1ABC", "A-B", "A B", strings.Repeat("A", 65), "Ä"} {
		var ve *ValidationError
		if _, err := c.PutSecret(ctx, "shop", name, "v"); !errors.As(err, &ve) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := c.PutSecret(ctx, "shop", strings.Repeat("A", 64), "v"); err != nil {
		t.Errorf("a 64-character name: %v", err)
	}
	if _, err := c.PutSecret(ctx, "shop", "EMPTY", ""); err == nil {
		t.Error("an empty value was stored")
	}
	if _, err := c.PutSecret(ctx, "shop", "BIG", strings.Repeat("x", MaxSecretBytes)); err != nil {
		t.Errorf("a value at the cap: %v", err)
	}
	_, err := c.PutSecret(ctx, "shop", "BIGGER", strings.Repeat("x", MaxSecretBytes+1))
	if err == nil || !strings.Contains(err.Error(), "limited to 8192 bytes") || strings.Contains(err.Error(), "xxxx") {
		t.Errorf("a value over the cap: %v", err)
	}
	for i := 2; i < MaxSecrets; i++ {
		if _, err := c.PutSecret(ctx, "shop", fmt.Sprintf("S%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	var tooMany *apierr.Error
	if _, err := c.PutSecret(ctx, "shop", "ONE_TOO_MANY", "v"); !errors.As(err, &tooMany) || tooMany.Code != "too_many_secrets" {
		t.Errorf("secret %d: %v", MaxSecrets+1, err)
	}
	if _, err := c.PutSecret(ctx, "shop", "S2", "replaced"); err != nil {
		t.Errorf("replacing at the cap: %v", err)
	}
	if err := (Settings{Secrets: []string{"lower"}}).Validate(); err == nil {
		t.Error("settings naming a bad secret name")
	}
}

func TestNoKeyRefusesSecrets(t *testing.T) {
	ctx := context.Background()
	rdb := testredis.Embedded(t)
	c := New(rdb, Config{SecretSettings: webSecrets})
	if _, err := c.PutBot(ctx, "shop", Settings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSecret(ctx, "shop", "API_KEY", secretValue); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("a secret without a key: %v", err)
	}
	if err := c.PutChannel(ctx, "shop", "web", map[string]string{"token": "t0123456789"}); !errors.Is(err, ErrNoSecretKey) {
		t.Fatalf("a channel secret without a key: %v", err)
	}
	// Settings without a secret value are stored (in clear).
	if err := c.PutChannel(ctx, "shop", "web", map[string]string{"token": ""}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutChannel(ctx, "shop", "alexa", map[string]string{"skill_id": "amzn1"}); err != nil {
		t.Fatal(err)
	}
	if s, err := c.ChannelSettings(ctx, "shop", "alexa"); err != nil || s["skill_id"] != "amzn1" {
		t.Fatalf("settings %v, %v", s, err)
	}
	if n, err := c.SealStored(ctx); err != nil || n != (Resealed{}) {
		t.Fatalf("SealStored without a key: %+v, %v", n, err)
	}
}

func TestChannelSettingsSealed(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		var logs bytes.Buffer
		c := New(rdb, Config{KeyPrefix: testredis.Prefix(t), Keys: testKeyring(t, 1), SecretSettings: webSecrets,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		for _, bot := range []string{"shop", "thief"} {
			if _, err := c.PutBot(ctx, bot, Settings{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.PutChannel(ctx, "shop", "web", map[string]string{"token": secretValue}); err != nil {
			t.Fatal(err)
		}
		raw := rawValues(t, rdb, c.keys("shop").channels)
		if strings.Contains(raw, secretValue) || !strings.Contains(raw, "enc:v1:") {
			t.Fatalf("Redis holds %s", raw)
		}
		if s, err := c.ChannelSettings(ctx, "shop", "web"); err != nil || s["token"] != secretValue {
			t.Fatalf("ChannelSettings = %v, %v", s, err)
		}
		b, err := c.Bot(ctx, "shop")
		if err != nil || b.Channels["web"]["token"] != secretValue {
			t.Fatalf("snapshot %v, %v", b, err)
		}
		// A printed snapshot does not show its secrets.
		if _, err := c.PutSecret(ctx, "shop", "PRINTED", "sk-printed-0123"); err != nil {
			t.Fatal(err)
		}
		b, _ = c.Bot(ctx, "shop")
		if shown := fmt.Sprintf("%v %+v %#v", b, b, *b); strings.Contains(shown, "sk-printed") || !b.HasSecret("PRINTED") {
			t.Fatalf("a printed snapshot shows a secret: %s", shown)
		}

		// Sealed values copied to another bot, or to another name, do not open.
		sealed, _ := rdb.HGet(ctx, c.keys("shop").channels, "web").Result()
		if err := rdb.HSet(ctx, c.keys("thief").channels, "web", sealed).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutSecret(ctx, "shop", "API_KEY", secretValue); err != nil {
			t.Fatal(err)
		}
		stolen, _ := rdb.HGet(ctx, c.keys("shop").secrets, "API_KEY").Result()
		rdb.HSet(ctx, c.keys("thief").secrets, "API_KEY", stolen)
		rdb.HSet(ctx, c.keys("shop").secrets, "RENAMED", stolen)
		c.invalidate("thief")
		c.invalidate("shop")
		if _, err := c.ChannelSettings(ctx, "thief", "web"); !errors.Is(err, seal.ErrTampered) {
			t.Fatalf("a moved channel opened: %v", err)
		}
		thief, err := c.Bot(ctx, "thief")
		if err != nil || len(thief.Channels) != 0 {
			t.Fatalf("the bot with a moved channel: %v, %v", thief, err)
		}
		if v, err := c.Secret(ctx, "thief", "API_KEY"); err == nil || errors.Is(err, ErrSecretNotFound) || v != "" {
			t.Fatalf("a moved secret: %q, %v", v, err)
		}
		if v, err := c.Secret(ctx, "shop", "RENAMED"); err == nil || v != "" {
			t.Fatalf("a renamed secret: %q, %v", v, err)
		}
		if v, err := c.Secret(ctx, "shop", "API_KEY"); err != nil || v != secretValue {
			t.Fatalf("the shop's own secret: %q, %v", v, err)
		}
		if !strings.Contains(logs.String(), "cannot be opened") || strings.Contains(logs.String(), secretValue) {
			t.Fatalf("logs: %s", logs.String())
		}
	})
}

func TestSealStoredAndRotation(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		// Before sealing: a channel stored in clear, as earlier versions did.
		old := New(rdb, Config{KeyPrefix: prefix})
		if _, err := old.PutBot(ctx, "shop", Settings{}); err != nil {
			t.Fatal(err)
		}
		clear := `{"token":"` + secretValue + `"}`
		if err := rdb.HSet(ctx, old.keys("shop").channels, "web", clear).Err(); err != nil {
			t.Fatal(err)
		}
		if b, err := old.Bot(ctx, "shop"); err != nil || b.Channels["web"]["token"] != secretValue {
			t.Fatalf("a channel in clear is not read: %v", err)
		}

		v1 := New(rdb, Config{KeyPrefix: prefix, Keys: testKeyring(t, 1)})
		done, err := v1.SealStored(ctx)
		if err != nil || done != (Resealed{Channels: 1}) {
			t.Fatalf("first start: %+v, %v", done, err)
		}
		if raw := rawValues(t, rdb, v1.keys("shop").channels); strings.Contains(raw, secretValue) {
			t.Fatalf("still in clear: %s", raw)
		}
		if done, err := v1.SealStored(ctx); err != nil || done != (Resealed{}) {
			t.Fatalf("second start: %+v, %v", done, err)
		}
		if _, err := v1.PutSecret(ctx, "shop", "API_KEY", secretValue); err != nil {
			t.Fatal(err)
		}

		// Rotation: key 2 is current, key 1 previous. Several replicas start at once.
		const replicas = 4
		var wg sync.WaitGroup
		var channels, secrets, failed atomic.Int64
		for range replicas {
			wg.Go(func() {
				r := New(rdb, Config{KeyPrefix: prefix, Keys: testKeyring(t, 2, 1)})
				done, err := r.SealStored(ctx)
				if err != nil {
					t.Error(err)
				}
				channels.Add(int64(done.Channels))
				secrets.Add(int64(done.Secrets))
				failed.Add(int64(done.Failed))
			})
		}
		wg.Wait()
		if channels.Load() < 1 || secrets.Load() < 1 || failed.Load() != 0 {
			t.Fatalf("rotation: %d channels, %d secrets, %d failed", channels.Load(), secrets.Load(), failed.Load())
		}
		// Only key 2 is needed now.
		v2 := New(rdb, Config{KeyPrefix: prefix, Keys: testKeyring(t, 2)})
		b, err := v2.Bot(ctx, "shop")
		if err != nil || b.Channels["web"]["token"] != secretValue {
			t.Fatalf("after rotation: %v", err)
		}
		if v, err := v2.Secret(ctx, "shop", "API_KEY"); err != nil || v != secretValue {
			t.Fatalf("the secret after rotation: %q, %v", v, err)
		}
		if done, err := v2.SealStored(ctx); err != nil || done != (Resealed{}) {
			t.Fatalf("after rotation: %+v, %v", done, err)
		}
		// A key that is not configured: the values are left alone and counted.
		v3 := New(rdb, Config{KeyPrefix: prefix, Keys: testKeyring(t, 3)})
		if done, err := v3.SealStored(ctx); err != nil || done != (Resealed{Failed: 2}) {
			t.Fatalf("unknown key: %+v, %v", done, err)
		}
		if v, err := v2.Secret(ctx, "shop", "API_KEY"); err != nil || v != secretValue {
			t.Fatalf("a failed rotation changed the value: %q, %v", v, err)
		}
	})
}

func TestResealKeepsConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	rdb := testredis.Embedded(t)
	c := New(rdb, Config{Keys: testKeyring(t, 1), SecretSettings: webSecrets})
	if _, err := c.PutBot(ctx, "shop", Settings{}); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, c.keys("shop").channels, "web", `{"token":"old-token-0123"}`)
	// A write lands between the read and the replacement: it is kept.
	if err := c.PutChannel(ctx, "shop", "web", map[string]string{"token": "new-token-0123"}); err != nil {
		t.Fatal(err)
	}
	n, err := c.resealChannel(ctx, "shop", "web", `{"token":"old-token-0123"}`)
	if err != nil || n != 0 {
		t.Fatalf("reseal over a newer write: %d, %v", n, err)
	}
	if s, _ := c.ChannelSettings(ctx, "shop", "web"); s["token"] != "new-token-0123" {
		t.Fatalf("the newer write was undone: %v", s)
	}
}

// TestSecretFromMemory checks that resolving a secret costs no Redis
// command once the bot is loaded.
func TestSecretFromMemory(t *testing.T) {
	ctx := context.Background()
	rdb := testredis.Embedded(t).(*redis.Client)
	c := New(rdb, Config{Keys: testKeyring(t, 1)})
	if _, err := c.PutBot(ctx, "shop", Settings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSecret(ctx, "shop", "API_KEY", secretValue); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Secret(ctx, "shop", "API_KEY"); err != nil {
		t.Fatal(err)
	}
	var cmds atomic.Int64
	rdb.AddHook(countHook{&cmds})
	for range 1000 {
		if v, err := c.Secret(ctx, "shop", "API_KEY"); err != nil || v != secretValue {
			t.Fatal(v, err)
		}
	}
	if n := cmds.Load(); n != 0 {
		t.Fatalf("1000 lookups sent %d commands to Redis", n)
	}
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// TestSecretChangeReachesOtherReplicas checks that a replica serving a
// snapshot picks up a changed secret.
func TestSecretChangeReachesOtherReplicas(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		prefix := testredis.Prefix(t)
		a := New(rdb, Config{KeyPrefix: prefix, Keys: testKeyring(t, 1), RefreshInterval: 50 * time.Millisecond})
		b := New(rdb, Config{KeyPrefix: prefix, Keys: testKeyring(t, 1), RefreshInterval: 50 * time.Millisecond})
		done := make(chan struct{})
		go func() { _ = b.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		if _, err := a.PutBot(ctx, "shop", Settings{}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.PutSecret(ctx, "shop", "API_KEY", "one"); err != nil {
			t.Fatal(err)
		}
		if v, err := b.Secret(ctx, "shop", "API_KEY"); err != nil || v != "one" {
			t.Fatalf("b: %q, %v", v, err)
		}
		if _, err := a.PutSecret(ctx, "shop", "API_KEY", "two"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, err := b.Secret(ctx, "shop", "API_KEY")
			if err == nil && v == "two" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("b still serves %q, %v", v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
