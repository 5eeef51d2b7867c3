package analytics

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/jsonx"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sessions"
	"github.com/redis/go-redis/v9"
)

// Entry is one turn of a transcript.
type Entry struct {
	Time    time.Time `json:"t"`
	User    string    `json:"user,omitempty"`
	Channel string    `json:"channel,omitempty"`
	Text    string    `json:"text,omitempty"`
	Reply   string    `json:"reply,omitempty"`
	// Rich is the replies' options, buttons, cards and media ([Turn.Rich]).
	Rich       json.RawMessage `json:"rich,omitempty"`
	Sensitive  bool            `json:"sensitive,omitempty"`
	Intent     string          `json:"intent,omitempty"`
	Source     string          `json:"source,omitempty"`
	Confidence float64         `json:"confidence,omitempty"`
	Outcome    string          `json:"outcome"`
	LatencyMS  float64         `json:"latency_ms"`
	HandlerMS  float64         `json:"handler_ms"`
	NewSession bool            `json:"new_conversation,omitempty"`
	EndSession bool            `json:"end_conversation,omitempty"`
	RequestID  string          `json:"request_id,omitempty"`
	// Agent is the agent who wrote Reply, in a conversation handed to a
	// person; such an entry has no user Text.
	Agent string `json:"agent,omitempty"`
}

// entryOf is t as its transcript keeps it: a sensitive turn without its texts.
func entryOf(t *Turn) Entry {
	e := Entry{Time: t.At, User: t.User, Channel: t.Channel, Text: t.Text, Reply: t.Reply, Rich: t.Rich, Intent: t.Intent,
		Source: t.Source, Confidence: round(t.Confidence, 4), Outcome: t.Outcome,
		LatencyMS: round(float64(t.Latency.Microseconds())/1000, 3), HandlerMS: round(float64(t.HandlerTime.Microseconds())/1000, 3),
		NewSession: t.NewConversation, EndSession: t.EndConversation, RequestID: t.RequestID, Agent: t.Agent}
	if t.Sensitive {
		e.Text, e.Reply, e.Rich, e.Sensitive = "", "", nil, true
	}
	return e
}

// appendJSON appends e as JSON, as json.Marshal would write it, without
// reflection: a flush writes one entry per turn.
func (e *Entry) appendJSON(b []byte) []byte {
	b = append(b, `{"t":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, `,"user":`, e.User)
	b = appendField(b, `,"channel":`, e.Channel)
	b = appendField(b, `,"text":`, e.Text)
	b = appendField(b, `,"reply":`, e.Reply)
	if len(e.Rich) > 0 {
		b = append(b, `,"rich":`...)
		b = append(b, e.Rich...)
	}
	if e.Sensitive {
		b = append(b, `,"sensitive":true`...)
	}
	b = appendField(b, `,"intent":`, e.Intent)
	b = appendField(b, `,"source":`, e.Source)
	if e.Confidence != 0 {
		b = strconv.AppendFloat(append(b, `,"confidence":`...), e.Confidence, 'f', -1, 64)
	}
	b = jsonx.AppendString(append(b, `,"outcome":`...), e.Outcome)
	b = strconv.AppendFloat(append(b, `,"latency_ms":`...), e.LatencyMS, 'f', -1, 64)
	b = strconv.AppendFloat(append(b, `,"handler_ms":`...), e.HandlerMS, 'f', -1, 64)
	if e.NewSession {
		b = append(b, `,"new_conversation":true`...)
	}
	if e.EndSession {
		b = append(b, `,"end_conversation":true`...)
	}
	b = appendField(b, `,"request_id":`, e.RequestID)
	b = appendField(b, `,"agent":`, e.Agent)
	return append(b, '}')
}

// appendField appends a string member (its key written as `,"name":`),
// unless v is empty.
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return jsonx.AppendString(append(b, key...), v)
}

// ConversationSummary describes a recorded conversation.
type ConversationSummary struct {
	// Channel and Conversation name the conversation: the channel and the
	// platform's own id, which may repeat on another channel.
	Channel      string `json:"channel"`
	Conversation string `json:"conversation"`
	// User is the user of the conversation's latest recorded turn.
	User    string    `json:"user,omitempty"`
	Started time.Time `json:"started"`
	Last    time.Time `json:"last"`
	// Turns counts the recorded turns (the transcript keeps the latest only).
	Turns int64 `json:"turns"`
	// Sessions counts the times the conversation started afresh (a first
	// turn, or one after the session expired or was ended).
	Sessions int64 `json:"sessions"`
	// Ended is when a handler last ended the conversation.
	Ended *time.Time `json:"ended,omitempty"`
}

// summaryOf describes the conversation with key conv from its hash h.
func summaryOf(conv msg.ConversationKey, h map[string]string) *ConversationSummary {
	if len(h) == 0 {
		return nil
	}
	turns, _ := strconv.ParseInt(h["turns"], 10, 64)
	sessionsN, _ := strconv.ParseInt(h["sessions"], 10, 64)
	channel, id, ok := conv.Split()
	if !ok {
		channel, id = h["channel"], string(conv) // recorded before conversations were keyed by channel
	}
	c := &ConversationSummary{Conversation: id, User: h["user"], Channel: channel,
		Started: msTime(h["started"]), Last: msTime(h["last"]), Turns: turns, Sessions: sessionsN}
	if e := msTime(h["ended"]); !e.IsZero() {
		c.Ended = &e
	}
	return c
}

// Conversation is a conversation's live state and its recorded transcript.
type Conversation struct {
	Bot string `json:"bot"`
	// Channel and Conversation name the conversation: the channel and the
	// platform's own id.
	Channel      string `json:"channel"`
	Conversation string `json:"conversation"`
	// Active is true while the conversation has a session.
	Active bool `json:"active"`
	// State is the session: handler data, the expected intent, turn count.
	State sessions.State `json:"state"`
	// History is the session's recent history.
	History []sessions.HistoryEntry `json:"history"`
	// Summary describes the recorded conversation; nil when nothing is recorded.
	Summary *ConversationSummary `json:"summary"`
	// Transcript holds the recorded turns, oldest first.
	Transcript []Entry `json:"transcript"`
}

// Describe returns a conversation's session and transcript, for the
// management API. A conversation that has neither is not an error: it is
// inactive and empty.
func (s *Service) Describe(ctx context.Context, bot string, conv msg.ConversationKey) (any, error) {
	channel, id, _ := conv.Split()
	c := &Conversation{Bot: bot, Channel: channel, Conversation: id, History: []sessions.HistoryEntry{}, Transcript: []Entry{}}
	if s.cfg.Sessions != nil {
		st, ok, err := s.cfg.Sessions.Get(ctx, bot, conv)
		if err != nil {
			return nil, err
		}
		c.Active, c.State = ok, st
		if c.History, err = s.cfg.Sessions.History(ctx, bot, conv); err != nil {
			return nil, err
		}
	}
	var meta *redis.MapStringStringCmd
	var entries *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HGetAll(ctx, s.keys.conversation(bot, string(conv)))
		entries = p.LRange(ctx, s.keys.transcript(bot, string(conv)), 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read transcript: %w", err)
	}
	c.Summary = summaryOf(conv, meta.Val())
	for _, raw := range entries.Val() {
		var e Entry
		if json.Unmarshal([]byte(raw), &e) == nil {
			c.Transcript = append(c.Transcript, e)
		}
	}
	// Replicas flush independently: order by time, not by arrival.
	slices.SortStableFunc(c.Transcript, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	return c, nil
}

// ConversationQuery asks for the conversations active in a range.
type ConversationQuery struct {
	// User keeps only this user's conversations.
	User string
	// From and To bound the conversations' activity (default: the last 7 days).
	From, To time.Time
	// Limit bounds the answer (default 50, at most 1000).
	Limit int
	// Before, when set, keeps only the conversations last active before
	// it: the next page of a list is the one before its oldest.
	Before time.Time
}

// ParseConversationQuery reads user, from, to, before and limit.
func ParseConversationQuery(v url.Values, now time.Time) (ConversationQuery, error) {
	q := ConversationQuery{User: v.Get("user")}
	var err error
	if q.From, q.To, err = timeRange(v, now, 7*24*time.Hour); err != nil {
		return q, err
	}
	if s := v.Get("before"); s != "" {
		if q.Before, err = ParseTime(s, now); err != nil {
			return q, err
		}
	}
	q.Limit, err = limit(v, 50, 1000)
	return q, err
}

func limit(v url.Values, def, most int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, badQuery("limit must be between 1 and %d", most)
	}
	return n, nil
}

// ConversationList answers a [ConversationQuery], most recently active first.
type ConversationList struct {
	From          time.Time              `json:"from"`
	To            time.Time              `json:"to"`
	Conversations []*ConversationSummary `json:"conversations"`
}

// Conversations lists recorded conversations with a turn in the range.
// Conversations of bots that keep no transcripts are not listed.
func (s *Service) Conversations(ctx context.Context, bot string, q ConversationQuery) (*ConversationList, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	var ids []string
	if q.User != "" {
		members, err := s.rdb.SMembers(ctx, s.keys.user(bot, q.User).conversations).Result()
		if err != nil {
			return nil, fmt.Errorf("list conversations: %w", err)
		}
		ids = members
	} else {
		var err error
		if ids, err = s.activeConversations(ctx, bot, q); err != nil {
			return nil, err
		}
	}
	metas := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			metas[i] = p.HGetAll(ctx, s.keys.conversation(bot, id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	out := &ConversationList{From: q.From, To: q.To, Conversations: []*ConversationSummary{}}
	for i, id := range ids {
		c := summaryOf(msg.ConversationKey(id), metas[i].Val())
		if c == nil || c.Last.Before(q.From) || !c.Started.Before(q.To) || (!q.Before.IsZero() && !c.Last.Before(q.Before)) {
			continue
		}
		out.Conversations = append(out.Conversations, c)
	}
	slices.SortFunc(out.Conversations, func(a, b *ConversationSummary) int {
		return cmp.Or(b.Last.Compare(a.Last), strings.Compare(a.Conversation, b.Conversation))
	})
	if len(out.Conversations) > q.Limit {
		out.Conversations = out.Conversations[:q.Limit]
	}
	return out, nil
}

// activeConversations reads the daily indexes of the range, newest first,
// and returns up to q.Limit conversations with their latest activity in it.
func (s *Service) activeConversations(ctx context.Context, bot string, q ConversationQuery) ([]string, error) {
	end := q.To
	if !q.Before.IsZero() && q.Before.Before(end) {
		end = q.Before
	}
	var cmds []*redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for day := Day.Floor(end); !day.Before(Day.Floor(q.From)); day = day.Add(-24 * time.Hour) {
			cmds = append(cmds, p.ZRevRangeByScoreWithScores(ctx, s.keys.conversationIndex(bot, day), &redis.ZRangeBy{
				Max: strconv.FormatInt(end.UnixMilli()-1, 10), Min: strconv.FormatInt(q.From.UnixMilli(), 10),
				Count: int64(q.Limit)}))
			if len(cmds) > 400 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	last := make(map[string]float64)
	for _, c := range cmds {
		for _, z := range c.Val() {
			id := z.Member.(string)
			last[id] = max(last[id], z.Score)
		}
	}
	ids := make([]string, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(cmp.Compare(last[b], last[a]), strings.Compare(a, b)) })
	if len(ids) > q.Limit {
		ids = ids[:q.Limit]
	}
	return ids, nil
}

// FallbackQuery asks for the most frequent unmatched utterances.
type FallbackQuery struct {
	// From and To bound the range; it is widened to whole UTC days
	// (default: the last 7 days).
	From, To time.Time
	// Limit bounds the answer (default 20, at most 1000).
	Limit int
}

// ParseFallbackQuery reads from, to and limit.
func ParseFallbackQuery(v url.Values, now time.Time) (FallbackQuery, error) {
	var q FallbackQuery
	var err error
	if q.From, q.To, err = timeRange(v, now, 7*24*time.Hour); err != nil {
		return q, err
	}
	q.Limit, err = limit(v, 20, 1000)
	return q, err
}

// Utterance is a fallback utterance (lower-cased, spaces folded) and how
// often users sent it.
type Utterance struct {
	Text  string `json:"text"`
	Count int64  `json:"count"`
}

// FallbackReport answers a [FallbackQuery].
type FallbackReport struct {
	From       time.Time   `json:"from"`
	To         time.Time   `json:"to"`
	Utterances []Utterance `json:"utterances"`
}

// fallbackDepth is how far down each day's list a range query reads.
const fallbackDepth = 1000

// Fallbacks returns the most frequent utterances that fell back, summed
// over the days of the range from each day's top list.
func (s *Service) Fallbacks(ctx context.Context, bot string, q FallbackQuery) (*FallbackReport, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	from, to := Day.Floor(q.From), Day.Ceil(q.To)
	if to.Sub(from) > 400*24*time.Hour {
		return nil, badQuery("the fallback range is limited to 400 days")
	}
	var cmds []*redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
			cmds = append(cmds, p.ZRevRangeWithScores(ctx, s.keys.fallbacks(bot, day), 0, fallbackDepth-1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read fallback utterances: %w", err)
	}
	counts := make(map[string]int64)
	for _, c := range cmds {
		for _, z := range c.Val() {
			if z.Score > 0 {
				counts[z.Member.(string)] += int64(z.Score)
			}
		}
	}
	out := &FallbackReport{From: from, To: to, Utterances: make([]Utterance, 0, len(counts))}
	for text, n := range counts {
		out.Utterances = append(out.Utterances, Utterance{Text: text, Count: n})
	}
	slices.SortFunc(out.Utterances, func(a, b Utterance) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Text, b.Text))
	})
	if len(out.Utterances) > q.Limit {
		out.Utterances = out.Utterances[:q.Limit]
	}
	return out, nil
}
