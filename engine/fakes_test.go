package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/rate"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// In-memory implementations of the engine's ports, for tests that need no
// Redis. Each keeps what it was asked, so tests can check the calls.

// fakeBots is a BotSource over a fixed set of bots.
type fakeBots struct {
	bots map[string]*bots.Bot
	err  error // returned for every bot when set
}

func (f *fakeBots) Bot(_ context.Context, name string) (*bots.Bot, error) {
	if f.err != nil {
		return nil, f.err
	}
	b, ok := f.bots[name]
	if !ok {
		return nil, fmt.Errorf("bot %q: %w", name, bots.ErrBotNotFound)
	}
	return b, nil
}

// fakeConversations is a Conversations in memory. Turns of one
// conversation are serialized by a lock per conversation, as the real
// store does. It fails the test when a turn is committed or released
// twice, or left open when the test ends.
type fakeConversations struct {
	t testing.TB

	// BeginErr, CommitErr, when set, fail every Begin or Commit.
	BeginErr, CommitErr error

	mu       sync.Mutex
	locks    map[msg.ConversationKey]chan struct{}
	states   map[msg.ConversationKey]sessions.State
	history  map[msg.ConversationKey][]sessions.HistoryEntry
	answers  map[string][]byte // by conversation key and message id
	open     map[*sessions.Turn]msg.ConversationKey
	messages map[*sessions.Turn]string
	begins   int
	releases int
	commits  []sessions.Commit // the commits that were saved
}

func newFakeConversations(t testing.TB) *fakeConversations {
	f := &fakeConversations{t: t, locks: map[msg.ConversationKey]chan struct{}{},
		states: map[msg.ConversationKey]sessions.State{}, history: map[msg.ConversationKey][]sessions.HistoryEntry{},
		answers: map[string][]byte{}, open: map[*sessions.Turn]msg.ConversationKey{},
		messages: map[*sessions.Turn]string{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.open) > 0 {
			t.Errorf("%d turns neither committed nor released", len(f.open))
		}
	})
	return f
}

func (f *fakeConversations) lock(key msg.ConversationKey) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.locks[key]
	if l == nil {
		l = make(chan struct{}, 1)
		f.locks[key] = l
	}
	return l
}

func (f *fakeConversations) Begin(ctx context.Context, bot string, conv msg.ConversationKey,
	opts sessions.Options) (*sessions.Turn, error) {
	if f.BeginErr != nil {
		return nil, f.BeginErr
	}
	key := msg.KeyOf(bot, string(conv))
	l := f.lock(key)
	select {
	case l <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begins++
	if a, ok := f.answers[string(key)+"\x00"+opts.MessageID]; ok && opts.MessageID != "" {
		<-l
		return &sessions.Turn{Duplicate: a}, nil
	}
	t := &sessions.Turn{State: clone(f.t, f.states[key])}
	if t.State.Data == nil {
		t.State.Data = make(map[string]any) // as the real store hands it out
	}
	f.open[t] = key
	f.messages[t] = opts.MessageID
	return t, nil
}

func (f *fakeConversations) finish(t *sessions.Turn, what string) (msg.ConversationKey, bool) {
	key, ok := f.open[t]
	if !ok {
		f.t.Errorf("%s of a turn that is not open", what)
		return "", false
	}
	delete(f.open, t)
	<-f.locks[key]
	return key, true
}

func (f *fakeConversations) Commit(_ context.Context, t *sessions.Turn, c sessions.Commit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, ok := f.finish(t, "commit")
	if !ok {
		return fmt.Errorf("turn not open")
	}
	if f.CommitErr != nil {
		return f.CommitErr
	}
	f.commits = append(f.commits, c)
	if c.End {
		delete(f.states, key)
	} else {
		f.states[key] = clone(f.t, c.State)
	}
	if c.History != nil {
		n := c.HistoryLength
		if n <= 0 {
			n = sessions.DefaultHistory
		}
		h := append([]sessions.HistoryEntry{*c.History}, f.history[key]...)
		f.history[key] = h[:min(len(h), n)]
	}
	if id := f.messages[t]; id != "" {
		f.answers[string(key)+"\x00"+id] = c.Answer
	}
	return nil
}

func (f *fakeConversations) Release(_ context.Context, t *sessions.Turn) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releases++
	f.finish(t, "release")
	return nil
}

func (f *fakeConversations) Get(_ context.Context, bot string, conv msg.ConversationKey) (sessions.State, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.states[msg.KeyOf(bot, string(conv))]
	return clone(f.t, st), ok, nil
}

func (f *fakeConversations) History(_ context.Context, bot string, conv msg.ConversationKey) ([]sessions.HistoryEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sessions.HistoryEntry(nil), f.history[msg.KeyOf(bot, string(conv))]...), nil
}

// put stores a conversation's state, as an earlier turn would have.
func (f *fakeConversations) put(bot string, conv msg.ConversationKey, st sessions.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[msg.KeyOf(bot, string(conv))] = clone(f.t, st)
}

// counts returns how many turns began, were released and were committed.
func (f *fakeConversations) counts() (begins, releases, commits int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.begins, f.releases, len(f.commits)
}

// lastCommit returns the last saved commit.
func (f *fakeConversations) lastCommit() sessions.Commit {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.commits) == 0 {
		f.t.Fatal("nothing committed")
	}
	return f.commits[len(f.commits)-1]
}

// clone is a deep copy of st through JSON, as a store keeps it.
func clone(t testing.TB, st sessions.State) sessions.State {
	raw, err := json.Marshal(st)
	if err != nil {
		t.Errorf("encode state: %v", err)
	}
	var out sessions.State
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("decode state: %v", err)
	}
	return out
}

// fakeRunner is a Runner that answers each call with handle.
type fakeRunner struct {
	handle func(ctx context.Context, c sandbox.Call) (sandbox.Result, error)

	mu    sync.Mutex
	calls []sandbox.Call
}

func (f *fakeRunner) Run(ctx context.Context, c sandbox.Call) (sandbox.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	return f.handle(ctx, c)
}

func (f *fakeRunner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeLimiter is a Limiter that answers every turn with decision.
type fakeLimiter struct {
	decision ratelimit.Decision

	mu    sync.Mutex
	asked []string // bot and conversation of each call
	lims  []rate.Limits
}

func (f *fakeLimiter) Allow(_ context.Context, bot, conversation string, lim rate.Limits) ratelimit.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, bot+" "+conversation)
	f.lims = append(f.lims, lim)
	return f.decision
}

// recorder keeps the invocations and turns an engine reports.
type recorder struct {
	mu    sync.Mutex
	invs  []msg.Invocation
	turns []*Turn
}

func (r *recorder) Record(_ context.Context, inv msg.Invocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invs = append(r.invs, inv)
}

func (r *recorder) TurnDone(_ context.Context, t *Turn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.turns = append(r.turns, t)
}

func (r *recorder) invocations() []msg.Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msg.Invocation(nil), r.invs...)
}

func (r *recorder) observed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.turns)
}

// Compile-time checks that the fakes are the engine's ports.
var (
	_ BotSource     = (*fakeBots)(nil)
	_ Conversations = (*fakeConversations)(nil)
	_ Runner        = (*fakeRunner)(nil)
	_ Limiter       = (*fakeLimiter)(nil)
)
