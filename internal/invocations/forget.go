package invocations

import (
	"context"
	"embed"
	"fmt"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
)

//go:embed lua/*.lua
var luaFS embed.FS

var forgetScript = redisx.NewScript(luaFS, "lua/forget.lua")

// RemovedLogs is the kind [Recorder.Forget] reports its count under.
const RemovedLogs = "invocation_logs"

// Forget removes the bot's recent invocations of the given conversations
// (their log lines and errors may name the user), after writing this
// process's queued ones, and reports how many it removed under
// [RemovedLogs]. Daily usage totals stay: they hold no identity.
func (r *Recorder) Forget(ctx context.Context, bot, _ string, conversations []msg.ConversationKey) (map[string]int, error) {
	if len(conversations) == 0 {
		return map[string]int{RemovedLogs: 0}, nil
	}
	r.Flush(ctx)
	args := make([]any, len(conversations))
	for i, c := range conversations {
		args[i] = string(c)
	}
	n, err := forgetScript.Run(ctx, r.rdb, []string{r.recentKey(bot)}, args...).Int()
	if err != nil {
		return nil, fmt.Errorf("forget invocations: %w", err)
	}
	return map[string]int{RemovedLogs: n}, nil
}
