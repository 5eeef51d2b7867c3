package queue

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
)

var (
	forgetScript       = redisx.NewScript(luaFS, "lua/forget.lua")
	forgetParkedScript = redisx.NewScript(luaFS, "lua/forget_parked.lua")
)

// Kinds [Queue.Forget] reports its counts under.
const (
	RemovedDeadLetters = "dead_letters"
	RemovedParked      = "parked"
)

// Forget removes, as erasing a user requires, the bot's dead letters and
// parked events of the user or of the given conversations, and reports how
// many it removed of each ([RemovedDeadLetters], [RemovedParked]). It reads
// every partition's parked conversations of the bot, so it finds the
// user's events in conversations nothing else knows yet (a first message
// that was parked before it ever ran). Events of the user still in the
// streams are left to the engine, which refuses them (they were received
// before the erasure) and the queue drops them ([Discard]).
func (q *Queue) Forget(ctx context.Context, bot, user string, conversations []msg.ConversationKey) (map[string]int, error) {
	args := make([]any, 0, len(conversations)+1)
	args = append(args, user)
	whole := make(map[string]bool, len(conversations))
	for _, c := range conversations {
		args = append(args, string(c))
		whole[convMember(bot, c)] = true
	}
	dead, err := forgetScript.Run(ctx, q.rdb, []string{q.deadKey(bot)}, args...).Int()
	if err != nil {
		return nil, fmt.Errorf("forget dead letters: %w", err)
	}
	parked := 0
	prefix := bot + ":"
	for p := range q.cfg.Partitions {
		var cursor uint64
		for {
			members, next, err := q.rdb.ZScan(ctx, q.dueKey(p), cursor, prefix+"*", 1000).Result()
			if err != nil {
				return nil, fmt.Errorf("forget parked events: %w", err)
			}
			// members alternates members and scores.
			for i := 0; i < len(members); i += 2 {
				all := "0"
				if whole[members[i]] {
					all = "1"
				}
				n, err := forgetParkedScript.Run(ctx, q.rdb, []string{q.parkedKey(p, members[i]), q.parkedNKey(p), q.dueKey(p)},
					user, all, members[i]).Int()
				if err != nil {
					return nil, fmt.Errorf("forget parked events: %w", err)
				}
				parked += n
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return map[string]int{RemovedDeadLetters: dead, RemovedParked: parked}, nil
}
