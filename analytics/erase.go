package analytics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Erasure reports what erasing a user removed.
type Erasure struct {
	Bot  string `json:"bot"`
	User string `json:"user"`
	// Conversations counts the conversations whose session, transcript and
	// description were deleted.
	Conversations int `json:"conversations"`
	// FallbackUtterances counts the user's utterances taken back out of the
	// daily fallback lists.
	FallbackUtterances int `json:"fallback_utterances"`
	// Forgotten counts the records removed from other stores, by the names
	// of Config.Forget (e.g. "invocation_logs", "dead_letters").
	Forgotten map[string]int `json:"forgotten,omitempty"`
}

// Forgetter erases what a store keeps of a user and of the user's
// conversations, and reports how many records it removed.
type Forgetter interface {
	Forget(ctx context.Context, bot, user string, conversations []string) (int, error)
}

// Erase deletes everything Parley keeps that identifies a user of a bot:
// the sessions and transcripts of the user's conversations, their
// descriptions and index entries, the user's index, and the user's
// utterances in the fallback lists. Aggregate counters and unique-user
// estimates stay; they hold no identity.
//
// It first writes this replica's buffered turns and waits EraseSettle for
// other replicas to write theirs, so that recent conversations are known.
// Turns recorded up to the erasure that arrive later still are not indexed
// again. A conversation the user shares with others is deleted whole.
func (s *Service) Erase(ctx context.Context, bot, user string) (*Erasure, error) {
	if err := s.Flush(ctx); err != nil {
		return nil, fmt.Errorf("erase user: write buffered turns: %w", err)
	}
	if s.cfg.EraseSettle > 0 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("erase user: %w", ctx.Err())
		case <-time.After(s.cfg.EraseSettle):
		}
	}
	uk := s.keys.user(bot, user)
	res, err := eraseScript.Run(ctx, s.rdb, uk.list(), s.now().UnixMilli(), erasureMarkerTTL.Milliseconds()).Slice()
	if err != nil || len(res) != 2 {
		return nil, fmt.Errorf("erase user index: %w", err)
	}
	convs, refs := stringsOf(res[0]), stringsOf(res[1])

	// The web channel names a user's conversation after the user.
	candidates := convs
	if !slices.Contains(convs, user) {
		candidates = append(slices.Clip(convs), user)
	}
	metas := make([]*redis.SliceCmd, len(candidates))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range candidates {
			metas[i] = p.HMGet(ctx, s.keys.conversation(bot, c), "user", "started", "last")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("erase user: read conversations: %w", err)
	}
	var erase []string
	p := s.pipeline(ctx)
	for i, c := range candidates {
		vals := metas[i].Val()
		owner, _ := vals[0].(string)
		if i >= len(convs) && owner != "" && owner != user {
			continue // someone else's conversation that happens to carry the user's name
		}
		erase = append(erase, c)
		p.p.Del(ctx, s.keys.transcript(bot, c), s.keys.conversation(bot, c))
		started, _ := vals[1].(string)
		last, _ := vals[2].(string)
		if from, to := msTime(started), msTime(last); !from.IsZero() && !to.IsZero() {
			for day := Day.Floor(from); !day.After(to) && to.Sub(day) < 401*24*time.Hour; day = day.Add(24 * time.Hour) {
				p.p.ZRem(ctx, s.keys.conversationIndex(bot, day), c)
			}
		}
		p.maybeExec()
	}
	touched := make(map[string]bool)
	for _, ref := range refs {
		stamp, text, ok := strings.Cut(ref, "\x1f")
		day, err := time.Parse("20060102", stamp)
		if !ok || err != nil {
			continue
		}
		key := s.keys.fallbacks(bot, day)
		p.p.ZIncrBy(ctx, key, -1, text)
		touched[key] = true
	}
	for key := range touched {
		p.p.ZRemRangeByScore(ctx, key, "-inf", "0")
	}
	p.exec()
	if p.err != nil {
		return nil, fmt.Errorf("erase user: %w", p.err)
	}
	if s.cfg.Sessions != nil {
		for _, c := range erase {
			if err := s.cfg.Sessions.Delete(ctx, bot, c); err != nil {
				return nil, fmt.Errorf("erase user: %w", err)
			}
		}
	}
	er := &Erasure{Bot: bot, User: user, Conversations: len(erase), FallbackUtterances: len(refs)}
	for name, f := range s.cfg.Forget {
		n, err := f.Forget(ctx, bot, user, erase)
		if err != nil {
			return nil, fmt.Errorf("erase user: %s: %w", name, err)
		}
		if er.Forgotten == nil {
			er.Forgotten = make(map[string]int, len(s.cfg.Forget))
		}
		er.Forgotten[name] = n
	}
	return er, nil
}

func stringsOf(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
