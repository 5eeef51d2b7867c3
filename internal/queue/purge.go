package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/redis/go-redis/v9"
)

var purgeParkedScript = redisx.NewScript(luaFS, "lua/purge_parked.lua")

// BotKeyPrefixes returns the prefixes of the queue's keys of bot that a
// sweep may delete: its dead letters and, in every partition, the markers
// of its deliveries seen and replies sent. Every key that starts with one
// of them is the bot's (a bot name holds no ":" or "}"). Parked entries and
// queued events are removed by [Queue.PurgeBot], which keeps the
// partitions' counts right.
func (q *Queue) BotKeyPrefixes(bot string) []string {
	out := []string{q.deadKey(bot)}
	for p := range q.cfg.Partitions {
		out = append(out, q.tag(p)+":seen:"+bot+":", q.tag(p)+":sent:"+bot+":")
	}
	return out
}

// PurgeBot removes a deleted bot's events from every partition: its parked
// entries (with their conversations' due times) and the events of it still
// waiting in the streams. It reports how many it removed. Events being run
// meanwhile find the bot gone and are dropped (see [Discard]).
func (q *Queue) PurgeBot(ctx context.Context, bot string) (int64, error) {
	var removed int64
	for p := range q.cfg.Partitions {
		n, err := q.purgeParked(ctx, p, bot)
		removed += n
		if err != nil {
			return removed, err
		}
		n, err = q.purgeStream(ctx, p, bot)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// purgeParked removes the parked entries of bot's conversations in partition p.
func (q *Queue) purgeParked(ctx context.Context, p int, bot string) (int64, error) {
	var members []string
	var cursor uint64
	for {
		kv, next, err := q.rdb.ZScan(ctx, q.dueKey(p), cursor, bot+":*", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("read parked conversations: %w", err)
		}
		for i := 0; i < len(kv); i += 2 { // members and scores alternate
			members = append(members, kv[i])
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	var removed int64
	for _, m := range members {
		n, err := purgeParkedScript.Run(ctx, q.rdb, []string{q.parkedKey(p, m), q.dueKey(p), q.parkedNKey(p)}, m).Int64()
		if err != nil {
			return removed, fmt.Errorf("remove parked entries: %w", err)
		}
		removed += n
	}
	return removed, nil
}

// purgeStream deletes the entries of bot from partition p's stream, reading
// it in batches.
func (q *Queue) purgeStream(ctx context.Context, p int, bot string) (int64, error) {
	key := q.streamKey(p)
	var removed int64
	start := "-"
	for {
		msgs, err := q.rdb.XRangeN(ctx, key, start, "+", 500).Result()
		if err != nil {
			return removed, fmt.Errorf("read queued events: %w", err)
		}
		var ids []string
		for _, m := range msgs {
			raw, _ := m.Values["event"].(string)
			var ev struct {
				Bot string `json:"bot"`
			}
			if json.Unmarshal([]byte(raw), &ev) == nil && ev.Bot == bot {
				ids = append(ids, m.ID)
			}
		}
		if len(ids) > 0 {
			_, err := q.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
				pl.XDel(ctx, key, ids...)
				pl.XAck(ctx, key, group, ids...)
				return nil
			})
			if err != nil && !redis.HasErrorPrefix(err, "NOGROUP") { // no worker has read the stream yet
				return removed, fmt.Errorf("remove queued events: %w", err)
			}
			removed += int64(len(ids))
		}
		if len(msgs) < 500 {
			return removed, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}
