package analytics

import (
	"context"
	"testing"
	"time"
)

// TestLLMTokensByIntent: the turns' model tokens add up per bucket and
// can be grouped by intent.
func TestLLMTokensByIntent(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	now := f.clock.Now().Add(5 * time.Minute)
	for _, turn := range []Turn{
		{Intent: "Answer", LLMInputTokens: 100, LLMOutputTokens: 30},
		{Intent: "Answer", LLMInputTokens: 60, LLMOutputTokens: 20},
		{Intent: "Greet"},
	} {
		turn.At, turn.Bot, turn.Channel, turn.User, turn.Conversation, turn.Outcome = now, "bot", "web", "u1", "c1", OutcomeHandled
		f.svc.Observe(ctx, turn)
	}
	f.flush(t)
	r := f.query(t, Query{From: now.Add(-time.Hour), To: now.Add(time.Hour), Step: Hour, GroupBy: []string{DimIntent}})
	if r.Totals.LLMTokens != (LLMTokens{Input: 160, Output: 50}) {
		t.Fatalf("totals %+v", r.Totals.LLMTokens)
	}
	by := map[string]LLMTokens{}
	for _, g := range r.Groups {
		by[g.Group[DimIntent]] = g.LLMTokens
	}
	if by["Answer"] != (LLMTokens{Input: 160, Output: 50}) || by["Greet"] != (LLMTokens{}) {
		t.Fatalf("groups %+v", by)
	}
}
