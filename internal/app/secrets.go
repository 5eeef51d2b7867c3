package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/seal"
)

// secretKeyFile is the embedded store's generated secret key, in the data dir.
const secretKeyFile = "secret.key"

// loadSecretKeys returns the keyring that seals secrets at rest:
// PARLEY_SECRET_KEY with PARLEY_SECRET_KEY_PREVIOUS; with the embedded store
// and no key configured, the key kept in the data dir, generated at first
// start. With Redis and no key it returns nil: secrets are refused, and the
// server says so once at start.
func loadSecretKeys(cfg config.Config, embedded bool, log *slog.Logger) (*seal.Keyring, error) {
	var previous [][]byte
	for _, k := range cfg.SecretKeysPrevious {
		previous = append(previous, k)
	}
	if !embedded {
		if cfg.SecretKey == nil {
			log.Warn("PARLEY_SECRET_KEY is not set: bots' secrets and channels' secret settings cannot be stored " +
				"(the API answers 501); set it to 32 random bytes in base64 (openssl rand -base64 32) on every replica")
			return nil, nil
		}
		return seal.New(cfg.SecretKey, previous...)
	}
	path := filepath.Join(cfg.DataDir, secretKeyFile)
	kept, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if cfg.SecretKey != nil {
		// The generated key still opens what it sealed; those values are
		// sealed again under the configured key at start.
		if kept != nil {
			previous = append(previous, kept)
		}
		return seal.New(cfg.SecretKey, previous...)
	}
	if kept == nil {
		if kept, err = seal.NewKey(); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		if err := os.WriteFile(path, []byte(seal.FormatKey(kept)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("save secret key: %w", err)
		}
		log.Info("generated the key that encrypts secrets at rest; it is kept in " + path +
			": back it up apart from the snapshot, since the snapshot's secrets cannot be read without it")
	}
	return seal.New(kept, previous...)
}

// readKeyFile reads a kept secret key; nil when the file does not exist.
// Its errors never show the file's content.
func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	k, err := seal.ParseKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w; restore it from a backup (deleting it makes stored secrets unreadable)", path, err)
	}
	return k, nil
}

// sealStored seals, at start, the channel settings still stored in clear
// and the values sealed under a previous key. A failure is logged: values
// in clear are still read, and the next start tries again.
func sealStored(ctx context.Context, c *bots.Catalog, log *slog.Logger) {
	done, err := c.SealStored(ctx)
	if err != nil {
		log.Warn("could not seal the stored channel settings and secrets; the next start tries again", "err", err)
	}
	if done.Channels > 0 || done.Secrets > 0 {
		log.Info("sealed stored values under the current secret key", "channels", done.Channels, "secrets", done.Secrets)
	}
	if done.Failed > 0 {
		log.Error("stored values do not open with the configured secret keys; add the key they were sealed with "+
			"to PARLEY_SECRET_KEY_PREVIOUS, or set them again", "values", done.Failed)
	}
}

// secretSettingsOf names each channel's secret settings, as its adapter
// declares them.
func secretSettingsOf(reg *channels.Registry) func(channel string) []string {
	return func(channel string) []string {
		a, ok := reg.Get(channel)
		if !ok {
			return nil
		}
		if c, ok := a.(channels.Configurer); ok {
			return c.SecretSettings()
		}
		return nil
	}
}
