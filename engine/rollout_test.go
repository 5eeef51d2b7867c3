package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
)

// versioned is a handler that names its version and ends the conversation
// when told to.
func versioned(v string) string {
	return fmt.Sprintf(`function handle(event, session)
  return {text = %q, end_conversation = event.text == "bye"}
end`, v)
}

type rolloutRig struct {
	t   *testing.T
	cat *bots.Catalog
	ses *sessions.Store
	eng *Engine
}

func newRolloutRig(t *testing.T) *rolloutRig {
	rdb := testredis.Client(t)
	prefix := testredis.Prefix(t)
	cat := bots.New(rdb, bots.Config{KeyPrefix: prefix})
	ses := sessions.New(rdb, sessions.Config{KeyPrefix: prefix})
	rt := sandbox.New(sandbox.Config{})
	t.Cleanup(rt.Close)
	r := &rolloutRig{t: t, cat: cat, ses: ses, eng: New(Config{Bots: cat, Sessions: ses, Runtime: rt})}
	if _, err := cat.PutBot(context.Background(), "shop", bots.Settings{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// say runs a turn of conversation conv and returns the version that answered.
func (r *rolloutRig) say(conv, text string) int {
	r.t.Helper()
	turn, err := r.eng.Run(context.Background(), &msg.Event{Bot: "shop", Channel: "web", User: conv, Conversation: conv,
		Intent: "Order", Text: text})
	if err != nil {
		r.t.Fatal(err)
	}
	if turn.Outcome != msg.OutcomeHandled {
		r.t.Fatalf("turn of %s: outcome %s, err %v", conv, turn.Outcome, turn.Err)
	}
	if want := fmt.Sprintf("v%d", turn.Version); turn.Replies[0].Text != want {
		r.t.Fatalf("version %d answered %q", turn.Version, turn.Replies[0].Text)
	}
	return turn.Version
}

func (r *rolloutRig) expect(conv string, want int) {
	r.t.Helper()
	if got := r.say(conv, "hi"); got != want {
		r.t.Fatalf("conversation %s (bucket %d) answered by version %d, want %d", conv, bots.Bucket("Order", conv), got, want)
	}
}

// conv returns a new conversation id whose bucket is below percent, or not.
func conv(name string, percent int, inside bool) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", name, i)
		if (bots.Bucket("Order", id) < percent) == inside {
			return id
		}
	}
}

func TestConversationsKeepTheirVersion(t *testing.T) {
	ctx := context.Background()
	r := newRolloutRig(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func(v string) {
		t.Helper()
		_, _, err := r.cat.PutHandler(ctx, "shop", "Order", versioned(v))
		must(err)
	}
	canary := func(v string, percent int) {
		t.Helper()
		_, err := r.cat.PutCanary(ctx, "shop", "Order", versioned(v), percent)
		must(err)
	}

	put("v1")
	early, earlyOut := conv("early", 50, true), conv("early-out", 50, false)
	r.expect(early, 1)
	r.expect(earlyOut, 1)

	// A canary takes only new conversations, by bucket; running ones stay.
	canary("v2", 50)
	r.expect(early, 1)
	r.expect(earlyOut, 1)
	inside, outside := conv("in", 50, true), conv("out", 50, false)
	r.expect(inside, 2)
	r.expect(outside, 1)
	// The pin is in the session state, saved with the turn.
	st, _, err := r.ses.Get(ctx, "shop", msg.KeyOf("web", inside))
	must(err)
	if st.Versions["Order"] != 2 {
		t.Fatalf("session of %s pins %v", inside, st.Versions)
	}
	// Lowering the share keeps the pinned conversations on the canary.
	must(r.cat.SetCanaryPercent(ctx, "shop", "Order", 0))
	r.expect(inside, 2)
	r.expect(conv("in-late", 50, true), 1)
	must(r.cat.SetCanaryPercent(ctx, "shop", "Order", 50))

	// Promote: conversations of the old stable version finish on it.
	_, err = r.cat.PromoteCanary(ctx, "shop", "Order")
	must(err)
	r.expect(early, 1)
	r.expect(outside, 1)
	r.expect(inside, 2)
	r.expect(conv("after-promote", 50, false), 2)

	// An ended conversation starts over on the current version.
	if got := r.say(early, "bye"); got != 1 {
		t.Fatalf("goodbye answered by %d", got)
	}
	r.expect(early, 2)

	// Abort: the canary's conversations move to the stable version.
	canary("v3", 100)
	tried := conv("tried", 100, true)
	r.expect(tried, 3)
	_, err = r.cat.AbortCanary(ctx, "shop", "Order")
	must(err)
	r.expect(tried, 2)
	r.expect(outside, 1) // the previous version survives an abort

	// Rollback: every conversation moves to the version rolled back to.
	canary("v4", 100)
	r.expect(conv("v4-user", 100, true), 4)
	must(r.cat.Rollback(ctx, "shop", "Order", 1))
	for _, c := range []string{early, outside, inside, tried, "v4-user-0"} {
		r.expect(c, 1)
	}

	// A plain deploy is for everyone at once.
	put("v5")
	r.expect(earlyOut, 5)
	r.expect(inside, 5)
}

func TestPinDropsIntentsTheBotNoLongerHas(t *testing.T) {
	bot := &bots.Bot{Handlers: map[string]bots.Handler{"A": {Version: 1}, "B": {Version: 1}}}
	got := pin(map[string]int{"A": 1, "Gone": 4}, bot, "B", 3)
	if len(got) != 2 || got["A"] != 1 || got["B"] != 3 {
		t.Fatalf("pin = %v", got)
	}
	same := map[string]int{"A": 2}
	if got := pin(same, bot, "A", 2); len(got) != 1 || got["A"] != 2 {
		t.Fatalf("pin = %v", got)
	}
	if got := pin(nil, bot, "A", 1); got["A"] != 1 {
		t.Fatalf("pin on a new conversation = %v", got)
	}
}
