package analytics

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
)

// TestHandoffCounts: handoffs count under the handler's intent (or none,
// for the API's) and releases apart; neither they nor agents' messages
// are turns, and agents' messages are in the transcript with the agent.
func TestHandoffCounts(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.clock.Now().Add(5 * time.Minute)
	for _, turn := range []Turn{
		{Intent: "Human", Outcome: OutcomeHandled, Handoff: true, Text: "a person please"},
		{Outcome: string(msg.OutcomeHuman), Text: "hello?"},
		{Kind: KindAgent, Agent: "dana", Reply: "Hi, Dana here"},
		{Kind: KindRelease},
		{Kind: KindHandoff},
	} {
		turn.At, turn.Bot, turn.Channel, turn.User, turn.Conversation = now, "bot", "web", "u1", "c1"
		now = now.Add(time.Second)
		f.svc.Observe(ctx, turn)
	}
	f.flush(t)
	r := f.query(t, Query{From: now.Add(-time.Hour), To: now.Add(time.Hour), Step: Hour, GroupBy: []string{DimIntent}})
	if r.Totals.Turns != 2 || r.Totals.Handoffs != 2 || r.Totals.Releases != 1 || r.Totals.Users == nil || *r.Totals.Users != 1 {
		t.Fatalf("totals: turns %d, handoffs %d, releases %d, users %d", r.Totals.Turns, r.Totals.Handoffs,
			r.Totals.Releases, r.Totals.Users)
	}
	by := map[string]Stats{}
	for _, g := range r.Groups {
		by[g.Group[DimIntent]] = g.Stats
	}
	if by["Human"].Handoffs != 1 || by[None].Handoffs != 1 || by[None].Releases != 1 {
		t.Fatalf("groups %+v", by)
	}
	for outcome, want := range map[string]float64{"handled": 1, "human": 1, "": 0} {
		if got := f.metric(t, "parley_turns_total", "bot", "bot", "outcome", outcome); got != want {
			t.Fatalf("parley_turns_total{outcome=%q} %v, want %v", outcome, got, want)
		}
	}
	c, err := f.svc.Describe(ctx, "bot", msg.KeyOf("web", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.(*Conversation).Transcript
	if len(tr) != 3 || tr[1].Outcome != "human" || tr[2].Agent != "dana" || tr[2].Reply != "Hi, Dana here" {
		t.Fatalf("transcript %+v", tr)
	}
}
