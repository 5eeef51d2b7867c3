package bots

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/sandbox"
)

// A bot's secrets, and sealing at rest. Secrets and channel settings are
// sealed (internal/seal) before they are sent to Redis, under a context
// naming the bot and the value, and opened only into the in-memory
// snapshot (load.go) and the API's masked answers.

// Limits of a bot's secrets.
const (
	// MaxSecretBytes caps a secret's value.
	MaxSecretBytes = 8 << 10
	// MaxSecrets caps the secrets of one bot.
	MaxSecrets = 100
)

// secretName is a secret's name: an upper-case letter, then upper-case
// letters, digits and '_', up to 64 in all.
var secretName = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// Errors of the secrets.
var (
	// ErrSecretNotFound is a secret the bot does not have. It wraps
	// sandbox.ErrSecretNotSet, so that the sandbox tells it from a failure.
	ErrSecretNotFound error = &apierr.Error{Status: http.StatusNotFound, Code: "secret_not_found",
		Message: "unknown secret", Err: sandbox.ErrSecretNotSet}
	// ErrNoSecretKey refuses to store a secret, or a channel's secret
	// settings, on a server without a key to seal them with.
	ErrNoSecretKey error = &apierr.Error{Status: http.StatusNotImplemented, Code: "secret_key_missing",
		Message: "this server has no PARLEY_SECRET_KEY, so it does not store secrets or channels' secret settings; " +
			"set it (32 random bytes in base64, e.g. from: openssl rand -base64 32) and restart. See docs/secrets.md",
		Err: seal.ErrNoKey}
	// errSecretUnreadable is a stored secret that does not open with the
	// configured keys.
	errSecretUnreadable = errors.New("the secret cannot be opened with the configured keys")
)

// ValidateSecretName checks a secret's name: an upper-case letter, then
// upper-case letters, digits and '_', up to 64.
func ValidateSecretName(name string) error {
	if !secretName.MatchString(name) {
		return invalid("secret name %q must be 1-64 upper-case letters, digits or '_', starting with a letter", truncate(name, 80))
	}
	return nil
}

// NeededSecrets lists the secrets the settings name: those of Secrets,
// then LLMAPIKeySecret when it is set and not among them. Saving the
// settings warns about each one that is not set.
func (s Settings) NeededSecrets() []string {
	if s.LLMAPIKeySecret == "" || slices.Contains(s.Secrets, s.LLMAPIKeySecret) {
		return s.Secrets
	}
	return append(slices.Clip(s.Secrets), s.LLMAPIKeySecret)
}

// truncate cuts s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// SecretInfo is a stored secret as the API lists it: never its value.
type SecretInfo struct {
	// Name is the secret's name.
	Name string `json:"name"`
	// Updated is when the value was last set.
	Updated time.Time `json:"updated"`
}

// storedSecret is a secret as its bot's hash keeps it.
type storedSecret struct {
	Sealed  string    `json:"sealed"`
	Updated time.Time `json:"updated"`
}

// secretContext is what a secret's seal is bound to.
func secretContext(bot, name string) []string { return []string{"secret", bot, name} }

// channelContext is what a channel's sealed settings are bound to.
func channelContext(bot, channel string) []string { return []string{"channel", bot, channel} }

// PutSecret stores a bot's secret, sealed; created is true for a new name.
// The value never leaves the process in clear: Redis (and its MONITOR)
// sees only the sealed value. Without a key it returns ErrNoSecretKey.
func (c *Catalog) PutSecret(ctx context.Context, bot, name, value string) (created bool, err error) {
	if err := ValidateSecretName(name); err != nil {
		return false, err
	}
	switch {
	case value == "":
		return false, invalid("a secret's value must not be empty")
	case len(value) > MaxSecretBytes:
		return false, invalid("a secret's value is limited to %d bytes, this one has %d", MaxSecretBytes, len(value))
	}
	if !botName.MatchString(bot) {
		return false, ErrBotNotFound
	}
	if c.cfg.Keys == nil {
		return false, ErrNoSecretKey
	}
	sealed, err := c.cfg.Keys.Seal([]byte(value), secretContext(bot, name)...)
	if err != nil {
		return false, fmt.Errorf("seal secret %s of %s: %w", name, bot, err)
	}
	raw, err := json.Marshal(storedSecret{Sealed: sealed, Updated: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return false, fmt.Errorf("encode secret: %w", err)
	}
	k := c.keys(bot)
	res, err := putSecretScript.Run(ctx, c.rdb, []string{k.settings, k.secrets, k.gen}, name, raw, MaxSecrets).Int()
	if err != nil {
		return false, fmt.Errorf("save secret %s of %s: %w", name, bot, err)
	}
	switch res {
	case -1:
		return false, ErrBotNotFound
	case -2:
		return false, &apierr.Error{Status: http.StatusConflict, Code: "too_many_secrets",
			Message: fmt.Sprintf("a bot has at most %d secrets; delete one first", MaxSecrets)}
	}
	c.announce(ctx, bot)
	return res == 1, nil
}

// ListSecrets lists a bot's secrets by name, without their values.
func (c *Catalog) ListSecrets(ctx context.Context, bot string) ([]SecretInfo, error) {
	if err := c.requireBot(ctx, bot); err != nil {
		return nil, err
	}
	all, err := c.rdb.HGetAll(ctx, c.keys(bot).secrets).Result()
	if err != nil {
		return nil, fmt.Errorf("list secrets of %s: %w", bot, err)
	}
	out := make([]SecretInfo, 0, len(all))
	for name, raw := range all {
		var s storedSecret
		_ = json.Unmarshal([]byte(raw), &s) // a damaged entry is still listed, so it can be deleted
		out = append(out, SecretInfo{Name: name, Updated: s.Updated})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteSecret removes a bot's secret: ErrSecretNotFound when it has none
// of that name, ErrBotNotFound when the bot does not exist, and a 400 for
// a name no secret can have.
func (c *Catalog) DeleteSecret(ctx context.Context, bot, name string) error {
	if err := ValidateSecretName(name); err != nil {
		return err
	}
	if err := c.requireBot(ctx, bot); err != nil {
		return err
	}
	k := c.keys(bot)
	n, err := c.rdb.HDel(ctx, k.secrets, name).Result()
	if err != nil {
		return fmt.Errorf("delete secret %s of %s: %w", name, bot, err)
	}
	if n == 0 {
		return ErrSecretNotFound
	}
	if err := c.rdb.Incr(ctx, k.gen).Err(); err != nil {
		return fmt.Errorf("delete secret %s of %s: %w", name, bot, err)
	}
	c.announce(ctx, bot)
	return nil
}

// Secret returns the value of a bot's secret, from the bot's snapshot in
// memory: no Redis round trip unless the bot is not loaded. A secret the
// bot does not have is ErrSecretNotFound; an unknown bot ErrBotNotFound.
// It implements sandbox.Secrets. Never log or return the value anywhere
// but where it is used.
func (c *Catalog) Secret(ctx context.Context, bot, name string) (string, error) {
	b, err := c.Bot(ctx, bot)
	if err != nil {
		return "", err
	}
	return b.secret(name)
}

var _ sandbox.Secrets = (*Catalog)(nil)

// secretValues are a bot's opened secrets, in memory only. A Bot holds
// them behind a pointer, so that printing a Bot shows an address.
type secretValues struct {
	values     map[string]string
	unreadable map[string]bool // stored but not opened with the configured keys
}

// secret returns the opened value of the bot's secret name.
func (b *Bot) secret(name string) (string, error) {
	if b.secrets != nil {
		if v, ok := b.secrets.values[name]; ok {
			return v, nil
		}
		if b.secrets.unreadable[name] {
			return "", errSecretUnreadable
		}
	}
	return "", ErrSecretNotFound
}

// HasSecret reports whether the bot has a secret of that name.
func (b *Bot) HasSecret(name string) bool {
	if b.secrets == nil {
		return false
	}
	_, ok := b.secrets.values[name]
	return ok || b.secrets.unreadable[name]
}

// openSecrets opens a bot's stored secrets; those that do not open are
// logged by name and kept as unreadable.
func (c *Catalog) openSecrets(bot string, stored map[string]string) *secretValues {
	if len(stored) == 0 {
		return nil
	}
	out := &secretValues{values: make(map[string]string, len(stored))}
	for name, raw := range stored {
		var s storedSecret
		err := json.Unmarshal([]byte(raw), &s)
		var v []byte
		if err == nil {
			v, err = c.cfg.Keys.Open(s.Sealed, secretContext(bot, name)...)
		}
		if err != nil {
			if out.unreadable == nil {
				out.unreadable = make(map[string]bool)
			}
			out.unreadable[name] = true
			c.log.Error("a stored secret cannot be opened; set it again, or configure the key it was sealed with",
				"bot", bot, "secret", name, "err", err)
			continue
		}
		out.values[name] = string(v)
	}
	return out
}

// sealChannel encodes a channel's settings as stored: sealed with the key,
// or in clear without one, which is refused when a secret setting has a
// value.
func (c *Catalog) sealChannel(bot, channel string, settings map[string]string) (string, error) {
	raw, err := json.Marshal(settings)
	if err != nil {
		return "", fmt.Errorf("encode channel settings: %w", err)
	}
	if c.cfg.Keys == nil {
		if c.cfg.SecretSettings != nil {
			for _, name := range c.cfg.SecretSettings(channel) {
				if settings[name] != "" {
					return "", ErrNoSecretKey
				}
			}
		}
		return string(raw), nil
	}
	sealed, err := c.cfg.Keys.Seal(raw, channelContext(bot, channel)...)
	if err != nil {
		return "", fmt.Errorf("seal channel %s of %s: %w", channel, bot, err)
	}
	return sealed, nil
}

// openChannel decodes a channel's stored settings: sealed ones are opened,
// ones stored in clear (before sealing, or without a key) are read as they
// are.
func (c *Catalog) openChannel(bot, channel, stored string) (map[string]string, error) {
	raw := []byte(stored)
	if seal.IsSealed(stored) {
		var err error
		if raw, err = c.cfg.Keys.Open(stored, channelContext(bot, channel)...); err != nil {
			return nil, fmt.Errorf("open channel %s of %s: %w", channel, bot, err)
		}
	}
	var settings map[string]string
	if err := json.Unmarshal(raw, &settings); err != nil {
		return nil, fmt.Errorf("decode channel %s of %s: %w", channel, bot, err)
	}
	return settings, nil
}

// Resealed counts what [Catalog.SealStored] did.
type Resealed struct {
	// Channels and Secrets count the values sealed under the current key:
	// channels' settings stored in clear or under a previous key, secrets
	// sealed under a previous key.
	Channels, Secrets int
	// Failed counts the values that could not be opened (sealed under a
	// key that is not configured) and were left as they are.
	Failed int
}

// SealStored seals, under the current key, every channel's settings still
// stored in clear and every value sealed under a previous key. It runs at
// start; it is idempotent, and safe on several replicas at once: a value is
// replaced only if it did not change since it was read, so a write made
// meanwhile is kept. The values it seals do not change, so snapshots stay
// valid. Without a key it does nothing.
func (c *Catalog) SealStored(ctx context.Context) (Resealed, error) {
	var done Resealed
	if c.cfg.Keys == nil {
		return done, nil
	}
	names, err := c.ListBots(ctx)
	if err != nil {
		return done, err
	}
	const batch = 100
	for chunk := range slices.Chunk(names, batch) {
		chans := make([]*redis.MapStringStringCmd, len(chunk))
		secs := make([]*redis.MapStringStringCmd, len(chunk))
		if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, bot := range chunk {
				chans[i] = p.HGetAll(ctx, c.keys(bot).channels)
				secs[i] = p.HGetAll(ctx, c.keys(bot).secrets)
			}
			return nil
		}); err != nil {
			return done, fmt.Errorf("read channels and secrets: %w", err)
		}
		for i, bot := range chunk {
			for channel, stored := range chans[i].Val() {
				n, err := c.resealChannel(ctx, bot, channel, stored)
				if err != nil {
					return done, err
				}
				done.Channels += max(n, 0)
				done.Failed += max(-n, 0)
			}
			for name, stored := range secs[i].Val() {
				n, err := c.resealSecret(ctx, bot, name, stored)
				if err != nil {
					return done, err
				}
				done.Secrets += max(n, 0)
				done.Failed += max(-n, 0)
			}
		}
	}
	return done, nil
}

// resealChannel seals one channel's stored settings under the current key
// if they are not yet: 1 when it did, 0 when there was nothing to do (or a
// write came first), -1 when they do not open.
func (c *Catalog) resealChannel(ctx context.Context, bot, channel, stored string) (int, error) {
	if c.cfg.Keys.Current(stored) {
		return 0, nil
	}
	settings, err := c.openChannel(bot, channel, stored)
	if err != nil {
		c.log.Error("channel settings cannot be opened; connect the channel again, or configure the key they were sealed with",
			"bot", bot, "channel", channel, "err", err)
		return -1, nil
	}
	raw, _ := json.Marshal(settings)
	sealed, err := c.cfg.Keys.Seal(raw, channelContext(bot, channel)...)
	if err != nil {
		return 0, err
	}
	return c.reseal(ctx, c.keys(bot).channels, channel, stored, sealed)
}

// resealSecret seals one stored secret again under the current key if it
// was sealed under a previous one; the result is resealChannel's.
func (c *Catalog) resealSecret(ctx context.Context, bot, name, stored string) (int, error) {
	var s storedSecret
	if err := json.Unmarshal([]byte(stored), &s); err != nil {
		c.log.Error("a stored secret is damaged; set it again", "bot", bot, "secret", name)
		return -1, nil
	}
	if c.cfg.Keys.Current(s.Sealed) {
		return 0, nil
	}
	v, err := c.cfg.Keys.Open(s.Sealed, secretContext(bot, name)...)
	if err != nil {
		c.log.Error("a stored secret cannot be opened; set it again, or configure the key it was sealed with",
			"bot", bot, "secret", name, "err", err)
		return -1, nil
	}
	if s.Sealed, err = c.cfg.Keys.Seal(v, secretContext(bot, name)...); err != nil {
		return 0, err
	}
	raw, _ := json.Marshal(s)
	return c.reseal(ctx, c.keys(bot).secrets, name, stored, string(raw))
}

// reseal replaces a hash field's value read as old with sealed, unless it
// changed meanwhile.
func (c *Catalog) reseal(ctx context.Context, hash, field, old, sealed string) (int, error) {
	sum := sha1.Sum([]byte(old))
	n, err := resealScript.Run(ctx, c.rdb, []string{hash}, field, hex.EncodeToString(sum[:]), sealed).Int()
	if err != nil {
		return 0, fmt.Errorf("seal %s of %s: %w", field, hash, err)
	}
	return n, nil
}
