package bots

import (
	"net/url"
	"time"
)

// Bounds of the handoff settings.
const (
	// DefaultHandoffIdleTimeout is the handoff_idle_timeout of bots that
	// set none.
	DefaultHandoffIdleTimeout = 30 * time.Minute
	maxHandoffIdleTimeout     = 30 * 24 * time.Hour
	maxHandoffWebhookURL      = 2048
)

// validateHandoff checks the handoff settings: a notice of at most 4096
// bytes, an idle timeout between 1s and 30 days, an http(s) webhook URL
// without credentials, and the name of the secret that signs it.
func (s Settings) validateHandoff() error {
	if len(s.HandoffNotice) > 4096 {
		return invalid("handoff_notice is limited to 4096 bytes")
	}
	if s.HandoffIdleTimeout != "" {
		d, err := time.ParseDuration(s.HandoffIdleTimeout)
		if err != nil || d < time.Second || d > maxHandoffIdleTimeout {
			return invalid("handoff_idle_timeout must be a duration between 1s and 720h (30 days), such as \"30m\"")
		}
	}
	if s.HandoffWebhookURL != "" {
		u, err := url.Parse(s.HandoffWebhookURL)
		switch {
		case len(s.HandoffWebhookURL) > maxHandoffWebhookURL:
			return invalid("handoff_webhook_url is longer than %d bytes", maxHandoffWebhookURL)
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.Opaque != "":
			return invalid("handoff_webhook_url must be an http or https URL such as https://desk.example.com/parley")
		case u.User != nil:
			return invalid("handoff_webhook_url must not hold credentials")
		case s.HandoffWebhookSecret == "":
			return invalid("handoff_webhook_url needs handoff_webhook_secret, the name of the secret that signs its requests")
		}
	}
	if s.HandoffWebhookSecret != "" {
		if err := ValidateSecretName(s.HandoffWebhookSecret); err != nil {
			return invalid("handoff_webhook_secret: %s", err.Error())
		}
	}
	return nil
}

// HandoffIdle is how long a handed-off conversation may stay silent
// before it goes back to the bot.
func (s Settings) HandoffIdle() time.Duration {
	if d, err := time.ParseDuration(s.HandoffIdleTimeout); err == nil && d >= time.Second {
		return d
	}
	return DefaultHandoffIdleTimeout
}
