package handoff

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

// TestStore runs the store's contract against real Redis and the embedded store.
func TestStore(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		s := NewStore(rdb, prefix)
		if err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		conv := msg.KeyOf("telegram", "42")

		if held, _, err := s.Hold(ctx, "b", conv, "42", "hi", t0, t0.Add(time.Minute)); err != nil || held {
			t.Fatalf("Hold before a handoff: %v, %v", held, err)
		}
		if _, err := s.Agent(ctx, "b", conv, "dana", true, "hi", t0, t0.Add(time.Minute)); !errors.Is(err, errNotOwned) {
			t.Fatalf("agent before a handoff: %v", err)
		}
		st := &State{Channel: "telegram", Conversation: "42", User: "42", Queue: "support", Reason: "why", Intent: "Human", Since: t0}
		if ok, err := s.Start(ctx, "b", st, t0.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("Start: %v, %v", ok, err)
		}
		if ok, err := s.Start(ctx, "b", &State{Channel: "telegram", Conversation: "42", Queue: "other", Since: t0}, t0); err != nil || ok {
			t.Fatalf("second Start: %v, %v", ok, err)
		}
		// The same id on another channel, and in another bot, is another conversation.
		if held, _, _ := s.Hold(ctx, "b", msg.KeyOf("slack", "42"), "42", "x", t0, t0); held {
			t.Fatal("another channel's conversation is held")
		}
		if held, _, _ := s.Hold(ctx, "other", conv, "42", "x", t0, t0); held {
			t.Fatal("another bot's conversation is held")
		}
		for i, wantFirst := range []bool{true, false, false} {
			held, first, err := s.Hold(ctx, "b", conv, "42", "msg", t0.Add(time.Duration(i+1)*time.Second), t0.Add(2*time.Minute))
			if err != nil || !held || first != wantFirst {
				t.Fatalf("Hold %d: held %v, first %v, %v", i, held, first, err)
			}
		}
		got, ok, err := s.Get(ctx, "b", conv)
		if err != nil || !ok || got.Status != StatusWaiting || got.Queue != "support" || got.Intent != "Human" ||
			got.LastMessage == nil || got.LastMessage.From != "user" || !got.Since.Equal(t0) {
			t.Fatalf("Get: %+v, %v, %v", got, ok, err)
		}
		if prev, err := s.Agent(ctx, "b", conv, "dana", true, "hello", t0.Add(5*time.Second), t0.Add(3*time.Minute)); err != nil || prev != "" {
			t.Fatalf("agent message: %q, %v", prev, err)
		}
		if _, err := s.Agent(ctx, "b", conv, "eve", true, "me", t0, t0); err == nil || !strings.Contains(err.Error(), "dana") {
			t.Fatalf("another agent's message: %v", err)
		}
		if prev, err := s.Agent(ctx, "b", conv, "eve", false, "", t0, t0.Add(3*time.Minute)); err != nil || prev != "dana" {
			t.Fatalf("claim: %q, %v", prev, err)
		}
		got, _, _ = s.Get(ctx, "b", conv)
		if got.Status != StatusActive || got.Agent != "eve" || got.LastMessage.Text != "hello" || got.LastMessage.From != "agent" {
			t.Fatalf("after the agent: %+v", got)
		}

		// Not idle yet: the deadline moved with the agent's claim.
		if ids, err := s.Idle(ctx, "b", t0.Add(2*time.Minute), 10); err != nil || len(ids) != 0 {
			t.Fatalf("Idle: %v, %v", ids, err)
		}
		if _, ok, _ := s.Release(ctx, "b", conv, t0.Add(2*time.Minute)); ok {
			t.Fatal("released before its idle deadline")
		}
		if ids, _ := s.Idle(ctx, "b", t0.Add(3*time.Minute), 10); len(ids) != 1 || ids[0] != conv {
			t.Fatalf("Idle after the deadline: %v", ids)
		}
		rel, ok, err := s.Release(ctx, "b", conv, t0.Add(3*time.Minute))
		if err != nil || !ok || rel.Agent != "eve" || rel.Queue != "support" {
			t.Fatalf("Release: %+v, %v, %v", rel, ok, err)
		}
		if _, ok, _ := s.Release(ctx, "b", conv, time.Time{}); ok {
			t.Fatal("released twice")
		}
		if page, _ := s.List(ctx, "b", "", 0, 10); page.Total != 0 || len(page.Handoffs) != 0 {
			t.Fatalf("listed after the release: %+v", page)
		}
		if keys := testredis.Keys(t, rdb, prefix+"ho:{b}:*"); len(keys) != 0 {
			t.Fatalf("left behind: %v", keys)
		}
	})
}

// TestStoreListPages: pages in the order of the handoffs, per queue.
func TestStoreListPages(t *testing.T) {
	ctx := context.Background()
	s := NewStore(testredis.Client(t), testredis.Prefix(t))
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, q := range []string{"a", "b", "a", "a", "b"} {
		st := &State{Channel: "web", Conversation: string(rune('0' + i)), Queue: q, Since: t0.Add(time.Duration(i) * time.Second)}
		if _, err := s.Start(ctx, "bot", st, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	for offset := int64(0); ; {
		page, err := s.List(ctx, "bot", "a", offset, 2)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 3 {
			t.Fatalf("total %d", page.Total)
		}
		for _, h := range page.Handoffs {
			seen = append(seen, h.Conversation)
		}
		if page.NextOffset == 0 {
			break
		}
		offset = page.NextOffset
	}
	if strings.Join(seen, ",") != "0,2,3" {
		t.Fatalf("queue a listed %v", seen)
	}
	if page, _ := s.List(ctx, "bot", "", 0, 10); page.Total != 5 || page.Handoffs[4].Conversation != "4" {
		t.Fatalf("all: %+v", page)
	}
}

// TestStoreReleaseOnce: of many concurrent releases of one conversation,
// exactly one gets it.
func TestStoreReleaseOnce(t *testing.T) {
	ctx := context.Background()
	s := NewStore(testredis.Client(t), testredis.Prefix(t))
	t0 := time.Now()
	for round := range 20 {
		conv := msg.KeyOf("web", "c")
		if _, err := s.Start(ctx, "bot", &State{Channel: "web", Conversation: "c", Queue: "q", Since: t0}, t0); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var won atomic.Int32
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok, err := s.Release(ctx, "bot", conv, t0.Add(time.Second)); err != nil {
					t.Error(err)
				} else if ok {
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("round %d: %d releases got the conversation", round, won.Load())
		}
	}
}

// TestSign: the signature is the documented recipe, checked against a
// value computed apart (Python's hmac with the same secret and text).
func TestSign(t *testing.T) {
	got := Sign("whsec-test", "1700000000", []byte(`{"event":"handoff"}`))
	if want := "sha256=1a76f1178f158ede8b2e0d05d38096f49489507566a6b17d1e4f0e15a7e7015f"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// TestCheckInAPipeline: a check sent in another round trip answers as
// Hold does, once or queued on several tries; one never sent runs alone.
func TestCheckInAPipeline(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := NewStore(rdb, testredis.Prefix(t))
		t0 := time.Now()
		conv := msg.KeyOf("web", "c")
		if _, err := s.Start(ctx, "b", &State{Channel: "web", Conversation: "c", Queue: "q", Since: t0}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		c := s.HoldCheck("b", conv, "u", "first", t0, t0.Add(time.Hour))
		for range 2 { // a begin that found the conversation busy once
			_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Ping(ctx)
				c.Queue(ctx, p)
				return nil
			})
		}
		if held, first, err := c.Result(ctx); err != nil || !held || !first {
			t.Fatalf("queued check: %v %v %v", held, first, err)
		}
		alone := s.HoldCheck("b", conv, "u", "second", t0, t0.Add(time.Hour))
		if held, first, err := alone.Result(ctx); err != nil || !held || first {
			t.Fatalf("check run alone: %v %v %v", held, first, err)
		}
		peek := s.PeekCheck("b", conv)
		if held, first, err := peek.Result(ctx); err != nil || !held || first {
			t.Fatalf("peek: %v %v %v", held, first, err)
		}
		if st, _, _ := s.Get(ctx, "b", conv); st.LastMessage.Text != "second" {
			t.Fatalf("the peek recorded a message: %+v", st.LastMessage)
		}
		if held, _, _ := s.PeekCheck("b", msg.KeyOf("web", "other")).Result(ctx); held {
			t.Fatal("another conversation is held")
		}
		// A conversation no person owns is answered by the pipeline's
		// EXISTS alone: nothing is recorded or created for it.
		other := msg.KeyOf("web", "free")
		free := s.HoldCheck("b", other, "u", "hello", t0, t0.Add(time.Hour))
		_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			free.Queue(ctx, p)
			return nil
		})
		if held, first, err := free.Result(ctx); err != nil || held || first {
			t.Fatalf("a free conversation: %v %v %v", held, first, err)
		}
		if n := rdb.Exists(ctx, s.convKey("b", other)).Val(); n != 0 {
			t.Fatal("the check of a free conversation created its hash")
		}
	})
}
