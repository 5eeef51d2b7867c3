package handoff

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	startScript   = redisx.NewScript(luaFS, "lua/start.lua")
	holdScript    = redisx.NewScript(luaFS, "lua/hold.lua")
	agentScript   = redisx.NewScript(luaFS, "lua/agent.lua")
	releaseScript = redisx.NewScript(luaFS, "lua/release.lua")
)

// Statuses of a handed-off conversation.
const (
	// StatusWaiting: no agent has claimed the conversation yet.
	StatusWaiting = "waiting"
	// StatusActive: an agent claimed it, or wrote in it.
	StatusActive = "active"
)

// Message is the latest message of a handed-off conversation.
type Message struct {
	// Text is what was written.
	Text string `json:"text"`
	// Time is when.
	Time time.Time `json:"time"`
	// From is "user" or "agent".
	From string `json:"from"`
}

// State is a conversation a person owns.
type State struct {
	// Channel and Conversation name the conversation: the channel and the
	// platform's id for it.
	Channel      string `json:"channel"`
	Conversation string `json:"conversation"`
	// User is the user of its latest message.
	User string `json:"user,omitempty"`
	// Queue and Reason are the handoff's.
	Queue  string `json:"queue"`
	Reason string `json:"reason,omitempty"`
	// Intent is the intent whose handler handed over; empty when the
	// management API did.
	Intent string `json:"intent,omitempty"`
	// Since is when the conversation was handed over.
	Since time.Time `json:"since"`
	// Status is waiting or active.
	Status string `json:"status"`
	// Agent is the agent who claimed the conversation or wrote in it last.
	Agent string `json:"agent,omitempty"`
	// LastMessage is the latest message of the user or of an agent since
	// the handoff; nil when there was none.
	LastMessage *Message `json:"last_message,omitempty"`
}

// Key is the conversation's key.
func (s *State) Key() msg.ConversationKey { return msg.KeyOf(s.Channel, s.Conversation) }

// stateOf reads a conversation's hash, as HGETALL answers it.
func stateOf(h map[string]string) *State {
	st := &State{Channel: h["channel"], Conversation: h["conversation"], User: h["user"], Queue: h["queue"],
		Reason: h["reason"], Intent: h["intent"], Since: msTime(h["since"]), Status: h["status"], Agent: h["agent"]}
	if at := msTime(h["last_at"]); !at.IsZero() {
		st.LastMessage = &Message{Text: h["last_text"], Time: at, From: h["last_from"]}
	}
	return st
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Store keeps which conversations a person owns, in Redis. Create it with
// [NewStore].
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a Store over rdb whose keys start with prefix (default
// "parley:").
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: redisx.Prefix(prefix)}
}

// Load registers the scripts with Redis (on every node of a cluster).
func (s *Store) Load(ctx context.Context) error {
	if err := redisx.Preload(ctx, s.rdb, startScript, holdScript, agentScript, releaseScript); err != nil {
		return fmt.Errorf("load handoff scripts: %w", err)
	}
	return nil
}

// The keys of a bot share the hash tag {<bot>}, so that every script stays
// in one Redis Cluster slot; a conversation's hash is named by a pseudonym
// of its key, as sessions names its keys.
func (s *Store) botBase(bot string) string     { return s.prefix + "ho:{" + bot + "}:" }
func (s *Store) openKey(bot string) string     { return s.botBase(bot) + "open" }
func (s *Store) idleKey(bot string) string     { return s.botBase(bot) + "idle" }
func (s *Store) indexKey() string              { return s.prefix + "ho:bots" }
func (s *Store) queueKey(bot, q string) string { return s.botBase(bot) + "q:" + q }
func (s *Store) convKey(bot string, conv msg.ConversationKey) string {
	sum := sha256.Sum256([]byte(bot + "\x00" + string(conv)))
	return s.botBase(bot) + "c:" + hex.EncodeToString(sum[:16])
}

// BotKeyPrefixes returns the prefix of every key the store keeps for bot
// (a bot name holds no "}"). The index of bots with handoffs forgets a
// deleted bot at the next sweep.
func (s *Store) BotKeyPrefixes(bot string) []string { return []string{s.botBase(bot)} }

// Start hands a conversation to a person (the State's fields Channel,
// Conversation, User, Queue, Reason, Intent and Since), with its idle
// deadline. started is false when a person owned it already; nothing
// changes then.
func (s *Store) Start(ctx context.Context, bot string, st *State, deadline time.Time) (started bool, err error) {
	key := st.Key()
	n, err := startScript.Run(ctx, s.rdb, []string{s.convKey(bot, key), s.openKey(bot), s.queueKey(bot, st.Queue), s.idleKey(bot)},
		string(key), st.Channel, st.Conversation, st.User, st.Queue, st.Reason, st.Since.UnixMilli(), deadline.UnixMilli(),
		st.Intent).Int()
	if err != nil {
		return false, fmt.Errorf("hand off %s: %w", key, err)
	}
	if n == 1 {
		if err := s.rdb.SAdd(ctx, s.indexKey(), bot).Err(); err != nil {
			return true, fmt.Errorf("index handoffs of %s: %w", bot, err)
		}
	}
	return n == 1, nil
}

// Hold records a user's message in a conversation and reports whether a
// person owns it (held); first is true for the first message since the
// handoff. A conversation no person owns is left as it is.
func (s *Store) Hold(ctx context.Context, bot string, conv msg.ConversationKey, user, text string, at, deadline time.Time) (held, first bool, err error) {
	c := s.HoldCheck(bot, conv, user, text, at, deadline)
	return c.Result(ctx)
}

// HoldCheck is [Store.Hold] as a command to send in another round trip
// (sessions.Options.Extra), read with Result afterwards.
func (s *Store) HoldCheck(bot string, conv msg.ConversationKey, user, text string, at, deadline time.Time) *Check {
	return &Check{rdb: s.rdb, key: s.convKey(bot, conv), conv: conv,
		hold: &holdArgs{store: s, bot: bot, user: user, text: text, at: at, deadline: deadline}}
}

// holdArgs is what the hold script records of a message, kept until a
// check finds the conversation handed off.
type holdArgs struct {
	store        *Store
	bot          string
	user, text   string
	at, deadline time.Time
}

// PeekCheck tells whether a person owns a conversation, changing nothing,
// as a command to send in another round trip; first is always false.
func (s *Store) PeekCheck(bot string, conv msg.ConversationKey) *Check {
	return &Check{rdb: s.rdb, key: s.convKey(bot, conv), conv: conv}
}

// Check is a handoff check sent in another package's round trip
// (sessions.Options.Extra): Queue adds to a pipeline whether the
// conversation is handed off, a plain EXISTS; Result reads its answer (or
// asks alone when it was not sent or not answered) and, for a conversation
// a person owns, records the message with the hold script. Nearly every
// conversation is not handed off, and for those the check costs Redis a
// plain command rather than a script. Queue may be called several times (a
// begin that waited for the conversation); the last answer counts.
type Check struct {
	rdb  redis.UniversalClient
	key  string    // the conversation's hash
	hold *holdArgs // nil for a peek
	conv msg.ConversationKey

	mu     sync.Mutex
	exists *redis.IntCmd
}

// Queue implements sessions.Extra.
func (c *Check) Queue(ctx context.Context, p redis.Pipeliner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exists = p.Exists(ctx, c.key)
}

// Result reports whether a person owns the conversation, and whether this
// is the first message since the handoff.
func (c *Check) Result(ctx context.Context) (held, first bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exists == nil || c.exists.Err() != nil && ctx.Err() == nil {
		// Not sent, or not answered: ask alone.
		c.exists = c.rdb.Exists(ctx, c.key)
	}
	n, err := c.exists.Result()
	if err != nil {
		return false, false, fmt.Errorf("read the owner of %s: %w", c.conv, err)
	}
	if n == 0 || c.hold == nil {
		return n == 1, false, nil
	}
	// Handed off: record the message. The script checks again, in case
	// the handoff ended since.
	h := c.hold
	res, err := holdScript.Run(ctx, c.rdb, []string{c.key, h.store.idleKey(h.bot)},
		string(c.conv), h.user, h.text, h.at.UnixMilli(), h.deadline.UnixMilli()).Int64Slice()
	if err != nil || len(res) != 2 {
		return false, false, fmt.Errorf("read the owner of %s: %w", c.conv, errors.Join(err, errAnswer(len(res) != 2)))
	}
	return res[0] == 1, res[1] == 1, nil
}

func errAnswer(bad bool) error {
	if bad {
		return errors.New("unexpected answer")
	}
	return nil
}

// errNotOwned is a conversation that no person owns.
var errNotOwned = errors.New("the conversation is not handed off")

// OwnedError is an agent's message to a conversation another agent owns.
type OwnedError struct{ Agent string }

func (e *OwnedError) Error() string { return "agent " + e.Agent + " owns the conversation" }

// Agent records that agent claims a conversation (message false) or
// writes text in it (message true), with its new idle deadline, and
// returns the agent who owned it before ("" when none). It fails with
// [ErrNotHandedOff], or with an [*OwnedError] for a message to a
// conversation another agent owns (a claim takes it over).
func (s *Store) Agent(ctx context.Context, bot string, conv msg.ConversationKey, agent string, message bool, text string,
	at, deadline time.Time) (previous string, err error) {
	mode := "claim"
	if message {
		mode = "message"
	}
	res, err := agentScript.Run(ctx, s.rdb, []string{s.convKey(bot, conv), s.idleKey(bot)},
		string(conv), agent, mode, text, at.UnixMilli(), deadline.UnixMilli()).Slice()
	if err != nil || len(res) != 2 {
		return "", fmt.Errorf("agent in %s: %w", conv, errors.Join(err, errAnswer(len(res) != 2)))
	}
	code, _ := res[0].(int64)
	who, _ := res[1].(string)
	switch code {
	case 0:
		return "", errNotOwned
	case -1:
		return "", &OwnedError{Agent: who}
	}
	return who, nil
}

// Get returns the state of a conversation a person owns; ok is false when
// no person owns it.
func (s *Store) Get(ctx context.Context, bot string, conv msg.ConversationKey) (st *State, ok bool, err error) {
	h, err := s.rdb.HGetAll(ctx, s.convKey(bot, conv)).Result()
	if err != nil {
		return nil, false, fmt.Errorf("read handoff of %s: %w", conv, err)
	}
	if len(h) == 0 {
		return nil, false, nil
	}
	return stateOf(h), true, nil
}

// Release gives a conversation back to the bot and returns its state as it
// was; ok is false when no person owned it. With idleBy set, it releases
// the conversation only when its idle deadline is at or before idleBy.
// Exactly one of concurrent callers (on any replica) gets ok.
func (s *Store) Release(ctx context.Context, bot string, conv msg.ConversationKey, idleBy time.Time) (st *State, ok bool, err error) {
	by := int64(0)
	if !idleBy.IsZero() {
		by = idleBy.UnixMilli()
	}
	queue := ""
	for range 5 {
		res, err := releaseScript.Run(ctx, s.rdb, []string{s.convKey(bot, conv), s.openKey(bot), s.queueKey(bot, queue), s.idleKey(bot)},
			string(conv), queue, by).StringSlice()
		if err != nil {
			return nil, false, fmt.Errorf("release %s: %w", conv, err)
		}
		if len(res) == 0 {
			return nil, false, nil
		}
		if len(res) == 2 && res[0] == "queue" {
			queue = res[1]
			continue
		}
		h := make(map[string]string, len(res)/2)
		for i := 0; i+1 < len(res); i += 2 {
			h[res[i]] = res[i+1]
		}
		return stateOf(h), true, nil
	}
	return nil, false, fmt.Errorf("release %s: its queue keeps changing", conv)
}

// Page is one page of a bot's handed-off conversations.
type Page struct {
	// Handoffs are the conversations, longest waiting first.
	Handoffs []*State `json:"handoffs"`
	// Total counts the conversations of the listing (of the queue, when
	// filtered).
	Total int64 `json:"total"`
	// NextOffset is the offset of the next page; zero on the last one.
	NextOffset int64 `json:"next_offset,omitempty"`
}

// List returns the conversations a person owns, of one queue when queue is
// set, longest waiting first, from offset on, at most limit.
func (s *Store) List(ctx context.Context, bot, queue string, offset, limit int64) (*Page, error) {
	key := s.openKey(bot)
	if queue != "" {
		key = s.queueKey(bot, queue)
	}
	var members *redis.StringSliceCmd
	var total *redis.IntCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		members = p.ZRange(ctx, key, offset, offset+limit-1)
		total = p.ZCard(ctx, key)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list handoffs: %w", err)
	}
	page := &Page{Handoffs: []*State{}, Total: total.Val()}
	if len(members.Val()) == 0 {
		return page, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(members.Val()))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members.Val() {
			cmds[i] = p.HGetAll(ctx, s.convKey(bot, msg.ConversationKey(m)))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list handoffs: %w", err)
	}
	for _, c := range cmds {
		if len(c.Val()) > 0 { // released meanwhile
			page.Handoffs = append(page.Handoffs, stateOf(c.Val()))
		}
	}
	if next := offset + int64(len(members.Val())); next < page.Total {
		page.NextOffset = next
	}
	return page, nil
}

// Idle returns up to limit conversations of bot whose idle deadline is at
// or before now.
func (s *Store) Idle(ctx context.Context, bot string, now time.Time, limit int64) ([]msg.ConversationKey, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.idleKey(bot), Start: "-inf",
		Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: limit}).Result()
	if err != nil {
		return nil, fmt.Errorf("read idle handoffs: %w", err)
	}
	out := make([]msg.ConversationKey, len(ids))
	for i, id := range ids {
		out[i] = msg.ConversationKey(id)
	}
	return out, nil
}

// Bots returns the bots that have (or had) handoffs: the bots a sweep
// looks at.
func (s *Store) Bots(ctx context.Context) ([]string, error) {
	bots, err := s.rdb.SMembers(ctx, s.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list bots with handoffs: %w", err)
	}
	return bots, nil
}

// PurgeBot drops a deleted bot from the index of bots with handoffs and
// reports how many entries it removed.
func (s *Store) PurgeBot(ctx context.Context, bot string) (int64, error) {
	n, err := s.rdb.SRem(ctx, s.indexKey(), bot).Result()
	if err != nil {
		return 0, fmt.Errorf("forget handoffs of %s: %w", bot, err)
	}
	return n, nil
}
