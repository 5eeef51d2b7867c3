package engine

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/redis/go-redis/v9"
)

// fakeHandoffs is a Handoffs that keeps the handed-off conversations in memory.
type fakeHandoffs struct {
	mu      sync.Mutex
	owned   map[msg.ConversationKey]bool
	noticed map[msg.ConversationKey]bool
	started []string // intent/queue of each Start
	fail    error
}

func (f *fakeHandoffs) Hold(_ *bots.Bot, ev *msg.Event) HoldCheck {
	return &fakeCheck{f: f, key: ev.Key()}
}

// fakeCheck is a HoldCheck that the fake sessions never send: Result
// checks on its own.
type fakeCheck struct {
	f   *fakeHandoffs
	key msg.ConversationKey
}

func (c *fakeCheck) Queue(context.Context, redis.Pipeliner) {}

func (c *fakeCheck) Result(context.Context) (held, first bool, err error) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return false, false, f.fail
	}
	if !f.owned[c.key] {
		return false, false, nil
	}
	first = !f.noticed[c.key]
	f.noticed[c.key] = true
	return true, first, nil
}

func (f *fakeHandoffs) Start(_ context.Context, _ *bots.Bot, ev *msg.Event, intent string, h msg.Handoff) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.owned[ev.Key()] = true
	f.started = append(f.started, intent+"/"+h.Queue)
	return nil
}

// TestHandedOffConversationRunsNoHandler: a handler's reply.handoff hands
// the conversation over; its next messages run no handler and no
// invocation, the first gets the notice, and the session keeps counting
// turns; another conversation is not affected.
func TestHandedOffConversationRunsNoHandler(t *testing.T) {
	bot := shopBot("Human", "Greet")
	bot.Settings.HandoffNotice = "An agent will answer."
	ho := &fakeHandoffs{owned: map[msg.ConversationKey]bool{}, noticed: map[msg.ConversationKey]bool{}}
	r := newRig(t, bot, func(c *Config) { c.Handoffs = ho })
	r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
		rep := msg.Reply{Text: c.Key.Intent + " says hi"}
		if c.Key.Intent == "Human" {
			rep.Handoff = &msg.Handoff{Queue: "support"}
		}
		return sandbox.Result{Reply: rep, Session: c.Session}, nil
	}
	if turn := r.run(event("c1", "a person please", "Human")); !turn.HandedOff || turn.Replies[0].Text != "Human says hi" {
		t.Fatalf("handoff turn: %+v", turn)
	}
	if len(ho.started) != 1 || ho.started[0] != "Human/support" {
		t.Fatalf("started %v", ho.started)
	}
	calls := r.runner.count()
	first := r.run(event("c1", "hello?", "Greet"))
	second := r.run(event("c1", "anyone?", "Greet"))
	if r.runner.count() != calls {
		t.Fatal("a handler ran in a handed-off conversation")
	}
	if first.Outcome != msg.OutcomeHuman || len(first.Replies) != 1 || first.Replies[0].Text != bot.Settings.HandoffNotice {
		t.Fatalf("first held turn: %+v", first.TurnResult)
	}
	if second.Outcome != msg.OutcomeHuman || len(second.Replies) != 0 || second.Decision.Intent != "" {
		t.Fatalf("second held turn: %+v", second.TurnResult)
	}
	if len(r.rec.invocations()) != 1 {
		t.Fatalf("invocations %d, want only the handoff turn's", len(r.rec.invocations()))
	}
	if st, _ := r.state("c1"); st.Turns != 3 {
		t.Fatalf("turns %d", st.Turns)
	}
	if turn := r.run(event("c2", "hi", "Greet")); turn.Replies[0].Text != "Greet says hi" {
		t.Fatalf("another conversation: %+v", turn.TurnResult)
	}
	// A retry of a held message is answered from memory.
	ev := event("c1", "again", "Greet")
	ev.ID = "m1"
	r.run(ev)
	ev2 := event("c1", "again", "Greet")
	ev2.ID = "m1"
	if turn := r.run(ev2); !turn.Duplicate || turn.Outcome != msg.OutcomeHuman {
		t.Fatalf("retry: %+v", turn.TurnResult)
	}
}

// TestHandoffStoreDownFailsTheTurn: when the handoff state cannot be read,
// the turn fails as unavailable and the conversation is given back.
func TestHandoffStoreDownFailsTheTurn(t *testing.T) {
	ho := &fakeHandoffs{owned: map[msg.ConversationKey]bool{}, noticed: map[msg.ConversationKey]bool{}, fail: errors.New("down")}
	r := newRig(t, shopBot("Greet"), func(c *Config) { c.Handoffs = ho })
	_, err := r.eng.Run(context.Background(), event("c1", "hi", "Greet"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	if begins, releases, commits := r.store.counts(); begins != 1 || releases != 1 || commits != 0 {
		t.Fatalf("begins %d releases %d commits %d", begins, releases, commits)
	}
}
