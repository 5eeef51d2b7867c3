package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sessions"
)

// synthetic is a reproducible mix of turns over the hours before the
// clock, with the exact figures a query must reproduce.
type synthetic struct {
	turns []Turn
	from  time.Time // first hour
	to    time.Time // end of the last hour
}

func makeTurns(now time.Time, n, users, hours int, seed uint64) *synthetic {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &synthetic{from: now.Add(-time.Duration(hours) * time.Hour), to: now}
	seen := make(map[string]bool)
	for i := 0; i < n; i++ {
		at := s.from.Add(time.Duration(rng.Int64N(int64(time.Duration(hours) * time.Hour))))
		user := fmt.Sprintf("user-%d", rng.IntN(users))
		t := Turn{At: at, Bot: "bot", Channel: []string{"web", "voice"}[rng.IntN(2)], User: user, Conversation: user,
			Text: fmt.Sprintf("message %d", i), Reply: "ok"}
		switch k := rng.IntN(10); {
		case k < 4:
			t.Intent, t.Source, t.Outcome = "Greet", "platform", OutcomeHandled
			if rng.IntN(10) == 0 {
				t.Outcome = OutcomeError
			}
		case k < 8:
			t.Intent, t.Source, t.Outcome, t.Confidence = "Order", "classifier", OutcomeHandled, 0.5+rng.Float64()/2
			if rng.IntN(20) == 0 {
				t.Outcome = OutcomeTimeout
			}
		case k < 9:
			t.Intent, t.Source, t.Outcome = "fallback", "fallback", OutcomeFallback
			t.Text = []string{"where is my order", "Where is  my ORDER", "refund please", "asdf"}[rng.IntN(4)]
		default:
			t.Source, t.Outcome = "builtin", OutcomeFallback
			t.Text = "refund please"
		}
		// Latency: log-normal around 20 ms, from well under a millisecond to seconds.
		t.Latency = time.Duration(math.Exp(math.Log(20e6)+1.2*rng.NormFloat64())) + 50*time.Microsecond
		t.HandlerTime = t.Latency / 2
		if !seen[user] {
			seen[user] = true
			t.NewConversation = true
		}
		s.turns = append(s.turns, t)
	}
	// Record in time order, as a running bot would.
	slices.SortStableFunc(s.turns, func(a, b Turn) int { return a.At.Compare(b.At) })
	first := make(map[string]bool)
	for i := range s.turns {
		t := &s.turns[i]
		t.NewConversation = !first[t.User]
		first[t.User] = true
	}
	return s
}

// exact computes the figures of the turns that pass keep.
type exactFigures struct {
	turns, conversations, fallback, errors int64
	users                                  map[string]bool
	latencies                              []time.Duration
	confidence                             float64
	confident                              int
}

func exact(turns []Turn, keep func(*Turn) bool) *exactFigures {
	e := &exactFigures{users: make(map[string]bool)}
	for i := range turns {
		t := &turns[i]
		if !keep(t) {
			continue
		}
		e.turns++
		if t.NewConversation {
			e.conversations++
		}
		switch t.Outcome {
		case OutcomeFallback:
			e.fallback++
		case OutcomeError, OutcomeTimeout:
			e.errors++
		}
		e.users[t.User] = true
		e.latencies = append(e.latencies, t.Latency)
		if t.Confidence > 0 {
			e.confidence += t.Confidence
			e.confident++
		}
	}
	slices.Sort(e.latencies)
	return e
}

// quantile is the exact nearest-rank q-quantile.
func (e *exactFigures) quantile(q float64) time.Duration {
	return e.latencies[int(math.Ceil(q*float64(len(e.latencies))))-1]
}

// checkStats compares a report's figures with the exact ones: counts
// exactly, users within the HyperLogLog's error, and percentiles within
// the histogram bin that holds the exact value.
func checkStats(t *testing.T, what string, got Stats, want *exactFigures, withUsers bool) {
	t.Helper()
	if got.Turns != want.turns || got.Conversations != want.conversations {
		t.Errorf("%s: turns %d conversations %d, want %d and %d", what, got.Turns, got.Conversations, want.turns, want.conversations)
	}
	if got.Outcomes.Fallback != want.fallback || got.Outcomes.Error+got.Outcomes.Timeout != want.errors {
		t.Errorf("%s: outcomes %v, want %d fallback and %d error or timeout", what, got.Outcomes, want.fallback, want.errors)
	}
	if want.turns > 0 {
		if r := float64(want.fallback) / float64(want.turns); math.Abs(got.FallbackRate-r) > 1e-6 {
			t.Errorf("%s: fallback rate %v, want %v", what, got.FallbackRate, r)
		}
		if r := float64(want.errors) / float64(want.turns); math.Abs(got.ErrorRate-r) > 1e-6 {
			t.Errorf("%s: error rate %v, want %v", what, got.ErrorRate, r)
		}
		for _, p := range []struct {
			q   float64
			got float64
		}{{0.50, got.LatencyMS.P50}, {0.95, got.LatencyMS.P95}, {0.99, got.LatencyMS.P99}} {
			ex := want.quantile(p.q)
			lo, hi := binRange(binOf(ex))
			if p.got < float64(lo)/1000-0.001 || p.got > float64(hi)/1000+0.001 {
				t.Errorf("%s: p%v = %.3f ms, exact %.3f ms: outside its bin [%.3f, %.3f] ms", what, p.q*100, p.got,
					float64(ex.Microseconds())/1000, float64(lo)/1000, float64(hi)/1000)
			}
		}
	}
	if want.confident > 0 {
		if got.Confidence == nil || math.Abs(*got.Confidence-want.confidence/float64(want.confident)) > 1e-3 {
			t.Errorf("%s: confidence %v, want %.4f", what, got.Confidence, want.confidence/float64(want.confident))
		}
	}
	if !withUsers {
		if got.Users != nil {
			t.Errorf("%s: users %d reported where they cannot be counted", what, *got.Users)
		}
		return
	}
	if got.Users == nil {
		t.Errorf("%s: users missing", what)
		return
	}
	if n := float64(len(want.users)); math.Abs(float64(*got.Users)-n) > math.Max(2, 0.02*n) {
		t.Errorf("%s: users %d, want %d (within 2%%)", what, *got.Users, len(want.users))
	}
}

func observeAll(f *fixture, turns []Turn) {
	for _, t := range turns {
		f.svc.Observe(context.Background(), t)
	}
}

// TestCountsMatchAnExactCount records a few thousand turns and checks every
// figure of totals, series, groups and filters against an exact count.
func TestCountsMatchAnExactCount(t *testing.T) {
	f := newFixture(t, nil)
	syn := makeTurns(f.clock.Now(), 3000, 150, 5, 1)
	observeAll(f, syn.turns)
	f.flush(t)
	all := func(*Turn) bool { return true }

	r := f.query(t, Query{From: syn.from, To: syn.to, Step: Hour})
	if len(r.Series) != 5 || !r.From.Equal(syn.from) || !r.To.Equal(syn.to) {
		t.Fatalf("series of %d buckets from %s to %s, want 5 hours from %s", len(r.Series), r.From, r.To, syn.from)
	}
	checkStats(t, "totals", r.Totals, exact(syn.turns, all), true)
	if r.Totals.NewUsers != 150 {
		t.Errorf("new users %d, want 150", r.Totals.NewUsers)
	}
	for i, p := range r.Series {
		start := *p.T
		checkStats(t, "hour "+start.Format("15:04"), p.Stats, exact(syn.turns, func(tr *Turn) bool {
			return !tr.At.Before(start) && tr.At.Before(start.Add(time.Hour))
		}), true)
		if i > 0 && !p.T.Equal(r.Series[i-1].T.Add(time.Hour)) {
			t.Errorf("series not hourly: %s after %s", p.T, r.Series[i-1].T)
		}
	}

	// The same range by minute and by day adds up to the same totals.
	for _, step := range []Step{Minute, Day} {
		r := f.query(t, Query{From: syn.from, To: syn.to, Step: step})
		var turns int64
		for _, p := range r.Series {
			turns += p.Turns
		}
		if r.Totals.Turns != 3000 || (step == Minute && turns != 3000) {
			t.Errorf("step %s: totals %d, series sum %d, want 3000", step, r.Totals.Turns, turns)
		}
	}
	// A range that is not aligned is widened to whole buckets.
	r = f.query(t, Query{From: syn.from.Add(10 * time.Minute), To: syn.from.Add(70 * time.Minute), Step: Hour})
	checkStats(t, "widened", r.Totals, exact(syn.turns, func(tr *Turn) bool { return tr.At.Before(syn.from.Add(2 * time.Hour)) }), true)

	// Group by intent: no user counts.
	r = f.query(t, Query{From: syn.from, To: syn.to, Step: Hour, GroupBy: []string{DimIntent}})
	if len(r.Groups) != 4 {
		t.Fatalf("%d intent groups, want 4: %+v", len(r.Groups), r.Groups)
	}
	for _, g := range r.Groups {
		intent := g.Group[DimIntent]
		checkStats(t, "intent "+intent, g.Stats, exact(syn.turns, func(tr *Turn) bool { return label(tr.Intent) == intent }), false)
	}
	checkStats(t, "grouped totals", r.Totals, exact(syn.turns, all), true)
	if r.Groups[0].Turns < r.Groups[len(r.Groups)-1].Turns {
		t.Errorf("groups are not largest first: %d then %d", r.Groups[0].Turns, r.Groups[len(r.Groups)-1].Turns)
	}

	// Group by channel: users per channel.
	r = f.query(t, Query{From: syn.from, To: syn.to, Step: Hour, GroupBy: []string{DimChannel}})
	for _, g := range r.Groups {
		ch := g.Group[DimChannel]
		checkStats(t, "channel "+ch, g.Stats, exact(syn.turns, func(tr *Turn) bool { return tr.Channel == ch }), true)
	}
	for _, p := range r.Series {
		start, ch := *p.T, p.Group[DimChannel]
		checkStats(t, "channel "+ch+" at "+start.Format("15:04"), p.Stats, exact(syn.turns, func(tr *Turn) bool {
			return tr.Channel == ch && !tr.At.Before(start) && tr.At.Before(start.Add(time.Hour))
		}), true)
	}

	// Combined groups and filters.
	r = f.query(t, Query{From: syn.from, To: syn.to, Step: Hour, GroupBy: []string{DimChannel, DimOutcome},
		Filters: map[string]string{DimIntent: "Greet"}})
	for _, g := range r.Groups {
		ch, out := g.Group[DimChannel], g.Group[DimOutcome]
		checkStats(t, "Greet on "+ch+" "+out, g.Stats, exact(syn.turns, func(tr *Turn) bool {
			return tr.Intent == "Greet" && tr.Channel == ch && tr.Outcome == out
		}), false)
	}
	r = f.query(t, Query{From: syn.from, To: syn.to, Filters: map[string]string{DimChannel: "voice"}})
	checkStats(t, "voice", r.Totals, exact(syn.turns, func(tr *Turn) bool { return tr.Channel == "voice" }), true)
	r = f.query(t, Query{From: syn.from, To: syn.to, Filters: map[string]string{DimIntent: "Order"}})
	checkStats(t, "Order", r.Totals, exact(syn.turns, func(tr *Turn) bool { return tr.Intent == "Order" }), false)
	if r.Step != Minute || len(r.Series) != 300 {
		t.Errorf("automatic step for 5 hours = %s with %d buckets, want 300 minutes", r.Step, len(r.Series))
	}
	r = f.query(t, Query{From: syn.from, To: syn.to, Filters: map[string]string{DimSource: "builtin"}})
	checkStats(t, "builtin", r.Totals, exact(syn.turns, func(tr *Turn) bool { return tr.Source == "builtin" }), false)
	r = f.query(t, Query{From: syn.from, To: syn.to, GroupBy: []string{DimSource}, Filters: map[string]string{DimSource: "classifier"}})
	if len(r.Groups) != 1 || r.Groups[0].Group[DimSource] != "classifier" {
		t.Errorf("source groups %+v", r.Groups)
	}
	if _, err := f.svc.Query(context.Background(), "bot", Query{From: syn.from, To: syn.to,
		GroupBy: []string{DimSource, DimChannel}}); err == nil {
		t.Error("source combined with channel was accepted")
	}
}

// TestEmbeddedStore runs the recorder and the three kinds of query on the
// embedded store (which runs scripts far slower, hence the small load).
func TestEmbeddedStore(t *testing.T) {
	f := newFixtureOn(t, testredis.Embedded(t), nil)
	syn := makeTurns(f.clock.Now(), 300, 20, 1, 5)
	observeAll(f, syn.turns)
	f.flush(t)
	all := func(*Turn) bool { return true }
	r := f.query(t, Query{From: syn.from, To: syn.to, Step: Hour})
	checkStats(t, "totals", r.Totals, exact(syn.turns, all), true)
	r = f.query(t, Query{From: syn.from, To: syn.to, Step: Hour, GroupBy: []string{DimIntent}})
	for _, g := range r.Groups {
		intent := g.Group[DimIntent]
		checkStats(t, "intent "+intent, g.Stats, exact(syn.turns, func(tr *Turn) bool { return label(tr.Intent) == intent }), false)
	}
	r = f.query(t, Query{From: syn.from, To: syn.to, Step: Hour, GroupBy: []string{DimChannel}, Filters: map[string]string{DimIntent: "Greet"}})
	for _, g := range r.Groups {
		ch := g.Group[DimChannel]
		checkStats(t, "Greet on "+ch, g.Stats, exact(syn.turns, func(tr *Turn) bool { return tr.Intent == "Greet" && tr.Channel == ch }), false)
	}
	// Redis forgot the scripts (a restart): they are sent again in full.
	if err := f.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	f.svc.Observe(context.Background(), Turn{At: syn.from.Add(time.Minute), Bot: "bot", Channel: "web", User: "new", Outcome: OutcomeHandled})
	f.flush(t)
	if r := f.query(t, Query{From: syn.from, To: syn.to, Step: Hour}); r.Totals.Turns != 301 {
		t.Errorf("after SCRIPT FLUSH: %d turns, want 301", r.Totals.Turns)
	}
}

func TestAutomaticStep(t *testing.T) {
	f := newFixtureOn(t, testredis.Embedded(t), nil)
	now := f.clock.Now()
	for _, c := range []struct {
		from time.Duration
		want Step
	}{{time.Hour, Minute}, {6 * time.Hour, Minute}, {7 * time.Hour, Hour}, {30 * 24 * time.Hour, Hour},
		{40 * 24 * time.Hour, Day}} {
		r := f.query(t, Query{From: now.Add(-c.from), To: now})
		if r.Step != c.want {
			t.Errorf("range %s: step %s, want %s", c.from, r.Step, c.want)
		}
	}
	// Minute buckets older than their retention are not chosen.
	f = newFixtureOn(t, testredis.Embedded(t), func(c *Config) { c.Retention.Minute = time.Hour })
	if r := f.query(t, Query{From: now.Add(-2 * time.Hour), To: now}); r.Step != Hour {
		t.Errorf("step %s for a range older than the minute retention, want hour", r.Step)
	}
	if _, err := f.svc.Query(context.Background(), "bot", Query{From: now.Add(-10 * 24 * time.Hour), To: now, Step: Minute}); err == nil {
		t.Error("a query of 14400 minute buckets was accepted")
	}
}

func TestNewAndReturningUsers(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	at := now.Add(-30 * time.Minute)
	observeAll(f, []Turn{
		{At: at, Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Outcome: OutcomeHandled},
		{At: at.Add(time.Second), Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Outcome: OutcomeHandled},
		{At: at, Bot: "bot", Channel: "web", User: "bob", Conversation: "c2", Outcome: OutcomeHandled},
	})
	f.flush(t)
	observeAll(f, []Turn{
		{At: at.Add(time.Minute), Bot: "bot", Channel: "web", User: "ann", Conversation: "c3", Outcome: OutcomeHandled},
		{At: at.Add(time.Minute), Bot: "bot", Channel: "web", User: "cat", Conversation: "c4", Outcome: OutcomeHandled},
	})
	f.flush(t)
	r := f.query(t, Query{From: now.Add(-time.Hour), To: now, Step: Minute})
	if r.Totals.NewUsers != 3 || r.Totals.Users == nil || *r.Totals.Users != 3 || r.Totals.Turns != 5 {
		t.Fatalf("totals %+v, want 5 turns, 3 users, all new", r.Totals)
	}
	if p := r.Series[30]; p.NewUsers != 2 || *p.Users != 2 || p.Turns != 3 {
		t.Errorf("first minute: %d new users of %d, %d turns; want 2 of 2, 3 turns", p.NewUsers, *p.Users, p.Turns)
	}
	if p := r.Series[31]; p.NewUsers != 1 || *p.Users != 2 {
		t.Errorf("second minute: %d new users of %d; want 1 (cat) of 2", p.NewUsers, *p.Users)
	}
}

func TestRejectedWebhooksAreNotTurns(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	f.clock.Set(now.Add(-time.Minute))
	f.svc.WebhookRejected("bot", "web", 401)
	f.svc.WebhookRejected("bot", "web", 503)
	f.svc.Observe(context.Background(), Turn{Bot: "bot", Channel: "web", User: "u", Conversation: "u", Intent: "A",
		Source: "platform", Outcome: OutcomeHandled, Latency: time.Millisecond})
	f.clock.Set(now)
	f.flush(t)
	r := f.query(t, Query{From: now.Add(-time.Hour), To: now})
	if r.Totals.Turns != 1 || r.Totals.Rejected != 2 || r.Totals.ErrorRate != 0 {
		t.Errorf("totals %+v, want 1 turn and 2 rejected", r.Totals)
	}
	r = f.query(t, Query{From: now.Add(-time.Hour), To: now, GroupBy: []string{DimOutcome}})
	if len(r.Groups) != 2 || r.Groups[0].Group[DimOutcome] != OutcomeRejected || r.Groups[0].Rejected != 2 || r.Groups[0].Turns != 0 {
		t.Errorf("groups %+v", r.Groups)
	}
	if got := f.metric(t, "parley_webhook_verification_failures_total", "bot", "bot", "channel", "web"); got != 1 {
		t.Errorf("verification failures = %v, want 1", got)
	}
}

// TestRetention checks each key's expiry against the retention of its kind
// and that buckets already past their retention are not written at all.
func TestRetention(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Retention = Retention{Minute: 2 * time.Hour, Hour: 3 * 24 * time.Hour, Day: 10 * 24 * time.Hour, Fallbacks: 5 * 24 * time.Hour}
	})
	ctx := context.Background()
	now := f.clock.Now()
	if err := f.svc.PutSettings(ctx, "bot", Settings{TranscriptRetention: "36h", TranscriptMaxTurns: 3}); err != nil {
		t.Fatal(err)
	}
	recent, old := now.Add(-30*time.Minute), now.Add(-5*time.Hour)
	for i := 0; i < 5; i++ {
		f.svc.Observe(ctx, Turn{At: recent.Add(time.Duration(i) * time.Second), Bot: "bot", Channel: "web", User: "u",
			Conversation: "c", Intent: "fallback", Source: "fallback", Outcome: OutcomeFallback, Text: fmt.Sprintf("t%d", i)})
	}
	f.svc.Observe(ctx, Turn{At: old, Bot: "bot", Channel: "web", User: "u", Conversation: "old", Outcome: OutcomeHandled})
	f.flush(t)

	expect := func(key string, expireAt time.Time) {
		t.Helper()
		ttl, err := f.rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := time.Until(expireAt)
		if ttl < want-time.Minute || ttl > want+time.Minute {
			t.Errorf("%s expires in %s, want about %s", key, ttl, want)
		}
	}
	k := f.svc.keys
	m, h, d := Minute.Floor(recent), Hour.Floor(recent), Day.Floor(recent)
	expect(k.counters("bot", Minute, m), m.Add(time.Minute+2*time.Hour))
	expect(k.cube("bot", Minute, m), m.Add(time.Minute+2*time.Hour))
	expect(k.users("bot", Minute, m, "web"), m.Add(time.Minute+2*time.Hour))
	expect(k.counters("bot", Hour, h), h.Add(time.Hour+3*24*time.Hour))
	expect(k.users("bot", Day, d, ""), d.Add(24*time.Hour+10*24*time.Hour))
	expect(k.fallbacks("bot", d), d.Add(24*time.Hour+5*24*time.Hour))
	// Transcripts expire after their conversation's last write.
	expect(k.transcript("bot", "web:c"), time.Now().Add(36*time.Hour))
	expect(k.conversation("bot", "web:c"), time.Now().Add(36*time.Hour))
	if n := f.rdb.LLen(ctx, k.transcript("bot", "web:c")).Val(); n != 3 {
		t.Errorf("transcript holds %d turns, want the latest 3", n)
	}
	// The old turn's minute bucket was over its retention when written.
	if n := f.rdb.Exists(ctx, k.counters("bot", Minute, Minute.Floor(old)), k.users("bot", Minute, Minute.Floor(old), "")).Val(); n != 0 {
		t.Errorf("%d minute keys written past their retention", n)
	}
	if n := f.rdb.Exists(ctx, k.counters("bot", Hour, Hour.Floor(old))).Val(); n != 1 {
		t.Error("the old turn's hour bucket is missing")
	}

	// "0" keeps no transcripts.
	if err := f.svc.PutSettings(ctx, "bot", Settings{TranscriptRetention: "0"}); err != nil {
		t.Fatal(err)
	}
	f.svc.Observe(ctx, Turn{At: recent, Bot: "bot", Channel: "web", User: "v", Conversation: "none", Outcome: OutcomeHandled, Text: "hi"})
	f.flush(t)
	if n := f.rdb.Exists(ctx, k.transcript("bot", "none"), k.conversation("bot", "none")).Val(); n != 0 {
		t.Errorf("a bot without transcripts got %d transcript keys", n)
	}
	view, err := f.svc.Settings(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	if view.Effective.TranscriptRetention != "0" || view.Effective.TranscriptMaxTurns != DefaultTranscriptMaxTurns {
		t.Errorf("effective settings %+v", view.Effective)
	}
	for _, bad := range []Settings{{TranscriptRetention: "forever"}, {TranscriptRetention: "500d"}, {TranscriptMaxTurns: 100000}} {
		if err := f.svc.PutSettings(ctx, "bot", bad); err == nil {
			t.Errorf("settings %+v accepted", bad)
		}
	}
}

func TestTranscriptsAndSensitiveTurns(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.clock.Now()
	at := now.Add(-10 * time.Minute)
	turns := []Turn{
		{At: at, Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Intent: "Greet", Source: "platform",
			Outcome: OutcomeHandled, Text: "hello", Reply: "Hi!", Latency: 3 * time.Millisecond, NewConversation: true, RequestID: "r1"},
		{At: at.Add(2 * time.Second), Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Intent: "Card",
			Source: "expect", Outcome: OutcomeHandled, Text: "4111 1111 1111 1111", Reply: "Card 4111 saved", Sensitive: true},
		{At: at.Add(time.Second), Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Intent: "fallback",
			Source: "fallback", Outcome: OutcomeFallback, Text: "my secret is swordfish", Sensitive: true},
		{At: at.Add(3 * time.Second), Bot: "bot", Channel: "web", User: "ann", Conversation: "c1", Intent: "Bye",
			Source: "classifier", Confidence: 0.9, Outcome: OutcomeHandled, Text: "bye", Reply: "Bye", EndConversation: true},
		{At: at.Add(time.Minute), Bot: "bot", Channel: "voice", User: "bob", Conversation: "c2", Outcome: OutcomeHandled, Text: "yo"},
	}
	observeAll(f, turns)
	f.flush(t)

	got, err := f.svc.Describe(ctx, "bot", "web:c1")
	if err != nil {
		t.Fatal(err)
	}
	c := got.(*Conversation)
	if len(c.Transcript) != 4 || c.Summary == nil || c.Summary.Turns != 4 || c.Summary.User != "ann" || c.Summary.Ended == nil {
		t.Fatalf("conversation %+v", c)
	}
	texts := []string{}
	for _, e := range c.Transcript {
		texts = append(texts, e.Text+"/"+e.Reply)
	}
	if want := []string{"hello/Hi!", "/", "/", "bye/Bye"}; !slices.Equal(texts, want) {
		t.Errorf("transcript texts %q, want %q (in time order, sensitive ones empty)", texts, want)
	}
	if !c.Transcript[1].Sensitive || c.Transcript[0].RequestID != "r1" || c.Transcript[3].Confidence != 0.9 {
		t.Errorf("transcript %+v", c.Transcript)
	}
	for key, val := range f.allValues(t) {
		for _, secret := range []string{"4111", "swordfish"} {
			if strings.Contains(val, secret) || strings.Contains(key, secret) {
				t.Errorf("sensitive text %q stored in %s: %q", secret, key, val)
			}
		}
	}

	list, err := f.svc.Conversations(ctx, "bot", ConversationQuery{From: now.Add(-time.Hour), To: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Conversations) != 2 || list.Conversations[0].Conversation != "c2" || list.Conversations[1].Conversation != "c1" {
		t.Fatalf("conversations %+v, want c2 then c1", list.Conversations)
	}
	list, _ = f.svc.Conversations(ctx, "bot", ConversationQuery{User: "ann", From: now.Add(-time.Hour), To: now})
	if len(list.Conversations) != 1 || list.Conversations[0].Conversation != "c1" {
		t.Errorf("ann's conversations %+v", list.Conversations)
	}
	list, _ = f.svc.Conversations(ctx, "bot", ConversationQuery{From: now.Add(-time.Hour), To: at.Add(30 * time.Second)})
	if len(list.Conversations) != 1 || list.Conversations[0].Conversation != "c1" {
		t.Errorf("conversations before bob's turn %+v", list.Conversations)
	}
	// Pages: one at a time, the next before the oldest of the last.
	list, _ = f.svc.Conversations(ctx, "bot", ConversationQuery{From: now.Add(-time.Hour), To: now, Limit: 1})
	if len(list.Conversations) != 1 || list.Conversations[0].Conversation != "c2" {
		t.Fatalf("first page %+v", list.Conversations)
	}
	for _, user := range []string{"", "bob"} {
		next, _ := f.svc.Conversations(ctx, "bot", ConversationQuery{User: user, From: now.Add(-time.Hour), To: now, Limit: 1,
			Before: list.Conversations[0].Last})
		if want := map[string]int{"": 1, "bob": 0}[user]; len(next.Conversations) != want || (want == 1 && next.Conversations[0].Conversation != "c1") {
			t.Errorf("user %q: the page before c2's last turn %+v", user, next.Conversations)
		}
	}
}

func TestFallbackUtterances(t *testing.T) {
	f := newFixture(t, nil)
	syn := makeTurns(f.clock.Now(), 2000, 100, 3, 2)
	observeAll(f, syn.turns)
	f.flush(t)
	want := make(map[string]int64)
	for _, tr := range syn.turns {
		if tr.Outcome == OutcomeFallback {
			want[normalizeUtterance(tr.Text)]++
		}
	}
	rep, err := f.svc.Fallbacks(context.Background(), "bot", FallbackQuery{From: syn.from, To: syn.to, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Utterances) != 2 {
		t.Fatalf("utterances %+v", rep.Utterances)
	}
	for _, u := range rep.Utterances {
		if u.Count != want[u.Text] {
			t.Errorf("%q counted %d, want %d", u.Text, u.Count, want[u.Text])
		}
	}
	if rep.Utterances[0].Text != "refund please" || len(want) != 3 {
		t.Errorf("top utterance %q, want %q; all: %v", rep.Utterances[0].Text, "refund please", want)
	}
}

// TestFlushAtShutdownLosesNothing records turns from many goroutines and
// stops the recorder at once: the final flush writes every turn.
func TestFlushAtShutdownLosesNothing(t *testing.T) {
	f := newFixture(t, nil) // flush interval 1h: only the final flush writes
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	now := f.clock.Now()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				f.svc.Observe(ctx, Turn{At: now.Add(-time.Minute), Bot: "bot", Channel: "web", User: fmt.Sprintf("u%d", g),
					Conversation: fmt.Sprintf("u%d", g), Outcome: OutcomeHandled, Latency: time.Millisecond})
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := f.svc.Buffered(); n != 0 {
		t.Fatalf("%d turns left in the buffer", n)
	}
	r := f.query(t, Query{From: now.Add(-time.Hour), To: now})
	if r.Totals.Turns != 4000 || *r.Totals.Users != 8 {
		t.Errorf("recorded %d turns of %d users, want 4000 of 8", r.Totals.Turns, *r.Totals.Users)
	}
	if got := f.metric(t, "parley_analytics_recorded_turns_total"); got != 4000 {
		t.Errorf("recorded turns metric = %v", got)
	}
}

func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BufferSize = 10 })
	now := f.clock.Now()
	for i := 0; i < 15; i++ {
		f.svc.Observe(context.Background(), Turn{At: now.Add(-time.Minute), Bot: "bot", Channel: "web", Outcome: OutcomeHandled})
	}
	if got := f.metric(t, "parley_analytics_dropped_turns_total", "reason", "buffer_full"); got != 5 {
		t.Errorf("dropped = %v, want 5", got)
	}
	f.flush(t)
	if r := f.query(t, Query{From: now.Add(-time.Hour), To: now}); r.Totals.Turns != 10 {
		t.Errorf("recorded %d turns, want the 10 that fitted", r.Totals.Turns)
	}
	// The buffer is reused after a flush.
	f.svc.Observe(context.Background(), Turn{At: now.Add(-time.Minute), Bot: "bot", Channel: "web", Outcome: OutcomeHandled})
	if f.svc.Buffered() != 1 {
		t.Errorf("buffered %d after a flush and one turn", f.svc.Buffered())
	}
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)
	q, err := ParseQuery(map[string][]string{"from": {"-7d"}, "to": {"2026-11-25T12:00:00+01:00"}, "step": {"day"},
		"group_by": {"channel,intent", "outcome"}, "channel": {"web"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !q.From.Equal(now.Add(-7*24*time.Hour)) || !q.To.Equal(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)) ||
		q.Step != Day || !slices.Equal(q.GroupBy, []string{"channel", "intent", "outcome"}) || q.Filters["channel"] != "web" {
		t.Errorf("query %+v", q)
	}
	q, _ = ParseQuery(nil, now)
	if !q.To.Equal(now) || !q.From.Equal(now.Add(-24*time.Hour)) || q.Step != "" {
		t.Errorf("defaults %+v", q)
	}
	for _, bad := range []map[string][]string{{"from": {"yesterday"}}, {"from": {"-1h"}, "to": {"-2h"}},
		{"step": {"week"}}, {"group_by": {"user"}}, {"to": {"-x"}}} {
		if _, err := ParseQuery(bad, now); err == nil {
			t.Errorf("%v accepted", bad)
		} else if qe := (*QueryError)(nil); !errors.As(err, &qe) {
			t.Errorf("%v: error %T, want *QueryError", bad, err)
		}
	}
}

func TestPercentileWithinBin(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 50; trial++ {
		n := 1 + rng.IntN(5000)
		bins := make([]int64, numBins)
		vals := make([]time.Duration, n)
		for i := range vals {
			vals[i] = time.Duration(rng.ExpFloat64() * float64(time.Duration(1+rng.IntN(500))*time.Millisecond))
			bins[binOf(vals[i])]++
		}
		slices.Sort(vals)
		for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 1} {
			ex := vals[int(math.Ceil(q*float64(n)))-1]
			lo, hi := binRange(binOf(ex))
			if got := percentile(bins, q); got < float64(lo)/1000 || got > float64(hi)/1000 {
				t.Fatalf("n=%d p%v = %.3f ms, exact %v in bin [%d, %d] µs", n, q, got, ex, lo, hi)
			}
		}
	}
	if len(bounds)+1 != numBins {
		t.Fatalf("%d bounds for %d bins", len(bounds), numBins)
	}
	if percentile(make([]int64, numBins), 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
	for i := 1; i < len(bounds); i++ {
		if r := float64(bounds[i]) / float64(bounds[i-1]); r > 1.34 {
			t.Errorf("bin %d is %.2f times its lower bound", i, r)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	f := newFixtureOn(b, testredis.Embedded(b), func(c *Config) { c.BufferSize = 1 << 30 })
	t := Turn{Bot: "bot", Channel: "web", User: "u", Conversation: "c", Intent: "Greet", Source: "platform",
		Outcome: OutcomeHandled, Latency: 2 * time.Millisecond, Text: "hello", Reply: "hi"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.svc.Observe(ctx, t)
	}
}

// TestEraseUser erases one of two users: nothing that names the erased user
// is left, the other user's data and the aggregates are untouched, and a
// late turn from before the erasure is not indexed again.
func TestEraseUser(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.clock.Now()
	at := now.Add(-20 * time.Minute)
	const ann, bob = "ann-7f3", "bob-2c9"
	for _, s := range []struct {
		user string
		conv msg.ConversationKey
	}{{ann, msg.KeyOf("web", ann)}, {ann, msg.KeyOf("voice", "call-"+ann)}, {ann, msg.KeyOf("web", "shared-9")},
		{bob, msg.KeyOf("web", bob)}, {bob, msg.KeyOf("telegram", "shared-9")}} {
		turn, err := f.sessions.Begin(ctx, "bot", s.conv, sessions.Options{User: s.user})
		if err != nil {
			t.Fatal(err)
		}
		st := turn.State
		st.Data["caller"] = string(s.conv)
		st.Turns++
		if err := f.sessions.Commit(ctx, turn, sessionsCommit(st, string(s.conv))); err != nil {
			t.Fatal(err)
		}
	}
	turns := []Turn{
		{At: at, Bot: "bot", Channel: "web", User: ann, Conversation: ann, Intent: "Greet", Source: "platform", Outcome: OutcomeHandled, Text: "hi", NewConversation: true},
		{At: at.Add(time.Second), Bot: "bot", Channel: "web", User: ann, Conversation: ann, Intent: "fallback", Source: "fallback", Outcome: OutcomeFallback, Text: "cancel my account"},
		{At: at.Add(time.Minute), Bot: "bot", Channel: "voice", User: ann, Conversation: "call-" + ann, Intent: "Greet", Source: "platform", Outcome: OutcomeHandled, Text: "hello", NewConversation: true},
		{At: at, Bot: "bot", Channel: "web", User: bob, Conversation: bob, Intent: "fallback", Source: "fallback", Outcome: OutcomeFallback, Text: "Cancel my account", NewConversation: true},
	}
	observeAll(f, turns)
	f.flush(t)
	before := f.query(t, Query{From: now.Add(-time.Hour), To: now})

	er, err := f.svc.Erase(ctx, "bot", ann)
	if err != nil {
		t.Fatal(err)
	}
	// ann's conversations on every channel, the one analytics never saw
	// included; not bob's conversation of the same id on another channel.
	want := []ErasedConversation{{"voice", "call-" + ann}, {"web", ann}, {"web", "shared-9"}}
	if !slices.Equal(er.Conversations, want) || er.Removed[RemovedFallbacks] != 1 || er.Removed[RemovedSessions] != 3 ||
		er.Removed[RemovedHistories] != 3 || er.Removed[RemovedTranscripts] != 2 {
		t.Errorf("erasure %+v, want conversations %v, 3 sessions and histories, 2 transcripts, 1 utterance", er, want)
	}
	// A turn of ann's from before the erasure, still on its way, arrives late.
	f.svc.Observe(ctx, Turn{At: at.Add(2 * time.Minute), Bot: "bot", Channel: "web", User: ann, Conversation: ann,
		Intent: "fallback", Source: "fallback", Outcome: OutcomeFallback, Text: "delete me"})
	f.flush(t)

	for key, val := range f.allValues(t) {
		if strings.Contains(key, ann) || strings.Contains(val, ann) || strings.Contains(val, "delete me") {
			t.Errorf("after erasure %s still names the user: %q", key, val)
		}
	}
	for _, conv := range []msg.ConversationKey{msg.KeyOf("web", ann), msg.KeyOf("voice", "call-"+ann)} {
		if _, ok, _ := f.sessions.Get(ctx, "bot", conv); ok {
			t.Errorf("session %s survived the erasure", conv)
		}
	}
	for _, conv := range []msg.ConversationKey{msg.KeyOf("web", bob), msg.KeyOf("telegram", "shared-9")} {
		if _, ok, _ := f.sessions.Get(ctx, "bot", conv); !ok {
			t.Errorf("bob's session %s was erased", conv)
		}
	}
	c, _ := f.svc.Describe(ctx, "bot", msg.KeyOf("web", bob))
	if conv := c.(*Conversation); len(conv.Transcript) != 1 || !conv.Active {
		t.Errorf("bob's conversation %+v", conv)
	}
	fb, err := f.svc.Fallbacks(ctx, "bot", FallbackQuery{From: now.Add(-time.Hour), To: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Utterances) != 1 || fb.Utterances[0] != (Utterance{Text: "cancel my account", Count: 1}) {
		t.Errorf("fallbacks after erasure %+v, want bob's utterance only", fb.Utterances)
	}
	after := f.query(t, Query{From: now.Add(-time.Hour), To: now})
	if after.Totals.Turns != before.Totals.Turns+1 || *after.Totals.Users != 2 {
		t.Errorf("aggregates after erasure: %d turns of %d users, want %d turns (one late) of 2", after.Totals.Turns,
			*after.Totals.Users, before.Totals.Turns+1)
	}
	list, _ := f.svc.Conversations(ctx, "bot", ConversationQuery{User: ann, From: now.Add(-time.Hour), To: now})
	if len(list.Conversations) != 0 {
		t.Errorf("ann still has conversations: %+v", list.Conversations)
	}

	// After the erasure, ann is a new user again.
	f.svc.Observe(ctx, Turn{At: now.Add(time.Second), Bot: "bot", Channel: "web", User: ann, Conversation: ann, Outcome: OutcomeHandled})
	f.flush(t)
	list, _ = f.svc.Conversations(ctx, "bot", ConversationQuery{User: ann, From: now.Add(-time.Hour), To: now.Add(time.Hour)})
	if len(list.Conversations) != 1 {
		t.Errorf("ann's new conversation is not indexed: %+v", list.Conversations)
	}
}

func sessionsCommit(st sessions.State, text string) sessions.Commit {
	return sessions.Commit{State: st, History: &sessions.HistoryEntry{Text: text}}
}

func TestCountsEncoding(t *testing.T) {
	var c counts
	c[cTurns], c[cLatency], c[cBins+7], c[numCounts-1] = 3, 123456789012, 2, -4
	var back counts
	back.decode(c.encode())
	if back != c {
		t.Fatalf("decode(encode(c)) = %v, want %v", back, c)
	}
	back.decode("0:2,x:9,5:1z,1000:4,,7")
	if back[cTurns] != 5 || back[cHandler] != 0 {
		t.Errorf("malformed pairs were not skipped: %v", back[:8])
	}
}

func FuzzCountsDecode(f *testing.F) {
	f.Add("0:1,4:1234,77:-2")
	f.Fuzz(func(t *testing.T, s string) {
		var c counts
		c.decode(s) // must not panic
		var back counts
		back.decode(c.encode())
		if back != c {
			t.Fatalf("round trip of %v failed", c)
		}
	})
}

// BenchmarkFlush measures the recorder's background cost per turn: 3000
// turns (of 64 users, or of 3000 users, one turn each) written in one
// flush, transcripts included. Together with BenchmarkObserve (the cost on the turn itself)
// it is the recording overhead.
func BenchmarkFlush(b *testing.B) {
	for _, users := range []int{64, 3000} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) { benchmarkFlush(b, users) })
	}
}

// benchmarkFlush flushes 3,000 turns of the given number of users per
// operation, and reports per turn the time, the CPU of this process and
// that of Redis (redis-us/turn counts every client of the server: it means
// something on a Redis of the benchmark's own).
func benchmarkFlush(b *testing.B, users int) {
	f := newFixture(b, func(c *Config) { c.BufferSize = 1 << 30 })
	ctx := context.Background()
	const perFlush = 3000
	now := f.clock.Now()
	var cpu, redisCPU time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := 0; i < perFlush; i++ {
			u := fmt.Sprintf("u%d", i%users)
			f.svc.Observe(ctx, Turn{At: now.Add(-time.Minute), Bot: "bot", Channel: "web", User: u, Conversation: u,
				Intent: "Greet", Source: "platform", Outcome: OutcomeHandled, Latency: 300 * time.Microsecond,
				HandlerTime: 50 * time.Microsecond, Text: "hello", Reply: "Hello " + u, RequestID: "0f8c2b1e-5d1a-4c1b-9a43-1f6a1f0b9c11"})
		}
		c0, r0 := testredis.ProcessCPU(), testredis.CPU(b, f.rdb)
		b.StartTimer()
		if err := f.svc.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += testredis.ProcessCPU() - c0
		redisCPU += testredis.CPU(b, f.rdb) - r0
		b.StartTimer()
	}
	turns := float64(b.N * perFlush)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/turns, "ns/turn")
	b.ReportMetric(float64(cpu.Nanoseconds())/turns, "cpu-ns/turn")
	b.ReportMetric(float64(redisCPU.Nanoseconds())/turns, "redis-ns/turn")
}

// FuzzEntryJSON checks the transcript entry writer against encoding/json:
// its output is valid JSON that decodes to the same entry.
func FuzzEntryJSON(f *testing.F) {
	f.Add("hello \"you\"\n", "héllo\u2028\x01", "Greet", 0.75, 12.5, true)
	f.Add("\xff\xfe bad utf-8", "", "", 0.0, 0.0, false)
	f.Fuzz(func(t *testing.T, text, reply, intent string, conf, lat float64, flag bool) {
		if math.IsNaN(conf) || math.IsInf(conf, 0) || math.IsNaN(lat) || math.IsInf(lat, 0) {
			return
		}
		e := Entry{Time: time.Date(2026, 11, 25, 14, 3, 4, 5006, time.UTC), User: "u", Channel: "web", Text: text,
			Reply: reply, Sensitive: flag, Intent: intent, Source: "classifier", Confidence: conf, Outcome: "handled",
			LatencyMS: lat, HandlerMS: lat / 2, NewSession: flag, EndSession: !flag, RequestID: "r-1"}
		raw := e.appendJSON(nil)
		var got Entry
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		want := e
		viaJSON := func(s string) string { // what encoding/json makes of s
			raw, _ := json.Marshal(s)
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		want.Text, want.Reply, want.Intent = viaJSON(text), viaJSON(reply), viaJSON(intent)
		if !got.Time.Equal(want.Time) {
			t.Fatalf("time %v, want %v", got.Time, want.Time)
		}
		got.Time = want.Time
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s decodes to %+v, want %+v", raw, got, want)
		}
	})
}

// TestCountsPostback: turns routed by a button's payload are a source of
// their own, counted after the histogram so that stored indexes keep their
// meaning, and outside the latency percentiles.
func TestCountsPostback(t *testing.T) {
	var c counts
	c.add(&Turn{Outcome: OutcomeHandled, Source: "postback", Latency: 5 * time.Millisecond})
	c.add(&Turn{Outcome: OutcomeHandled, Source: "expect", Latency: 5 * time.Millisecond})
	st := c.stats(nil)
	if st.Turns != 2 || st.Sources.Postback != 1 || st.Sources.Expect != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(c.bins()); n != numBins {
		t.Fatalf("%d bins, want %d", n, numBins)
	}
	if cPostback <= cBins {
		t.Fatal("the postback count moved the histogram's indexes")
	}
}

// BenchmarkFlushHold measures what a flush does to the turns beside it on a
// single core (GOMAXPROCS=1, as a replica pinned to one core runs): while
// 10,000 turns of 10,000 users are written, a probe goroutine sleeps 200 µs
// at a time and records how late it wakes, which is how long a runnable
// turn had to wait for the processor. It reports the worst and the mean
// lateness (max-late-us, mean-late-us), and the flush's Redis commands that
// took over a millisecond (slow-cmds, the longest in max-redis-us; from
// SLOWLOG, so on a Redis of the benchmark's own). Wall times: on a busy
// machine, whatever else runs on the cores shows in them too.
func BenchmarkFlushHold(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.BufferSize = 1 << 30 })
	ctx := context.Background()
	const perFlush = 10_000
	now := f.clock.Now()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	slowlog := func(args ...any) {
		if err := f.rdb.Do(ctx, append([]any{"config", "set"}, args...)...).Err(); err != nil {
			b.Skipf("cannot set the slow log: %v", err)
		}
	}
	var worst, sum time.Duration
	var wakes int
	var maxRedis time.Duration
	var slow int
	for b.Loop() {
		b.StopTimer()
		for i := 0; i < perFlush; i++ {
			u := fmt.Sprintf("u%d", i)
			f.svc.Observe(ctx, Turn{At: now.Add(-time.Minute), Bot: "bot", Channel: "web", User: u, Conversation: u,
				Intent: "Greet", Source: "platform", Outcome: OutcomeHandled, Latency: 300 * time.Microsecond,
				HandlerTime: 50 * time.Microsecond, Text: "hello", Reply: "Hello " + u, RequestID: "0f8c2b1e-5d1a-4c1b-9a43-1f6a1f0b9c11"})
		}
		slowlog("slowlog-log-slower-than", "1000", "slowlog-max-len", "10000")
		if err := f.rdb.Do(ctx, "slowlog", "reset").Err(); err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			const nap = 200 * time.Microsecond
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				time.Sleep(nap)
				late := time.Since(t0) - nap
				sum += late
				wakes++
				worst = max(worst, late)
			}
		}()
		b.StartTimer()
		if err := f.svc.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		close(stop)
		<-done
		logs, err := f.rdb.SlowLogGet(ctx, -1).Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range logs {
			if name := strings.ToLower(fmt.Sprint(l.Args[0])); name != "config" && name != "slowlog" {
				maxRedis = max(maxRedis, l.Duration)
				slow++
			}
		}
		slowlog("slowlog-log-slower-than", "10000", "slowlog-max-len", "128")
		b.StartTimer()
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-late-us")
	b.ReportMetric(float64(sum.Microseconds())/float64(max(wakes, 1)), "mean-late-us")
	b.ReportMetric(float64(maxRedis.Microseconds()), "max-redis-us")
	b.ReportMetric(float64(slow)/float64(b.N), "slow-cmds")
}

// TestEntryRich: a turn's rich parts are kept as they are, and dropped
// with the texts of a sensitive turn.
func TestEntryRich(t *testing.T) {
	rich := json.RawMessage(`[{"options":["Yes","No"]},{"buttons":[{"title":"Site","url":"https://example.com/"}]}]`)
	turn := &Turn{At: time.Date(2026, 11, 25, 14, 3, 4, 0, time.UTC), Text: "hi", Reply: "Pick one", Rich: rich, Outcome: "handled"}
	var got Entry
	e := entryOf(turn)
	if err := json.Unmarshal(e.appendJSON(nil), &got); err != nil {
		t.Fatal(err)
	}
	if string(got.Rich) != string(rich) || got.Reply != "Pick one" {
		t.Fatalf("entry %+v, rich %s", got, got.Rich)
	}
	turn.Sensitive = true
	e = entryOf(turn)
	if raw := e.appendJSON(nil); strings.Contains(string(raw), "rich") || strings.Contains(string(raw), "Yes") {
		t.Fatalf("a sensitive turn keeps %s", raw)
	}
}
