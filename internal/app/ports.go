package app

import (
	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/handoff"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// The engine declares what it needs from the services around it; these
// guards keep the concrete services wired in New satisfying it.
var (
	_ engine.BotSource     = (*bots.Catalog)(nil)
	_ engine.Conversations = (*sessions.Store)(nil)
	_ engine.Runner        = (*sandbox.Runtime)(nil)
	_ engine.Limiter       = (*ratelimit.Limiter)(nil)
	_ engine.Handoffs      = (*handoff.Manager)(nil)
)
