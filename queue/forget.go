package queue

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/forget.lua
var forgetSource string

var forgetScript = redis.NewScript(forgetSource)

// Forget removes the bot's dead letters of the user or of the given
// conversations, as erasing a user requires, and reports how many it removed.
func (q *Queue) Forget(ctx context.Context, bot, user string, conversations []string) (int, error) {
	args := make([]any, 0, len(conversations)+1)
	args = append(args, user)
	for _, c := range conversations {
		args = append(args, c)
	}
	n, err := forgetScript.Run(ctx, q.rdb, []string{q.deadKey(bot)}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("forget dead letters: %w", err)
	}
	return n, nil
}
