package sessions

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/begin.lua
	beginSource string
	//go:embed lua/commit.lua
	commitSource string
	//go:embed lua/release.lua
	releaseSource string
	//go:embed lua/delete.lua
	deleteSource string

	beginScript   = redis.NewScript(beginSource)
	commitScript  = redis.NewScript(commitSource)
	releaseScript = redis.NewScript(releaseSource)
	deleteScript  = redis.NewScript(deleteSource)
)

// Defaults for [Options] fields left zero.
const (
	DefaultTTL        = 30 * time.Minute
	DefaultHistory    = 20
	DefaultLease      = 10 * time.Second
	DefaultAnswerTTL  = 24 * time.Hour
	DefaultKeyPrefix  = "parley:"
	maxLockBackoff    = 25 * time.Millisecond
	initialLockBackof = time.Millisecond
)

// ErrLeaseLost means the conversation lock expired before the turn committed;
// another turn may have run meanwhile, so this turn's changes were dropped.
var ErrLeaseLost = errors.New("sessions: conversation lock expired before commit")

// Config configures a [Store].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
}

// Store reads and writes conversation state. Create it with [New].
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	local  keyedQueue
}

// New returns a Store over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	return &Store{rdb: rdb, prefix: cfg.KeyPrefix, local: keyedQueue{m: make(map[string]*queueEntry)}}
}

// Load registers the store's scripts with Redis so the first turn does not pay
// for a NOSCRIPT round trip. On a cluster it loads them on every shard.
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range []*redis.Script{beginScript, commitScript, releaseScript, deleteScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load session scripts: %w", err)
		}
	}
	return nil
}

// State is what a conversation remembers between turns.
type State struct {
	// Data is the handler-visible session table.
	Data map[string]any `json:"data"`
	// Expect is the intent the next turn is routed to, if any.
	Expect string `json:"expect,omitempty"`
	// Versions pins, per intent, the handler version that answered the
	// conversation's first turn of that intent, so it keeps answering until
	// the conversation ends (while the bot still serves it).
	Versions map[string]int `json:"versions,omitempty"`
	// Turns counts the turns committed in this conversation.
	Turns int `json:"turns"`
	// Started is when the conversation's first turn began.
	Started time.Time `json:"started"`
	// Updated is when the last turn committed.
	Updated time.Time `json:"updated"`
}

// Options tune one turn.
type Options struct {
	// MessageID, when set, makes the turn idempotent: a second Begin with the
	// same id after a commit returns the remembered answer in Turn.Duplicate.
	MessageID string
	// Lease bounds how long the turn may hold the conversation lock (default 10s).
	// Set it above the handler timeout.
	Lease time.Duration
}

// Turn is one conversation turn between Begin and Commit or Release.
type Turn struct {
	// State is the loaded state; a new conversation has empty Data and Turns 0.
	State State
	// Duplicate is the answer remembered for an already processed message.
	// When it is set the turn holds no lock and must not be committed.
	Duplicate []byte

	keys  conversationKeys
	token string
	done  func()
}

// New reports whether the conversation had no state before this turn.
func (t *Turn) New() bool { return t.State.Turns == 0 }

type conversationKeys struct {
	lock, state, history, answers, message string
}

// BotKeyPrefixes returns the prefixes of the keys of bot's conversations
// (state, history, remembered answers, locks, message markers): every key
// that starts with one of them is the bot's (a bot name holds no ":").
func (s *Store) BotKeyPrefixes(bot string) []string {
	return []string{s.prefix + "{" + bot + ":"}
}

func (s *Store) keys(bot, conversation, messageID string) conversationKeys {
	base := s.prefix + "{" + bot + ":" + conversation + "}:"
	k := conversationKeys{lock: base + "lock", state: base + "state", history: base + "hist", answers: base + "answers"}
	if messageID != "" {
		k.message = base + "msg:" + messageID
	}
	return k
}

// Begin starts a turn: it waits for the conversation's earlier turns to
// finish (until ctx ends), takes the lock and loads the state.
func (s *Store) Begin(ctx context.Context, bot, conversation string, opts Options) (*Turn, error) {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	k := s.keys(bot, conversation, opts.MessageID)
	done, err := s.local.acquire(ctx, k.lock)
	if err != nil {
		return nil, fmt.Errorf("wait for conversation %s: %w", conversation, err)
	}
	token := uuid.NewString()
	keys := []string{k.lock, k.state}
	if k.message != "" {
		keys = append(keys, k.message)
	}
	backoff := initialLockBackof
	for {
		res, err := beginScript.Run(ctx, s.rdb, keys, token, opts.Lease.Milliseconds()).Slice()
		if err != nil {
			done()
			return nil, fmt.Errorf("begin turn: %w", err)
		}
		status, _ := res[0].(int64)
		switch status {
		case 2:
			done()
			answer, _ := res[1].(string)
			return &Turn{Duplicate: []byte(answer)}, nil
		case 1:
			t := &Turn{keys: k, token: token, done: done}
			if raw, ok := res[1].(string); ok {
				if err := json.Unmarshal([]byte(raw), &t.State); err != nil {
					s.release(ctx, t)
					return nil, fmt.Errorf("decode session of %s: %w", conversation, err)
				}
			}
			if t.State.Data == nil {
				t.State.Data = make(map[string]any)
			}
			return t, nil
		}
		// Another replica holds the lock: back off with jitter and retry.
		wait := backoff/2 + rand.N(backoff)
		if backoff < maxLockBackoff {
			backoff *= 2
		}
		select {
		case <-ctx.Done():
			done()
			return nil, fmt.Errorf("wait for conversation %s: %w", conversation, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// HistoryEntry is one turn as kept in the conversation's recent history.
type HistoryEntry struct {
	Time    time.Time `json:"t"`
	Text    string    `json:"text,omitempty"`
	Intent  string    `json:"intent,omitempty"`
	Reply   string    `json:"reply,omitempty"`
	Outcome string    `json:"outcome,omitempty"`
}

// Commit describes what a successful turn saves.
type Commit struct {
	// State replaces the conversation state.
	State State
	// End clears the state: the next turn starts a new conversation.
	End bool
	// TTL is the sliding expiry of state and history (default 30 min).
	TTL time.Duration
	// History is appended to the recent history when set.
	History *HistoryEntry
	// HistoryLength bounds the recent history (default 20).
	HistoryLength int
	// Answer is remembered for the turn's message id, so a retried webhook is
	// answered the same way without running the handler again.
	Answer []byte
	// AnswerTTL is how long the answer is remembered (default 24h).
	AnswerTTL time.Duration
}

// Commit saves the turn and releases the conversation. It fails with
// [ErrLeaseLost] if the lock expired meanwhile; then nothing was written.
func (s *Store) Commit(ctx context.Context, t *Turn, c Commit) error {
	defer t.done()
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.HistoryLength <= 0 {
		c.HistoryLength = DefaultHistory
	}
	if c.AnswerTTL <= 0 {
		c.AnswerTTL = DefaultAnswerTTL
	}
	var state, entry []byte
	if !c.End {
		now := time.Now().UTC()
		if c.State.Started.IsZero() {
			c.State.Started = now
		}
		c.State.Updated = now
		var err error
		if state, err = json.Marshal(c.State); err != nil {
			s.release(ctx, t)
			return fmt.Errorf("encode session: %w", err)
		}
	}
	if c.History != nil {
		var err error
		if entry, err = json.Marshal(c.History); err != nil {
			s.release(ctx, t)
			return fmt.Errorf("encode history: %w", err)
		}
	}
	keys := []string{t.keys.lock, t.keys.state, t.keys.history, t.keys.answers}
	if t.keys.message != "" {
		keys = append(keys, t.keys.message)
	}
	err := commitScript.Run(ctx, s.rdb, keys, t.token, state, c.TTL.Milliseconds(), entry,
		c.HistoryLength, c.Answer, c.AnswerTTL.Milliseconds(), time.Now().UnixMilli()).Err()
	if err != nil {
		if strings.HasPrefix(err.Error(), "LEASELOST") {
			return ErrLeaseLost
		}
		return fmt.Errorf("commit turn: %w", err)
	}
	return nil
}

// Release ends a failed turn: the lock is freed and nothing else changes.
func (s *Store) Release(ctx context.Context, t *Turn) error {
	defer t.done()
	return s.release(ctx, t)
}

func (s *Store) release(ctx context.Context, t *Turn) error {
	// Release even when the turn's own context is already over, or the
	// conversation would stay blocked until the lease runs out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := releaseScript.Run(ctx, s.rdb, []string{t.keys.lock}, t.token).Err(); err != nil {
		return fmt.Errorf("release conversation lock: %w", err)
	}
	return nil
}

// Get returns a conversation's state without locking it; ok is false when the
// conversation has none.
func (s *Store) Get(ctx context.Context, bot, conversation string) (st State, ok bool, err error) {
	raw, err := s.rdb.Get(ctx, s.keys(bot, conversation, "").state).Bytes()
	if errors.Is(err, redis.Nil) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("get session: %w", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return State{}, false, fmt.Errorf("decode session: %w", err)
	}
	return st, true, nil
}

// History returns the conversation's recent turns, newest first.
func (s *Store) History(ctx context.Context, bot, conversation string) ([]HistoryEntry, error) {
	raws, err := s.rdb.LRange(ctx, s.keys(bot, conversation, "").history, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	out := make([]HistoryEntry, 0, len(raws))
	for _, raw := range raws {
		var e HistoryEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("decode history: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Delete removes a conversation's state, recent history, lock and the
// answers remembered for its messages, as erasing a user requires. A turn
// still running in it loses its lock and commits nothing; a message retried
// afterwards is processed as new.
func (s *Store) Delete(ctx context.Context, bot, conversation string) error {
	k := s.keys(bot, conversation, "")
	if err := deleteScript.Run(ctx, s.rdb, []string{k.lock, k.state, k.history, k.answers}).Err(); err != nil {
		return fmt.Errorf("delete conversation: %w", err)
	}
	return nil
}
