package sessions

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	commitScript     = redisx.NewScript(luaFS, "lua/commit.lua")
	releaseScript    = redisx.NewScript(luaFS, "lua/release.lua")
	eraseScript      = redisx.NewScript(luaFS, "lua/erase.lua")
	indexScript      = redisx.NewScript(luaFS, "lua/index.lua")
	forgetUserScript = redisx.NewScript(luaFS, "lua/forget_user.lua")
	allScripts       = []*redisx.Script{commitScript, releaseScript, eraseScript, indexScript, forgetUserScript}
)

// Defaults for [Options] fields left zero.
const (
	DefaultTTL       = 30 * time.Minute
	DefaultHistory   = 20
	DefaultLease     = 10 * time.Second
	DefaultAnswerTTL = 24 * time.Hour
	DefaultKeyPrefix = redisx.DefaultPrefix
	// DefaultUserIndexTTL is how long a user's conversations stay indexed
	// after the user's last turn, for erasure (longer than the invocation
	// logs' 30 days).
	DefaultUserIndexTTL = 35 * 24 * time.Hour
	// DefaultErasureTTL is how long an erased conversation or user refuses
	// messages received before the erasure.
	DefaultErasureTTL = 24 * time.Hour
	maxLockBackoff    = 25 * time.Millisecond
	initialLockBackof = time.Millisecond
)

// ErrLeaseLost means the conversation lock expired before the turn committed;
// another turn may have run meanwhile, so this turn's changes were dropped.
var ErrLeaseLost = errors.New("sessions: conversation lock expired before commit")

// ErrErased means the conversation (or the user) was erased after the
// message was received: the message is dropped, so that nothing in flight
// recreates erased data. Retrying cannot help.
var ErrErased error = &apierr.Error{Status: http.StatusGone, Code: "erased",
	Message: "the conversation or its user was erased after this message was received",
	Err:     errors.New("sessions: the conversation was erased after this message was received")}

// Config configures a [Store].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// UserIndexTTL is how long a user's conversations stay indexed after
	// the user's last turn, so that erasing the user finds them (default
	// 35 days). Set it at least as long as anything keyed by conversation
	// is kept (invocation logs, transcripts).
	UserIndexTTL time.Duration
	// ErasureTTL is how long an erasure refuses messages received before
	// it (default 24h): a message queued, parked or retried that long after
	// is processed as new.
	ErasureTTL time.Duration
}

// Store reads and writes conversation state. Create it with [New].
type Store struct {
	rdb    redis.UniversalClient
	batch  *redisx.Batcher // the turn's two round trips, batched with other turns'
	cfg    Config
	prefix string
	local  keyedQueue
}

// New returns a Store over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.UserIndexTTL <= 0 {
		cfg.UserIndexTTL = DefaultUserIndexTTL
	}
	if cfg.ErasureTTL <= 0 {
		cfg.ErasureTTL = DefaultErasureTTL
	}
	return &Store{rdb: rdb, batch: redisx.NewBatcher(rdb), cfg: cfg, prefix: cfg.KeyPrefix, local: keyedQueue{m: make(map[string]*queueEntry)}}
}

// Load registers the store's scripts with Redis so the first turn does not pay
// for a NOSCRIPT round trip. On a cluster it loads them on every shard.
func (s *Store) Load(ctx context.Context) error {
	if err := redisx.Preload(ctx, s.rdb, allScripts...); err != nil {
		return fmt.Errorf("load session scripts: %w", err)
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
	// Choices are the payloads of the buttons the last turn offered, in
	// the order channels without buttons number them (msg.Choices), so that
	// a typed number or a short button reference on the next turn can be
	// resolved to its payload (msg.ResolveChoice).
	Choices []string `json:"choices,omitempty"`
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
	// User, when set, is the sender: the conversation joins the user's
	// index (in the same round trip), which erasing the user reads.
	User string
	// Received is when Parley received the message (default now). A
	// message received before its conversation or user was erased is
	// refused with [ErrErased].
	Received time.Time
	// Extra, when set, is sent in Begin's round trip beside the begin
	// script (the handoff check); see [Extra].
	Extra Extra
}

// Extra is one more command that [Store.Begin] sends in its round trip, so
// that a check the turn needs costs no round trip of its own. Its keys may
// be in any slot. Begin queues it on each try (a try finds the
// conversation busy, or Redis without the scripts); its answers and errors
// are its own: Begin neither reads them nor fails with them.
type Extra interface {
	// Queue adds the command to p.
	Queue(ctx context.Context, p redis.Pipeliner)
}

// Turn is one conversation turn between Begin and Commit or Release.
type Turn struct {
	// State is the loaded state; a new conversation has empty Data and Turns 0.
	State State
	// Duplicate is the answer remembered for an already processed message.
	// When it is set the turn holds no lock and must not be committed.
	Duplicate []byte

	keys     conversationKeys
	token    string
	received int64 // when the message was received, ms since the epoch
	held     heldKey
	released atomic.Bool
}

// done gives the conversation back to the process's next turn, once.
func (t *Turn) done() {
	if t.released.CompareAndSwap(false, true) {
		t.held.release()
	}
}

// New reports whether the conversation had no state before this turn.
func (t *Turn) New() bool { return t.State.Turns == 0 }

type conversationKeys struct {
	lock, state, history, answers, erased, message string
}

// BotKeyPrefixes returns the prefixes of the keys of bot's conversations
// (state, history, remembered answers, locks, message markers, erasure
// markers) and of its users' indexes: every key that starts with one of
// them is the bot's (a bot name holds no ":").
func (s *Store) BotKeyPrefixes(bot string) []string {
	return []string{s.prefix + "{" + bot + ":", s.prefix + "users:{" + bot + ":"}
}

// keys names a conversation's keys. They share the hash tag
// {<bot>:<hash>}, where the hash is of the bot and the conversation key:
// each script stays in one Redis Cluster slot, key names have one shape
// whatever the platform's ids hold, and they name no one (so the erasure
// marker left behind holds no identity).
func (s *Store) keys(bot string, conv msg.ConversationKey, messageID string) conversationKeys {
	var buf [128]byte
	base := s.base(buf[:0], "{", bot, string(conv))
	var k [6]string
	if messageID == "" {
		joinKeys(base, k[:5], "lock", "state", "hist", "answers", "erased")
	} else {
		joinKeys(base, k[:], "lock", "state", "hist", "answers", "erased", "msg:"+messageID)
	}
	return conversationKeys{lock: k[0], state: k[1], history: k[2], answers: k[3], erased: k[4], message: k[5]}
}

// userKeys names a user's index of conversations and its erasure marker,
// by a pseudonym of the user.
func (s *Store) userKeys(bot, user string) (index, erased string) {
	var buf [128]byte
	var k [2]string
	joinKeys(s.base(buf[:0], "users:{", bot, user), k[:], "conversations", "erased")
	return k[0], k[1]
}

// base appends to b the start of the keys of an id of a bot: the prefix,
// tag, the bot, ":", the id's pseudonym and "}:".
func (s *Store) base(b []byte, tag, bot, id string) []byte {
	b = append(append(append(append(b, s.prefix...), tag...), bot...), ':')
	return append(appendPseudonym(b, bot, id), "}:"...)
}

// joinKeys sets out[i] to base followed by suffixes[i]. The keys are
// slices of one string: one allocation for all of them, on every turn.
func joinKeys(base []byte, out []string, suffixes ...string) {
	size := 0
	for _, x := range suffixes {
		size += len(base) + len(x)
	}
	var all strings.Builder
	all.Grow(size)
	for _, x := range suffixes {
		all.Write(base)
		all.WriteString(x)
	}
	keys, at := all.String(), 0
	for i, x := range suffixes {
		n := len(base) + len(x)
		out[i] = keys[at : at+n]
		at += n
	}
}

// appendPseudonym appends to b a stable, non-reversible name for an id of
// a bot.
func appendPseudonym(b []byte, bot, id string) []byte {
	var buf [256]byte
	sum := sha256.Sum256(append(append(append(buf[:0], bot...), 0), id...))
	return hex.AppendEncode(b, sum[:16])
}

// Begin starts a turn: it waits for the conversation's earlier turns to
// finish (until ctx ends), takes the lock and loads the state. It fails
// with [ErrErased] when the conversation or the user was erased after
// opts.Received.
func (s *Store) Begin(ctx context.Context, bot string, conv msg.ConversationKey, opts Options) (*Turn, error) {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Received.IsZero() {
		opts.Received = time.Now()
	}
	k := s.keys(bot, conv, opts.MessageID)
	held, err := s.local.acquire(ctx, k.lock)
	if err != nil {
		return nil, fmt.Errorf("wait for conversation %s: %w", conv, err)
	}
	token := newToken()
	received := opts.Received.UnixMilli()
	backoff := initialLockBackof
	for {
		b, err := s.begin(ctx, bot, conv, k, token, opts, received)
		if err != nil {
			if left := callerLeft(ctx); left != nil {
				// The caller left while the round trip ran: it may have
				// taken the lock, which would block the conversation's next
				// turns until the lease ran out. Its deadline is the cause
				// to report, whatever the client made of it (a socket
				// deadline set from it can fire first).
				s.releaseDetached(ctx, k.lock, token)
				held.release()
				return nil, fmt.Errorf("wait for conversation %s: %w", conv, errors.Join(left, err))
			}
			held.release()
			if errors.Is(err, ErrErased) {
				return nil, err
			}
			return nil, fmt.Errorf("begin turn: %w", err)
		}
		switch b.outcome {
		case beginErased:
			held.release()
			return nil, ErrErased
		case beginDone:
			held.release()
			return &Turn{Duplicate: []byte(b.value)}, nil
		case beginLocked:
			t := &Turn{keys: k, token: token, received: received, held: held}
			if b.found {
				if err := json.Unmarshal([]byte(b.value), &t.State); err != nil {
					_ = s.Release(ctx, t) // best effort: the decode error is the one to report
					return nil, fmt.Errorf("decode session of %s: %w", conv, err)
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
			held.release()
			return nil, fmt.Errorf("wait for conversation %s: %w", conv, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// What [Store.begin] found.
const (
	beginBusy   = iota // another turn holds the conversation
	beginLocked        // the lock is ours; value is the state, if found
	beginDone          // the message was processed; value is its answer
	beginErased        // the conversation or the user was erased after the message was received
)

type beginAnswer struct {
	outcome int
	value   string
	found   bool
}

// begin tries to take the conversation's lock and load its state, in one
// round trip of plain commands: SET NX GET takes the lock (or names its
// holder), then one MGET reads the conversation's erasure marker, state and
// message marker. Commands of one connection run in order, and every write
// of a conversation's state holds its lock, so what is read after the lock
// is taken is what the last turn committed. A script would make the round
// trip atomic, but costs Redis several times the commands it runs, and the
// only cases that need undoing, a retried message and an erased
// conversation, are rare: the lock taken for them is released.
//
// For a known user the same round trip reads the user's erasure marker,
// whether the user's index names the conversation, and renews the index's
// lifetime; only a conversation the index does not name yet costs a second
// round trip, the index script, which adds it unless the user was erased
// meanwhile. opts.Extra rides along too.
func (s *Store) begin(ctx context.Context, bot string, conv msg.ConversationKey, k conversationKeys, token string, opts Options, received int64) (beginAnswer, error) {
	var index, erased string
	if opts.User != "" {
		index, erased = s.userKeys(bot, opts.User)
	}
	var (
		user  userCheck
		lock  *redis.Cmd
		reads *redis.SliceCmd
	)
	_ = s.batch.Pipelined(ctx, func(p redis.Pipeliner) {
		if opts.User != "" {
			user = userCheck{
				erased:  p.MGet(ctx, erased), // no redis.Nil error for a user never erased
				indexed: p.SIsMember(ctx, index, string(conv)),
			}
			p.PExpire(ctx, index, s.cfg.UserIndexTTL)
		}
		lock = p.Do(ctx, "set", k.lock, token, "px", opts.Lease.Milliseconds(), "nx", "get")
		if k.message != "" {
			reads = p.MGet(ctx, k.erased, k.state, k.message)
		} else {
			reads = p.MGet(ctx, k.erased, k.state)
		}
		if opts.Extra != nil {
			opts.Extra.Queue(ctx, p)
		}
	})
	// The answers of this package's commands decide; Extra's are its own.
	holder, lerr := lock.Text()
	if errors.Is(lerr, redis.Nil) {
		lerr = nil
	}
	if err := errors.Join(lerr, reads.Err(), user.err()); err != nil {
		return beginAnswer{}, err
	}
	// The lock is ours when it was free, or when this token holds it already
	// (a try whose answer was lost).
	held := lock.Val() == nil || holder == token
	vals := reads.Val()
	if len(vals) < 2 {
		return beginAnswer{}, fmt.Errorf("begin: MGET answered %d values", len(vals))
	}
	undo := func() {
		if held { // in the next batch, like the round trip it follows
			_ = releaseScript.Do(redisx.Detached(ctx, time.Now().Add(releaseTimeout)), s.batch, []string{k.lock}, token).Err() // best effort: the outcome is the answer
		}
	}
	if at, ok := vals[0].(string); (ok && markedAfter(at, received)) || user.erasedAfter(received) {
		undo()
		return beginAnswer{outcome: beginErased}, nil
	}
	if len(vals) > 2 {
		if answer, ok := vals[2].(string); ok {
			undo()
			return beginAnswer{outcome: beginDone, value: answer, found: true}, nil
		}
	}
	if !held {
		return beginAnswer{outcome: beginBusy}, nil
	}
	if opts.User != "" && !user.indexed.Val() {
		// The conversation's first turn of this user (or the index expired):
		// index it before anything of the turn is stored.
		n, err := indexScript.Run(ctx, s.rdb, []string{index, erased}, received, string(conv), s.cfg.UserIndexTTL.Milliseconds()).Int64()
		if err != nil || n == 0 {
			undo()
			if err != nil {
				return beginAnswer{}, fmt.Errorf("index the conversation for its user: %w", err)
			}
			return beginAnswer{outcome: beginErased}, nil
		}
	}
	state, found := vals[1].(string)
	return beginAnswer{outcome: beginLocked, value: state, found: found}, nil
}

// callerLeft returns why ctx is over, or nil: its error, or
// context.DeadlineExceeded from the moment its deadline passes, before the
// context's own timer has marked it done.
func callerLeft(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// markedAfter reports whether the erasure marker at (ms since the epoch)
// is at or after received.
func markedAfter(at string, received int64) bool {
	t, err := strconv.ParseInt(at, 10, 64)
	return err == nil && received <= t
}

type userCheck struct {
	erased  *redis.SliceCmd
	indexed *redis.BoolCmd
}

// err is the first error of the check's commands.
func (u userCheck) err() error {
	if u.erased == nil {
		return nil
	}
	if err := u.erased.Err(); err != nil {
		return err
	}
	return u.indexed.Err()
}

// erasedAfter reports whether the user was erased at or after received
// (ms since the epoch).
func (u userCheck) erasedAfter(received int64) bool {
	if u.erased == nil {
		return false
	}
	v := u.erased.Val()
	if len(v) != 1 {
		return false
	}
	at, ok := v[0].(string)
	return ok && markedAfter(at, received)
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
	// AnswerTTL is how long the answer is remembered (default 24h). After
	// it, a retry of the message is processed as a new message.
	AnswerTTL time.Duration
}

// Commit saves the turn and releases the conversation. It fails with
// [ErrLeaseLost] if the lock expired meanwhile, or [ErrErased] if the
// conversation was erased meanwhile; then nothing was written.
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
			_ = s.release(ctx, t) // best effort: the encode error is the one to report
			return fmt.Errorf("encode session: %w", err)
		}
	}
	if c.History != nil {
		var err error
		if entry, err = json.Marshal(c.History); err != nil {
			_ = s.release(ctx, t) // best effort: the encode error is the one to report
			return fmt.Errorf("encode history: %w", err)
		}
	}
	keys := []string{t.keys.lock, t.keys.state, t.keys.history, t.keys.answers, t.keys.erased}
	if t.keys.message != "" {
		keys = append(keys, t.keys.message)
	}
	// The handler has run: its turn is saved even when the caller has left
	// meanwhile (a client that gave up, a shutdown), rather than leaving
	// the conversation locked until the lease runs out.
	ctx = redisx.Detached(ctx, time.Now().Add(commitTimeout))
	err := commitScript.Do(ctx, s.batch, keys, t.token, state, c.TTL.Milliseconds(), entry,
		c.HistoryLength, c.Answer, c.AnswerTTL.Milliseconds(), time.Now().UnixMilli(), t.received).Err()
	if err != nil {
		if strings.HasPrefix(err.Error(), "LEASELOST") {
			return ErrLeaseLost
		}
		if strings.HasPrefix(err.Error(), "ERASED") {
			return ErrErased
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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	return s.releaseKey(ctx, t.keys.lock, t.token)
}

// releaseDetached frees lock if token holds it, even when ctx is over:
// best effort, after a Begin whose answer was lost.
func (s *Store) releaseDetached(ctx context.Context, lock, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	_ = s.releaseKey(ctx, lock, token) // nothing to tell a caller that left
}

// How long a commit, and a release, may take once the turn's own context
// no longer bounds them.
const (
	commitTimeout  = 5 * time.Second
	releaseTimeout = 2 * time.Second
)

func (s *Store) releaseKey(ctx context.Context, lock, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{lock}, token).Err(); err != nil {
		return fmt.Errorf("release conversation lock: %w", err)
	}
	return nil
}

// Get returns a conversation's state without locking it; ok is false when the
// conversation has none.
func (s *Store) Get(ctx context.Context, bot string, conv msg.ConversationKey) (st State, ok bool, err error) {
	raw, err := s.rdb.Get(ctx, s.keys(bot, conv, "").state).Bytes()
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
func (s *Store) History(ctx context.Context, bot string, conv msg.ConversationKey) ([]HistoryEntry, error) {
	raws, err := s.rdb.LRange(ctx, s.keys(bot, conv, "").history, 0, -1).Result()
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

// Removed counts what [Store.Erase] removed.
type Removed struct {
	// Sessions and Histories count the conversation states and recent
	// histories deleted (0 or 1 each per conversation).
	Sessions, Histories int
	// Answers counts the answers remembered for retried messages.
	Answers int
}

// Erase removes a conversation's state, recent history, lock and the
// answers remembered for its messages, as erasing a user requires, and
// marks it erased at the given time for ErasureTTL: a turn still running
// in it loses its lock and commits nothing ([ErrErased]), and a message
// received before the erasure is refused when it arrives later (queued,
// parked or retried). A message received after it starts a new
// conversation. The marker holds the time only; its name holds no id.
func (s *Store) Erase(ctx context.Context, bot string, conv msg.ConversationKey, at time.Time) (Removed, error) {
	k := s.keys(bot, conv, "")
	res, err := eraseScript.Run(ctx, s.rdb, []string{k.lock, k.state, k.history, k.answers, k.erased},
		at.UnixMilli(), s.cfg.ErasureTTL.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 3 {
		return Removed{}, fmt.Errorf("erase conversation: %w", err)
	}
	return Removed{Sessions: int(res[0]), Histories: int(res[1]), Answers: int(res[2])}, nil
}

// ForgetUser deletes the user's index and returns the conversations it
// named, and marks the user erased at the given time for ErasureTTL: a
// message of the user received before it is refused ([ErrErased]) and
// indexes nothing.
func (s *Store) ForgetUser(ctx context.Context, bot, user string, at time.Time) ([]msg.ConversationKey, error) {
	index, erased := s.userKeys(bot, user)
	members, err := forgetUserScript.Run(ctx, s.rdb, []string{index, erased}, at.UnixMilli(),
		s.cfg.ErasureTTL.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("erase user index: %w", err)
	}
	out := make([]msg.ConversationKey, len(members))
	for i, m := range members {
		out[i] = msg.ConversationKey(m)
	}
	return out, nil
}

// tokenPrefix starts this process's lock tokens: 64 random bits, so that
// no two processes' tokens meet.
var tokenPrefix = func() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:]) + "-"
}()

var tokenSeq atomic.Uint64

// newToken returns a lock token no other turn of any process holds: the
// process's random prefix and a counter, cheaper than a random UUID per
// turn.
func newToken() string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], tokenPrefix...), tokenSeq.Add(1), 36))
}
