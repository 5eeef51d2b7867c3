package app

import (
	"log/slog"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/web"
	"github.com/parleyhq/parley/internal/config"
)

// ChannelSecrets names each channel's secret settings, by channel, as its
// adapter declares them: the settings the API masks in its answers, and the
// only ones `parley deploy` reads environment variables into.
func ChannelSecrets() map[string][]string {
	reg, err := channelAdapters(config.Config{}, slog.New(slog.DiscardHandler), nil, web.Config{})
	if err != nil {
		return nil
	}
	out := make(map[string][]string)
	for _, name := range reg.Names() {
		a, _ := reg.Get(name)
		out[name] = nil
		if c, ok := a.(channels.Configurer); ok {
			out[name] = c.SecretSettings()
		}
	}
	return out
}
