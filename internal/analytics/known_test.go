package analytics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
)

// userScriptCalls counts the user script's calls through a client.
type userScriptCalls struct{ n atomic.Int64 }

func (c *userScriptCalls) count(cmds ...redis.Cmder) {
	for _, cmd := range cmds {
		args := cmd.Args()
		if len(args) > 1 && (args[0] == "evalsha" || args[0] == "eval") && (args[1] == userScript.Hash() || args[1] == userScript.Source()) {
			c.n.Add(1)
		}
	}
}

func (c *userScriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *userScriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.count(cmd); return next(ctx, cmd) }
}
func (c *userScriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.count(cmds...); return next(ctx, cmds) }
}

// TestKnownUserCostsNoScript: once a flush has indexed a user's
// conversation, the user's next turns in it write nothing to the index;
// a new conversation or a fallback utterance does, and a new user is
// counted once.
func TestKnownUserCostsNoScript(t *testing.T) {
	f := newFixture(t, nil)
	calls := &userScriptCalls{}
	f.rdb.AddHook(calls)
	now := f.clock.Now()
	turn := func(at time.Duration, conv, text, outcome string) Turn {
		return Turn{At: now.Add(at), Bot: "bot", Channel: "web", User: "ann", Conversation: conv, Intent: "Greet",
			Source: "platform", Outcome: outcome, Text: text}
	}
	steps := []struct {
		turns []Turn
		want  int64
	}{
		{[]Turn{turn(0, "c1", "hi", OutcomeHandled)}, 1},              // new user
		{[]Turn{turn(time.Second, "c1", "again", OutcomeHandled)}, 0}, // known
		{[]Turn{turn(2*time.Second, "c1", "more", OutcomeHandled), turn(3*time.Second, "c1", "x", OutcomeHandled)}, 0},
		{[]Turn{turn(4*time.Second, "c2", "elsewhere", OutcomeHandled)}, 1},  // a new conversation
		{[]Turn{turn(5*time.Second, "c2", "gibberish", OutcomeFallback)}, 1}, // an utterance to remember
		{[]Turn{turn(6*time.Second, "c1", "back", OutcomeHandled)}, 0},
	}
	for i, st := range steps {
		before := calls.n.Load()
		observeAll(f, st.turns)
		f.flush(t)
		if got := calls.n.Load() - before; got != st.want {
			t.Errorf("step %d: %d user script calls, want %d", i, got, st.want)
		}
	}
	r := f.query(t, Query{From: now.Add(-time.Hour), To: now.Add(time.Hour)})
	if r.Totals.Turns != 7 || r.Totals.NewUsers != 1 || *r.Totals.Users != 1 {
		t.Errorf("totals: %d turns, %d new users, %d users; want 7, 1, 1", r.Totals.Turns, r.Totals.NewUsers, *r.Totals.Users)
	}
	list, err := f.svc.Conversations(context.Background(), "bot", ConversationQuery{User: "ann", From: now.Add(-time.Hour), To: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Conversations) != 2 {
		t.Errorf("ann's conversations: %+v, want c1 and c2", list.Conversations)
	}
}

// TestKnownUserErasedByAnotherReplica: a user this replica indexed lately
// is erased by another replica. A turn of theirs received before the
// erasure is then dropped here, and one received after it indexes the
// conversation again, so that the next erasure finds and erases it.
func TestKnownUserErasedByAnotherReplica(t *testing.T) {
	for _, purge := range []bool{false, true} {
		name := map[bool]string{false: "erased", true: "purged"}[purge]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			other := New(f.rdb, Config{KeyPrefix: f.prefix, Sessions: f.sessions, Metrics: f.metrics, Now: f.clock.Now,
				FlushInterval: time.Hour, EraseSettle: -1})
			ctx := context.Background()
			now := f.clock.Now()
			ann := func(at time.Time, text string) Turn {
				return Turn{At: at, Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Intent: "Greet",
					Source: "platform", Outcome: OutcomeHandled, Text: text}
			}
			observeAll(f, []Turn{ann(now.Add(-time.Minute), "first words")})
			f.flush(t)

			if purge {
				// The bot is deleted and its keys purged, as by another replica.
				keys := testredis.Keys(t, f.rdb, f.prefix+"an:*")
				if len(keys) == 0 {
					t.Fatal("purge: no keys")
				}
				for _, k := range keys { // one by one: they lie in several cluster slots
					if err := f.rdb.Del(ctx, k).Err(); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				f.clock.Set(now.Add(time.Second))
				if _, err := other.Erase(ctx, "bot", "ann"); err != nil {
					t.Fatal(err)
				}
				// Received before the erasure, written after it: dropped.
				observeAll(f, []Turn{ann(now.Add(500*time.Millisecond), "late secret")})
				f.flush(t)
				for key, val := range f.allValues(t) {
					if strings.Contains(val, "late secret") {
						t.Fatalf("a turn received before the erasure was recorded in %s", key)
					}
				}
			}

			// Received after: recorded, and indexed again.
			f.clock.Set(now.Add(2 * time.Second))
			observeAll(f, []Turn{ann(now.Add(2*time.Second), "new words")})
			f.flush(t)
			f.clock.Set(now.Add(3 * time.Second))
			er, err := other.Erase(ctx, "bot", "ann")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(er.Conversations, ErasedConversation{Channel: "web", Conversation: "c1"}) || er.Removed[RemovedTranscripts] != 1 {
				t.Errorf("the second erasure: %+v, want conversation web/c1 and its transcript", er)
			}
			for key, val := range f.allValues(t) {
				if strings.Contains(val, "new words") {
					t.Errorf("after the second erasure %s still holds the user's words", key)
				}
			}
		})
	}
}

// TestKnownUsersBounded: the entries stay within maxKnownUsers (expired
// ones go first), a user with too many conversations is not remembered,
// and an entry expires after knownFor.
func TestKnownUsersBounded(t *testing.T) {
	k := knownUsers{m: make(map[[2]string]*knownUser)}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	id := func(i int) [2]string { return [2]string{"bot", fmt.Sprint("u", i)} }
	for i := range maxKnownUsers {
		k.add(id(i), userKeys{}, 1, []string{"c"}, t0)
	}
	if len(k.m) != maxKnownUsers || k.get(id(7), t0.Add(time.Minute)) == nil {
		t.Fatalf("%d entries after filling, want %d", len(k.m), maxKnownUsers)
	}
	if k.get(id(7), t0.Add(knownFor)) != nil {
		t.Error("an entry is trusted after knownFor")
	}
	// Full and nothing expired: all go, the new one stays.
	k.add(id(-1), userKeys{}, 1, []string{"c"}, t0.Add(time.Minute))
	if len(k.m) != 1 || k.get(id(-1), t0.Add(time.Minute)) == nil {
		t.Fatalf("%d entries after overflowing, want the new one alone", len(k.m))
	}
	// Full with expired ones: only they go.
	for i := range maxKnownUsers - 1 {
		k.add(id(i), userKeys{}, 1, []string{"c"}, t0)
	}
	later := t0.Add(knownFor)
	k.add(id(-2), userKeys{}, 1, []string{"c"}, later)
	if len(k.m) != 2 || k.get(id(-1), later) == nil || k.get(id(-2), later) == nil {
		t.Fatalf("%d entries, want the two live ones", len(k.m))
	}
	convs := make([]string, maxKnownConvs+1)
	for i := range convs {
		convs[i] = fmt.Sprint("c", i)
	}
	k.add(id(-3), userKeys{}, 1, convs, later)
	if k.get(id(-3), later) != nil {
		t.Error("a user with more than maxKnownConvs conversations is remembered")
	}
}
