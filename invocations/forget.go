package invocations

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/forget.lua
var forgetSource string

var forgetScript = redis.NewScript(forgetSource)

// Forget removes the bot's recent invocations of the given conversations
// (their log lines and errors may name the user), after writing this
// process's queued ones, and reports how many it removed. Daily usage
// totals stay: they hold no identity.
func (r *Recorder) Forget(ctx context.Context, bot, _ string, conversations []string) (int, error) {
	if len(conversations) == 0 {
		return 0, nil
	}
	r.Flush(ctx)
	args := make([]any, len(conversations))
	for i, c := range conversations {
		args[i] = c
	}
	n, err := forgetScript.Run(ctx, r.rdb, []string{r.recentKey(bot)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("forget invocations: %w", err)
	}
	return n, nil
}
