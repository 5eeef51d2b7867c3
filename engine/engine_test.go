package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// These tests run the engine against the in-memory ports of fakes_test.go:
// no Redis, and a fake sandbox unless the test is about the real one.

// rig is an engine wired to fakes.
type rig struct {
	t       testing.TB
	bot     *bots.Bot
	bots    *fakeBots
	store   *fakeConversations
	runner  *fakeRunner
	limiter *fakeLimiter
	rec     *recorder
	eng     *Engine
}

// newRig returns an engine serving bot, whose handlers answer
// "<intent> says hi" and keep the session; edit tunes the engine's Config.
func newRig(t testing.TB, bot *bots.Bot, edit ...func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, bot: bot, bots: &fakeBots{bots: map[string]*bots.Bot{bot.Name: bot}},
		store: newFakeConversations(t), limiter: &fakeLimiter{decision: ratelimit.Decision{Allowed: true}}, rec: &recorder{}}
	r.runner = &fakeRunner{handle: func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
		return sandbox.Result{Reply: msg.Reply{Text: c.Key.Intent + " says hi"}, Session: c.Session,
			Logs: []string{"ran " + c.Key.Intent}}, nil
	}}
	cfg := Config{Bots: r.bots, Sessions: r.store, Runtime: r.runner, Limiter: r.limiter, Observer: r.rec, Invocations: r.rec}
	for _, e := range edit {
		e(&cfg)
	}
	r.eng = New(cfg)
	return r
}

// shopBot is a bot named shop with a version 1 handler for each intent.
func shopBot(handlers ...string) *bots.Bot {
	b := &bots.Bot{Name: "shop", Handlers: map[string]bots.Handler{}}
	for _, h := range handlers {
		b.Handlers[h] = bots.Handler{Version: 1}
	}
	return b
}

// event is a web message of conversation conv.
func event(conv, text, intent string) *msg.Event {
	return &msg.Event{Bot: "shop", Channel: "web", User: conv, Conversation: conv, Text: text, Intent: intent}
}

// run runs a turn that must succeed. A turn that waits for a
// conversation some earlier turn never gave back fails instead of hanging.
func (r *rig) run(ev *msg.Event) *Turn {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	turn, err := r.eng.Run(ctx, ev)
	if err != nil {
		r.t.Fatalf("turn %q: %v", ev.Text, err)
	}
	return turn
}

// state returns the stored state of conversation conv of the web channel.
func (r *rig) state(conv string) (sessions.State, bool) {
	r.t.Helper()
	st, ok, err := r.store.Get(context.Background(), "shop", msg.KeyOf("web", conv))
	if err != nil {
		r.t.Fatal(err)
	}
	return st, ok
}

func TestRunRoutesTheTurn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handlers []string
		expect   string // the intent the stored state expects
		ev       *msg.Event
		intent   string
		source   msg.Source
		outcome  msg.Outcome
		reply    string
		handler  bool // a handler ran
		end      bool
	}{
		{name: "platform intent", handlers: []string{"Order"}, ev: event("u1", "pizza", "Order"),
			intent: "Order", source: msg.SourcePlatform, outcome: msg.OutcomeHandled, reply: "Order says hi", handler: true},
		{name: "expected intent", handlers: []string{"Order", "Size"}, expect: "Size", ev: event("u1", "large", ""),
			intent: "Size", source: msg.SourceExpect, outcome: msg.OutcomeHandled, reply: "Size says hi", handler: true},
		{name: "expected intent the bot no longer has", handlers: []string{"Order", intents.FallbackIntent}, expect: "Gone",
			ev: event("u1", "large", ""), intent: intents.FallbackIntent, source: msg.SourceFallback,
			outcome: msg.OutcomeFallback, reply: "fallback says hi", handler: true},
		{name: "fallback handler", handlers: []string{"Order", intents.FallbackIntent}, ev: event("u1", "what?", ""),
			intent: intents.FallbackIntent, source: msg.SourceFallback, outcome: msg.OutcomeFallback,
			reply: "fallback says hi", handler: true},
		{name: "nothing matches", handlers: []string{"Order"}, ev: event("u1", "what?", ""),
			source: msg.SourceBuiltin, outcome: msg.OutcomeFallback, reply: "Sorry, say again?"},
		{name: "welcome without a handler", handlers: []string{"Order"}, ev: event("u1", "", intents.WelcomeIntent),
			source: msg.SourceBuiltin, outcome: msg.OutcomeHandled, reply: intents.DefaultWelcomeText},
		{name: "stop without a handler", handlers: []string{"Order"}, expect: "Order", ev: event("u1", "", intents.StopIntent),
			source: msg.SourceBuiltin, outcome: msg.OutcomeHandled, reply: intents.DefaultGoodbyeText, end: true},
		{name: "stop with a handler", handlers: []string{"Order", intents.StopIntent}, ev: event("u1", "", intents.StopIntent),
			intent: intents.StopIntent, source: msg.SourcePlatform, outcome: msg.OutcomeHandled,
			reply: "stop says hi", handler: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bot := shopBot(tc.handlers...)
			bot.Settings.FallbackReply = "Sorry, say again?"
			r := newRig(t, bot)
			r.store.put("shop", tc.ev.Key(), sessions.State{Expect: tc.expect, Turns: 3, Data: map[string]any{"n": 1.0}})
			turn := r.run(tc.ev)
			if turn.Decision.Intent != tc.intent || turn.Decision.Source != tc.source {
				t.Errorf("routed to %q by %s, want %q by %s", turn.Decision.Intent, turn.Decision.Source, tc.intent, tc.source)
			}
			if turn.Outcome != tc.outcome || len(turn.Replies) != 1 || turn.Replies[0].Text != tc.reply {
				t.Errorf("outcome %s, replies %+v; want %s, %q", turn.Outcome, turn.Replies, tc.outcome, tc.reply)
			}
			if turn.EndConversation != tc.end {
				t.Errorf("end_conversation %v, want %v", turn.EndConversation, tc.end)
			}
			if got := r.runner.count(); (got == 1) != tc.handler || got > 1 {
				t.Errorf("%d handler calls, want a call: %v", got, tc.handler)
			}
			if turn.NewConversation {
				t.Error("a conversation with three turns reported new")
			}
			// Every answered turn is committed, with the expectation consumed.
			_, releases, commits := r.store.counts()
			if releases != 0 || commits != 1 {
				t.Fatalf("%d releases, %d commits; want the turn committed", releases, commits)
			}
			c := r.store.lastCommit()
			if c.End != tc.end || c.State.Expect != "" || c.State.Turns != 4 || c.State.Data["n"] != 1.0 {
				t.Errorf("committed %+v", c)
			}
			if c.History == nil || c.History.Intent != tc.intent || c.History.Reply != tc.reply {
				t.Errorf("history entry %+v", c.History)
			}
			if got := r.rec.observed(); got != 1 {
				t.Errorf("observer told of %d turns", got)
			}
			if invs := r.rec.invocations(); (len(invs) == 1) != tc.handler || len(invs) > 1 {
				t.Errorf("invocations %+v", invs)
			}
		})
	}
}

func TestHandlerPassesTheBotsBoundsAndTheSession(t *testing.T) {
	bot := shopBot("Order")
	bot.Settings = bots.Settings{TimeoutMS: 700, MaxSessionBytes: 1000, MaxReplyBytes: 500, HTTPAllow: []string{"api.example.com"}}
	r := newRig(t, bot)
	r.store.put("shop", msg.KeyOf("web", "u1"), sessions.State{Turns: 1, Data: map[string]any{"cart": "margherita"}})
	r.run(event("u1", "pizza", "Order"))
	c := r.runner.calls[0]
	if c.Key != (sandbox.PoolKey{Bot: "shop", Intent: "Order", Version: 1}) {
		t.Errorf("pool key %+v", c.Key)
	}
	if c.Timeout != 700*time.Millisecond || c.MaxSessionBytes != 1000 || c.MaxReplyBytes != 500 ||
		!reflect.DeepEqual(c.HTTPAllow, []string{"api.example.com"}) {
		t.Errorf("call bounds %+v", c)
	}
	if c.Session["cart"] != "margherita" || c.Event.Text != "pizza" || c.Route.Intent != "Order" {
		t.Errorf("call session %v, event %+v, route %+v", c.Session, c.Event, c.Route)
	}
}

func TestExpectRoutesTheNextTurn(t *testing.T) {
	r := newRig(t, shopBot("Order", "Size"))
	r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
		if c.Key.Intent == "Order" {
			return sandbox.Result{Reply: msg.Reply{Text: "Which size?", Expect: "Size"}, Session: c.Session}, nil
		}
		return sandbox.Result{Reply: msg.Reply{Text: "A large one."}, Session: c.Session}, nil
	}
	r.run(event("u1", "pizza", "Order"))
	if st, _ := r.state("u1"); st.Expect != "Size" {
		t.Fatalf("stored expect %q", st.Expect)
	}
	turn := r.run(event("u1", "large", ""))
	if turn.Decision.Intent != "Size" || turn.Decision.Source != msg.SourceExpect || turn.Replies[0].Text != "A large one." {
		t.Fatalf("second turn %+v", turn.TurnResult)
	}
	// The expectation holds for one turn only.
	if st, _ := r.state("u1"); st.Expect != "" || st.Turns != 2 {
		t.Fatalf("state after the answer %+v", st)
	}
}

func TestFailedHandlerChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		outcome msg.Outcome
		inv     msg.CallOutcome
	}{
		{"lua error", &sandbox.ScriptError{Script: "Order", Kind: sandbox.KindRuntime, Line: 3, Message: "boom"},
			msg.OutcomeError, msg.CallError},
		{"timeout", &sandbox.ScriptError{Script: "Order", Kind: sandbox.KindTimeout, Message: "timed out"},
			msg.OutcomeTimeout, msg.CallTimeout},
		{"limit", &sandbox.ScriptError{Script: "Order", Kind: sandbox.KindLimit, Message: "reply too large"},
			msg.OutcomeError, msg.CallLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bot := shopBot("Order")
			bot.Settings.ErrorReply = "Something broke."
			r := newRig(t, bot)
			before := sessions.State{Turns: 2, Expect: "Order", Data: map[string]any{"cart": "margherita"},
				Versions: map[string]int{"Order": 1}}
			r.store.put("shop", msg.KeyOf("web", "u1"), before)
			r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
				c.Session["cart"] = "changed by a failed handler"
				return sandbox.Result{Logs: []string{"about to fail"}}, tc.err
			}
			turn := r.run(event("u1", "pizza", "Order"))
			if turn.Outcome != tc.outcome || !errors.Is(turn.Err, tc.err) {
				t.Errorf("outcome %s, err %v; want %s", turn.Outcome, turn.Err, tc.outcome)
			}
			if len(turn.Replies) != 1 || turn.Replies[0].Text != "Something broke." {
				t.Errorf("replies %+v, want the error reply", turn.Replies)
			}
			if len(turn.Logs) != 1 || turn.Logs[0] != "about to fail" {
				t.Errorf("logs %q", turn.Logs)
			}
			if _, releases, commits := r.store.counts(); releases != 1 || commits != 0 {
				t.Errorf("%d releases, %d commits; want the turn released", releases, commits)
			}
			if st, _ := r.state("u1"); !reflect.DeepEqual(st, before) {
				t.Errorf("state %+v, want it unchanged: %+v", st, before)
			}
			invs := r.rec.invocations()
			if len(invs) != 1 || invs[0].Outcome != tc.inv || invs[0].Conversation != "u1" {
				t.Errorf("invocations %+v", invs)
			}
			if r.rec.observed() != 1 {
				t.Error("a failed turn must be observed once")
			}
		})
	}
}

func TestRetryIsAnsweredFromMemory(t *testing.T) {
	r := newRig(t, shopBot("Order"))
	first := event("u1", "pizza", "Order")
	first.ID = "msg-1"
	answered := r.run(first)

	retry := event("u1", "pizza", "Order")
	retry.ID = "msg-1"
	again := r.run(retry)
	if !again.Duplicate || again.Event != retry {
		t.Errorf("retry: duplicate %v, event %p (want %p)", again.Duplicate, again.Event, retry)
	}
	if again.Outcome != answered.Outcome || again.Version != 1 || len(again.Replies) != 1 ||
		again.Replies[0].Text != answered.Replies[0].Text {
		t.Errorf("retry answered %+v, first %+v", again.TurnResult, answered.TurnResult)
	}
	if n := r.runner.count(); n != 1 {
		t.Errorf("handler ran %d times", n)
	}
	if n := len(r.limiter.asked); n != 1 {
		t.Errorf("rate limiter asked %d times; a retry of an answered message is not counted", n)
	}
	if n := r.rec.observed(); n != 1 {
		t.Errorf("observer told of %d turns; a retry is not reported", n)
	}
	if _, _, commits := r.store.counts(); commits != 1 {
		t.Errorf("%d commits", commits)
	}

	// Another message of the conversation runs again.
	next := event("u1", "pizza", "Order")
	next.ID = "msg-2"
	if turn := r.run(next); turn.Duplicate || r.runner.count() != 2 {
		t.Errorf("new message: duplicate %v, %d handler calls", turn.Duplicate, r.runner.count())
	}
}

// TestMadeUpIDIsNotRemembered: an ID Parley made up for a message that
// came without one cannot come back in a retry, so no answer is kept for
// it, and the same made-up ID seen again is an ordinary message.
func TestMadeUpIDIsNotRemembered(t *testing.T) {
	r := newRig(t, shopBot("Order"))
	ev := event("u1", "pizza", "Order")
	ev.ID, ev.IDMadeUp = "made-up-1", true
	r.run(ev)
	_, _, commits := r.store.counts()
	if commits != 1 {
		t.Fatalf("%d commits", commits)
	}
	if a := r.store.commits[0].Answer; a != nil {
		t.Errorf("an answer was kept for a made-up id: %s", a)
	}
	again := event("u1", "pizza", "Order")
	again.ID, again.IDMadeUp = "made-up-1", true
	if turn := r.run(again); turn.Duplicate || r.runner.count() != 2 {
		t.Errorf("second message: duplicate %v, %d handler calls", turn.Duplicate, r.runner.count())
	}
}

func TestEndConversationStartsOver(t *testing.T) {
	r := newRig(t, shopBot("Order"))
	r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
		n, _ := c.Session["n"].(float64)
		c.Session["n"] = n + 1
		return sandbox.Result{Reply: msg.Reply{Text: fmt.Sprint(n + 1), EndConversation: c.Event.Text == "bye"},
			Session: c.Session}, nil
	}
	for i, step := range []struct {
		text  string
		reply string
		new   bool
		end   bool
	}{
		{"hi", "1", true, false},
		{"more", "2", false, false},
		{"bye", "3", false, true},
		{"hi again", "1", true, false},
	} {
		turn := r.run(event("u1", step.text, "Order"))
		if turn.Replies[0].Text != step.reply || turn.NewConversation != step.new || turn.EndConversation != step.end {
			t.Fatalf("turn %d (%s): reply %q, new %v, end %v; want %q, %v, %v", i, step.text, turn.Replies[0].Text,
				turn.NewConversation, turn.EndConversation, step.reply, step.new, step.end)
		}
		if c := r.store.lastCommit(); c.End != step.end {
			t.Fatalf("turn %d committed end %v", i, c.End)
		}
		if _, ok := r.state("u1"); ok == step.end {
			t.Fatalf("turn %d: state kept %v after end %v", i, ok, step.end)
		}
	}
}

func TestBusyBotRejectsTurnsBeyondItsLimit(t *testing.T) {
	bot := shopBot("Order")
	bot.Settings.MaxConcurrentTurns = 1
	bot.Settings.BusyReply = "Too busy, try again."
	r := newRig(t, bot, func(c *Config) { c.BusyWait = 20 * time.Millisecond })
	started, unblock := make(chan struct{}), make(chan struct{})
	r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
		if c.Event.Conversation == "slow" {
			close(started)
			<-unblock
		}
		return sandbox.Result{Reply: msg.Reply{Text: "done"}, Session: c.Session}, nil
	}
	slow := make(chan error, 1)
	go func() {
		_, err := r.eng.Run(context.Background(), event("slow", "pizza", "Order"))
		slow <- err
	}()
	<-started

	turn, err := r.eng.Run(context.Background(), event("quick", "pizza", "Order"))
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) || turn != nil {
		t.Fatalf("turn beyond the limit: %v, %v", turn, err)
	}
	if busy.Limit != LimitConcurrency || busy.RateLimited() || busy.Reply != "Too busy, try again." ||
		busy.Bot != "shop" || busy.RetryAfter <= 0 {
		t.Errorf("busy error %+v", busy)
	}
	if invs := r.rec.invocations(); len(invs) != 1 || invs[0].Outcome != msg.CallRejected || invs[0].Conversation != "quick" {
		t.Errorf("invocations %+v, want the rejected call", invs)
	}
	if _, ok := r.state("quick"); ok {
		t.Error("a rejected turn stored state")
	}

	close(unblock)
	if err := <-slow; err != nil {
		t.Fatalf("the running turn: %v", err)
	}
	// The slot is free again.
	if turn := r.run(event("quick", "pizza", "Order")); turn.Outcome != msg.OutcomeHandled {
		t.Fatalf("after the running turn: %s", turn.Outcome)
	}
	if _, releases, commits := r.store.counts(); releases != 1 || commits != 2 {
		t.Errorf("%d releases, %d commits; want the rejected turn released and two committed", releases, commits)
	}
}

func TestRateLimitedTurn(t *testing.T) {
	for _, tc := range []struct {
		scope ratelimit.Scope
		limit string
	}{
		{ratelimit.ScopeBot, LimitPerBot},
		{ratelimit.ScopeConversation, LimitPerUser},
	} {
		t.Run(tc.limit, func(t *testing.T) {
			bot := shopBot("Order")
			bot.Settings.RateLimitPerBot, bot.Settings.RateLimitPerUser = "100/s", "5/m"
			r := newRig(t, bot)
			r.limiter.decision = ratelimit.Decision{Scope: tc.scope, RetryAfter: 3 * time.Second}
			turn, err := r.eng.Run(context.Background(), event("u1", "pizza", "Order"))
			var busy *BusyError
			if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) || turn != nil {
				t.Fatalf("rate-limited turn: %v, %v", turn, err)
			}
			if busy.Limit != tc.limit || !busy.RateLimited() || busy.RetryAfter != 3*time.Second ||
				busy.Reply != bot.Settings.BusyText() {
				t.Errorf("busy error %+v", busy)
			}
			if len(r.limiter.asked) != 1 || r.limiter.asked[0] != "shop web:u1" ||
				r.limiter.lims[0] != bot.Settings.RateLimits() {
				t.Errorf("limiter asked %q with %+v", r.limiter.asked, r.limiter.lims)
			}
			if r.runner.count() != 0 || r.rec.observed() != 0 {
				t.Error("a rate-limited turn ran its handler or was observed")
			}
			if _, releases, commits := r.store.counts(); releases != 1 || commits != 0 {
				t.Errorf("%d releases, %d commits; want the turn released", releases, commits)
			}
		})
	}
}

func TestNoLimiterMeansNoRateLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limiter Limiter
	}{
		{"nil", nil},
		{"nil *ratelimit.Limiter", (*ratelimit.Limiter)(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bot := shopBot("Order")
			bot.Settings.RateLimitPerUser = "1/h"
			r := newRig(t, bot, func(c *Config) { c.Limiter = tc.limiter })
			for range 3 {
				if turn := r.run(event("u1", "pizza", "Order")); turn.Outcome != msg.OutcomeHandled {
					t.Fatalf("outcome %s", turn.Outcome)
				}
			}
		})
	}
}

func TestStoreFailures(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		bot     string // the event's bot
		setup   func(*rig)
		want    error
		cause   error // the underlying failure the error wraps, if any
		handler bool  // the handler ran before the failure
		anon    bool  // its invocation was recorded without the conversation
	}{
		{name: "unknown bot", bot: "nobody", want: bots.ErrBotNotFound},
		{name: "bot source down", setup: func(r *rig) { r.bots.err = down }, want: ErrUnavailable, cause: down},
		{name: "begin fails", setup: func(r *rig) { r.store.BeginErr = down }, want: ErrUnavailable, cause: down},
		{name: "conversation erased before", setup: func(r *rig) { r.store.BeginErr = sessions.ErrErased }, want: ErrErased},
		{name: "commit fails", setup: func(r *rig) { r.store.CommitErr = down }, want: ErrUnavailable, cause: down,
			handler: true},
		{name: "lease lost", setup: func(r *rig) { r.store.CommitErr = sessions.ErrLeaseLost }, want: ErrUnavailable,
			cause: sessions.ErrLeaseLost, handler: true},
		{name: "erased while the handler ran", setup: func(r *rig) { r.store.CommitErr = sessions.ErrErased },
			want: ErrErased, handler: true, anon: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, shopBot("Order"))
			if tc.setup != nil {
				tc.setup(r)
			}
			ev := event("u1", "pizza", "Order")
			if tc.bot != "" {
				ev.Bot = tc.bot
			}
			turn, err := r.eng.Run(context.Background(), ev)
			if turn != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, %v; want %v", turn, err, tc.want)
			}
			if !errors.Is(tc.want, ErrUnavailable) && errors.Is(err, ErrUnavailable) {
				t.Errorf("%v must not read as unavailable: retrying cannot help", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("%v does not wrap the cause", err)
			}
			if got := r.runner.count(); (got == 1) != tc.handler {
				t.Errorf("%d handler calls", got)
			}
			if r.rec.observed() != 0 {
				t.Error("a turn that failed to process was observed")
			}
			invs := r.rec.invocations()
			if (len(invs) == 1) != tc.handler {
				t.Fatalf("invocations %+v", invs)
			}
			if tc.handler {
				if anon := invs[0].Conversation == "" && invs[0].Channel == "" && invs[0].Logs == nil; anon != tc.anon {
					t.Errorf("invocation %+v, want anonymous: %v", invs[0], tc.anon)
				}
				if invs[0].Bot != "shop" {
					t.Errorf("invocation without its bot: %+v", invs[0])
				}
			}
			if _, ok := r.state("u1"); ok {
				t.Error("a failed turn stored state")
			}
		})
	}
}

func TestSensitiveTurnsAreNotStored(t *testing.T) {
	for _, sensitive := range []bool{false, true} {
		t.Run(fmt.Sprint("sensitive=", sensitive), func(t *testing.T) {
			r := newRig(t, shopBot("Balance"))
			r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
				return sandbox.Result{Reply: msg.Reply{Text: "Your balance is 42.", Sensitive: sensitive}, Session: c.Session}, nil
			}
			ev := event("u1", "my pin is 1234", "Balance")
			ev.ID = "msg-1"
			r.run(ev)
			c := r.store.lastCommit()
			wantTTL, wantText, wantReply := time.Duration(0), "my pin is 1234", "Your balance is 42."
			if sensitive {
				wantTTL, wantText, wantReply = SensitiveAnswerTTL, "", ""
			}
			if c.AnswerTTL != wantTTL {
				t.Errorf("answer kept for %v, want %v", c.AnswerTTL, wantTTL)
			}
			if c.History == nil || c.History.Text != wantText || c.History.Reply != wantReply || c.History.Intent != "Balance" {
				t.Errorf("history entry %+v", c.History)
			}
			// A retry still gets the answer while it is remembered.
			retry := event("u1", "my pin is 1234", "Balance")
			retry.ID = "msg-1"
			if again := r.run(retry); !again.Duplicate || again.Replies[0].Text != "Your balance is 42." {
				t.Errorf("retry answered %+v", again.TurnResult)
			}
		})
	}
}

func TestDescribeReadsStateAndHistory(t *testing.T) {
	r := newRig(t, shopBot("Order"))
	r.run(event("u1", "pizza", "Order"))
	got, err := r.eng.Describe(context.Background(), "shop", msg.KeyOf("web", "u1"))
	if err != nil {
		t.Fatal(err)
	}
	conv := got.(*Conversation)
	if conv.Bot != "shop" || conv.Channel != "web" || conv.Conversation != "u1" || !conv.Active ||
		conv.State.Turns != 1 || len(conv.History) != 1 || conv.History[0].Text != "pizza" {
		t.Fatalf("described %+v", conv)
	}
	got, err = r.eng.Describe(context.Background(), "shop", msg.KeyOf("web", "nobody"))
	if err != nil || got.(*Conversation).Active {
		t.Fatalf("unknown conversation: %+v, %v", got, err)
	}
}

// TestWithTheRealSandbox runs Lua handlers in a real sandbox.Runtime,
// with the other ports faked.
func TestWithTheRealSandbox(t *testing.T) {
	compile := func(name, src string) *sandbox.Program {
		t.Helper()
		p, err := sandbox.Compile(name, src)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	bot := &bots.Bot{Name: "shop", Settings: bots.Settings{TimeoutMS: 200}, Handlers: map[string]bots.Handler{
		"Count": {Version: 1, Program: compile("Count", `function handle(event, session)
  session.n = (session.n or 0) + 1
  log("turn " .. session.n)
  return {text = "count " .. session.n}
end`)},
		"Broken": {Version: 1, Program: compile("Broken", `function handle(event, session)
  session.n = 100
  error("boom")
end`)},
		"Loop": {Version: 2, Program: compile("Loop", `function handle(event, session)
  while true do end
end`)},
	}}
	rt := sandbox.New(sandbox.Config{})
	t.Cleanup(rt.Close)
	r := newRig(t, bot, func(c *Config) { c.Runtime = rt })

	for i, want := range []string{"count 1", "count 2"} {
		turn := r.run(event("u1", "again", "Count"))
		if turn.Outcome != msg.OutcomeHandled || turn.Replies[0].Text != want {
			t.Fatalf("turn %d: %s %+v (%v)", i, turn.Outcome, turn.Replies, turn.Err)
		}
		if len(turn.Logs) != 1 || turn.Logs[0] != fmt.Sprint("turn ", i+1) {
			t.Errorf("turn %d logs %q", i, turn.Logs)
		}
	}
	if st, _ := r.state("u1"); st.Data["n"] != 2.0 || st.Versions["Count"] != 1 {
		t.Fatalf("state %+v", st)
	}

	broken := r.run(event("u1", "", "Broken"))
	var se *sandbox.ScriptError
	if broken.Outcome != msg.OutcomeError || !errors.As(broken.Err, &se) || se.Line != 3 {
		t.Fatalf("broken handler: %s, %v", broken.Outcome, broken.Err)
	}
	loop := r.run(event("u1", "", "Loop"))
	if loop.Outcome != msg.OutcomeTimeout || loop.Version != 2 {
		t.Fatalf("endless handler: %s (version %d), %v", loop.Outcome, loop.Version, loop.Err)
	}
	if st, _ := r.state("u1"); st.Data["n"] != 2.0 || st.Turns != 2 {
		t.Fatalf("failed turns changed the state: %+v", st)
	}
}

// BenchmarkRunOverhead measures what the engine itself adds to a turn
// (routing, encoding the answer, the history entry), with the store and the
// sandbox faked in memory.
func BenchmarkRunOverhead(b *testing.B) {
	r := newRig(b, shopBot("Order"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.eng.Run(ctx, event("u1", "a large margherita", "Order")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestButtonPresses: a payload naming an intent runs it; the buttons a turn
// offers are kept for the next, where a typed number or a reference picks
// one; a number that names none stays text.
func TestButtonPresses(t *testing.T) {
	r := newRig(t, shopBot("Menu", "OrderPizza", "Add", intents.FallbackIntent))
	long := "add:margherita-with-extra-cheese-and-a-very-long-payload-that-telegram-cannot-carry"
	var got []*msg.Event
	r.runner.handle = func(_ context.Context, c sandbox.Call) (sandbox.Result, error) {
		ev := *c.Event
		got = append(got, &ev)
		rep := msg.Reply{Text: c.Key.Intent + " says hi"}
		if c.Key.Intent == "Menu" {
			rep.Expect = "Add"
			rep.Buttons = []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Site", URL: "https://example.com"}}
			rep.Cards = []msg.Card{{Title: "Margherita", Buttons: []msg.Button{{Title: "Add", Payload: long}}}}
		}
		return sandbox.Result{Reply: rep, Session: c.Session}, nil
	}

	menu := r.run(event("u1", "menu", "Menu"))
	if st, _ := r.state("u1"); !reflect.DeepEqual(st.Choices, []string{"OrderPizza", long}) {
		t.Fatalf("choices kept = %q", st.Choices)
	}
	if menu.Decision.Source != msg.SourcePlatform {
		t.Fatalf("menu decision %+v", menu.Decision)
	}

	// "2" picks the card's button: no intent, so the expected one runs.
	ev := event("u1", "2", "")
	ev.Choice = "2"
	turn := r.run(ev)
	if turn.Decision.Intent != "Add" || turn.Decision.Source != msg.SourceExpect || got[len(got)-1].Postback != long {
		t.Fatalf("typed 2: decision %+v, postback %q", turn.Decision, got[len(got)-1].Postback)
	}
	if st, _ := r.state("u1"); len(st.Choices) != 0 {
		t.Fatalf("a turn without buttons kept choices %q", st.Choices)
	}
	// The previous turn offered nothing: "1" is just text.
	ev = event("u1", "1", "")
	ev.Choice = "1"
	turn = r.run(ev)
	if turn.Decision.Intent != intents.FallbackIntent || got[len(got)-1].Postback != "" {
		t.Fatalf("typed 1 without choices: decision %+v, postback %q", turn.Decision, got[len(got)-1].Postback)
	}

	// A press naming an intent runs it, whatever was expected.
	r.run(event("u1", "menu", "Menu"))
	ev = event("u1", "Order", "")
	ev.Choice = "1"
	turn = r.run(ev)
	if turn.Decision.Intent != "OrderPizza" || turn.Decision.Source != msg.SourcePostback {
		t.Fatalf("typed 1: decision %+v", turn.Decision)
	}
	// A reference to a long payload resolves while it is offered.
	r.run(event("u1", "menu", "Menu"))
	ev = event("u1", "Add", "")
	ev.Choice = msg.ChoiceRef(long)
	r.run(ev)
	if got[len(got)-1].Postback != long {
		t.Fatalf("reference resolved to %q", got[len(got)-1].Postback)
	}
	// A postback given by the platform is kept as is.
	ev = event("u1", "", "")
	ev.Postback = "OrderPizza"
	if turn = r.run(ev); turn.Decision.Intent != "OrderPizza" || turn.Decision.Source != msg.SourcePostback {
		t.Fatalf("postback: decision %+v", turn.Decision)
	}
}
