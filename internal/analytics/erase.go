package analytics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// Kinds of records an [Erasure] counts, besides those of Config.Forget.
const (
	RemovedSessions    = "sessions"             // conversation states
	RemovedHistories   = "histories"            // conversations' recent histories
	RemovedAnswers     = "remembered_answers"   // answers kept for retried messages
	RemovedTranscripts = "transcripts"          // recorded transcripts
	RemovedSummaries   = "conversation_records" // descriptions of recorded conversations
	RemovedFallbacks   = "fallback_utterances"  // the user's utterances in the fallback lists
	RemovedUserIndexes = "user_indexes"         // the user's index entries (analytics, sessions)
)

// Erasure is the receipt of erasing a user: what was removed, per kind.
type Erasure struct {
	Bot  string `json:"bot"`
	User string `json:"user"`
	// Conversations lists the conversations erased (whole: a conversation
	// the user shares with others goes too), as channel and platform id.
	Conversations []ErasedConversation `json:"conversations"`
	// Removed counts the records removed per kind: sessions, histories,
	// remembered_answers, transcripts, conversation_records,
	// fallback_utterances, user_indexes, and those of Config.Forget
	// (invocation_logs, parked, dead_letters). Every kind is listed, 0
	// included.
	Removed map[string]int `json:"removed"`
}

// ErasedConversation names an erased conversation.
type ErasedConversation struct {
	Channel      string `json:"channel"`
	Conversation string `json:"conversation"`
}

// Forgetter erases what a store keeps of a user and of the user's
// conversations, and reports how many records it removed per kind.
type Forgetter interface {
	Forget(ctx context.Context, bot, user string, conversations []msg.ConversationKey) (map[string]int, error)
}

// Erase deletes everything Parley keeps that identifies a user of a bot:
// the user's conversations on every channel (found in the sessions' user
// index, which is kept whether analytics record or not, and in analytics'
// own) with their sessions, histories, remembered answers, transcripts,
// descriptions and index entries; the user's indexes and fallback
// utterances; and what the stores of Config.Forget keep (invocation logs,
// parked messages, dead letters). Aggregate counters and unique-user
// estimates stay; they hold no identity.
//
// A message of the user, or of one of the conversations, received before
// the erasure and still in flight (running, queued, parked, retried) is
// dropped and recreates nothing: the erasure leaves markers, holding only
// its time, that refuse it. The erasure then waits EraseSettle for turns
// running on other replicas to end and their buffers to be written, and
// sweeps once more.
func (s *Service) Erase(ctx context.Context, bot, user string) (*Erasure, error) {
	if err := s.Flush(ctx); err != nil {
		return nil, fmt.Errorf("erase user: write buffered turns: %w", err)
	}
	er := &Erasure{Bot: bot, User: user, Removed: map[string]int{}}
	for _, kind := range []string{RemovedSessions, RemovedHistories, RemovedAnswers, RemovedTranscripts,
		RemovedSummaries, RemovedFallbacks, RemovedUserIndexes} {
		er.Removed[kind] = 0
	}
	erased := map[msg.ConversationKey]bool{}
	at := s.now()
	s.flushMu.Lock()
	s.known.forget([2]string{bot, user}) // the other replicas see the index change
	s.flushMu.Unlock()
	if err := s.eraseOnce(ctx, bot, user, at, er, erased); err != nil {
		return nil, err
	}
	if s.cfg.EraseSettle > 0 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("erase user: %w", ctx.Err())
		case <-time.After(s.cfg.EraseSettle):
		}
		if err := s.Flush(ctx); err != nil {
			return nil, fmt.Errorf("erase user: write buffered turns: %w", err)
		}
		if err := s.eraseOnce(ctx, bot, user, at, er, erased); err != nil {
			return nil, err
		}
	}
	convs := slices.Sorted(maps.Keys(erased))
	for _, c := range convs {
		ch, id, ok := c.Split()
		if !ok {
			id = string(c) // recorded before conversations were keyed by channel
		}
		er.Conversations = append(er.Conversations, ErasedConversation{Channel: ch, Conversation: id})
	}
	if er.Conversations == nil {
		er.Conversations = []ErasedConversation{}
	}
	for name, f := range s.cfg.Forget {
		counts, err := f.Forget(ctx, bot, user, convs)
		if err != nil {
			return nil, fmt.Errorf("erase user: %s: %w", name, err)
		}
		for kind, n := range counts {
			er.Removed[kind] += n
		}
	}
	return er, nil
}

// eraseOnce marks the user erased, reads and deletes the user's indexes,
// and erases every conversation they name, adding to er and erased.
func (s *Service) eraseOnce(ctx context.Context, bot, user string, at time.Time, er *Erasure, erased map[msg.ConversationKey]bool) error {
	uk := s.keys.user(bot, user)
	res, err := eraseScript.Run(ctx, s.rdb, uk.list(), at.UnixMilli(), erasureMarkerTTL.Milliseconds()).Slice()
	if err != nil || len(res) != 2 {
		return fmt.Errorf("erase user index: %w", err)
	}
	var convs []msg.ConversationKey
	for _, c := range stringsOf(res[0]) {
		convs = append(convs, msg.ConversationKey(c))
	}
	refs := stringsOf(res[1])
	if len(convs) > 0 || len(refs) > 0 {
		er.Removed[RemovedUserIndexes]++
	}
	if s.cfg.Sessions != nil {
		indexed, err := s.cfg.Sessions.ForgetUser(ctx, bot, user, at)
		if err != nil {
			return fmt.Errorf("erase user: %w", err)
		}
		if len(indexed) > 0 {
			er.Removed[RemovedUserIndexes]++
		}
		convs = append(convs, indexed...)
	}
	slices.Sort(convs)
	convs = slices.Compact(convs)
	// The sessions first: a turn running in one of them commits nothing.
	if s.cfg.Sessions != nil {
		for _, c := range convs {
			n, err := s.cfg.Sessions.Erase(ctx, bot, c, at)
			if err != nil {
				return fmt.Errorf("erase user: %w", err)
			}
			er.Removed[RemovedSessions] += n.Sessions
			er.Removed[RemovedHistories] += n.Histories
			er.Removed[RemovedAnswers] += n.Answers
		}
	}

	metas := make([]*redis.SliceCmd, len(convs))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range convs {
			metas[i] = p.HMGet(ctx, s.keys.conversation(bot, string(c)), "started", "last")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("erase user: read conversations: %w", err)
	}
	p := s.pipeline(ctx)
	dels := make([]*redis.IntCmd, 0, 2*len(convs))
	for i, c := range convs {
		dels = append(dels, p.p.Del(ctx, s.keys.transcript(bot, string(c))), p.p.Del(ctx, s.keys.conversation(bot, string(c))))
		weight := 2
		vals := metas[i].Val()
		started, _ := vals[0].(string)
		last, _ := vals[1].(string)
		if from, to := msTime(started), msTime(last); !from.IsZero() && !to.IsZero() {
			for day := Day.Floor(from); !day.After(to) && to.Sub(day) < 401*24*time.Hour; day = day.Add(24 * time.Hour) {
				p.p.ZRem(ctx, s.keys.conversationIndex(bot, day), string(c))
				weight++
			}
		}
		p.add(weight)
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
		return fmt.Errorf("erase user: %w", p.err)
	}
	for i, d := range dels {
		kind := RemovedTranscripts
		if i%2 == 1 {
			kind = RemovedSummaries
		}
		er.Removed[kind] += int(d.Val())
	}
	er.Removed[RemovedFallbacks] += len(refs)
	for _, c := range convs {
		erased[c] = true
	}
	return nil
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
