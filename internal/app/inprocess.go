package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/purge"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
)

// Hooks replace parts of an App for a host that runs bots in its own
// process under test (parley test and parley dev). A server never sets them;
// nothing a bot or a request sends reaches them. Zero fields keep the
// production parts.
type Hooks struct {
	// Clock, when set, tells handlers the time (sandbox.Config.Clock).
	Clock sandbox.Clock
	// HTTP, when set, makes the http module's requests instead of the
	// egress client (which is then not built).
	HTTP sandbox.HTTPClient
	// SendClient, when set, is the HTTP client of the channels that send
	// replies through their platform's API (Slack, Telegram, ...).
	SendClient *http.Client
}

// Run runs one turn on the engine, as a webhook's event runs once its
// channel's adapter has parsed it. ev must name its bot and channel.
func (a *App) Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error) {
	return a.engine.Run(ctx, ev)
}

// Session returns a conversation's session data as the next turn's handler
// will see it; ok is false when the conversation has no session.
func (a *App) Session(ctx context.Context, bot string, conv msg.ConversationKey) (data map[string]any, ok bool, err error) {
	st, ok, err := a.sessions.Get(ctx, bot, conv)
	if err != nil {
		return nil, false, err
	}
	return st.Data, ok, nil
}

// Channel returns the adapter of a channel kind.
func (a *App) Channel(name string) (channels.Adapter, bool) {
	return a.channels.Get(name)
}

// resetFamilies are the kinds of a bot's data that ResetBot removes: what a
// conversation or a handler leaves behind, as opposed to what was deployed.
var resetFamilies = []string{"sessions", "store", "rate_limits"}

// ResetBot removes what a bot's turns left behind (sessions, the store
// module's values, rate-limit counters) and keeps what was deployed
// (settings, channels, handlers, NLU, schedules), so that the next turn
// meets the bot as deployed. Analytics and invocation logs are kept.
func (a *App) ResetBot(ctx context.Context, bot string) error {
	rdb := a.store.Client()
	for _, family := range resetFamilies {
		for _, prefix := range a.owners[family].BotKeyPrefixes(bot) {
			err := purge.ScanPrefix(ctx, rdb, prefix, 500, func(keys []string) error {
				for _, k := range keys {
					// One key at a time: the keys of a Redis Cluster may
					// live in different slots.
					if err := rdb.Del(ctx, k).Err(); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("reset bot %s: %s: %w", bot, family, err)
			}
		}
	}
	return nil
}
