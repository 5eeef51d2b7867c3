package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestClassifierRoutesTextWithSlots: plain text is routed by the bot's
// trained classifier, slot values reach the handler as event.slots (without
// overriding slots the platform sent), and an out-of-scope message reaches
// the fallback handler with the classifier's candidates.
func TestClassifierRoutesTextWithSlots(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "pizza", nil, map[string]string{
		"Order": `function handle(e, s)
  local sl = e.slots or {}
  return "order size=" .. (sl.size or "?") .. " count=" .. (sl.count or "?") .. " via " .. e.source
end`,
		"Hours": `function handle(e, s) return "hours via " .. e.source end`,
		"fallback": `function handle(e, s)
  local c = e.candidates or {}
  local names = {}
  for i, x in ipairs(c) do names[i] = x.intent end
  return "fallback " .. #c .. ": " .. table.concat(names, ",")
end`,
	})
	do(t, "PUT", ta.URL+"/v1/bots/pizza/nlu", adminKey, map[string]any{
		"intents": map[string][]string{
			"Order": {"I want a [large](size) pizza", "order [two](count) [small](size) pizzas",
				"can I get a [medium](size) pizza please", "[3](count) pizzas for delivery", "I'd like to order pizza"},
			"Hours": {"when are you open", "what are your opening hours", "are you open on sunday", "closing time"},
			"fallback": {"what is the weather like", "tell me a joke", "who won the game yesterday",
				"how old are you"},
		},
		"slots": map[string]any{
			"size":  map[string]any{"values": map[string][]string{"large": {"big", "huge"}}},
			"count": map[string]any{"builtin": "number"},
		},
	}).must(t, http.StatusOK)

	r := ta.say(t, "pizza", map[string]any{"user": "u", "text": "Can I order two big pizzas?"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "order size=large count=2 via classifier" || r.Body["intent"] != "Order" {
		t.Fatalf("classified turn = %s", r.Raw)
	}
	// Slots the platform already gave are kept.
	r = ta.say(t, "pizza", map[string]any{"user": "u2", "text": "I want a huge pizza",
		"slots": map[string]string{"size": "small"}}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "order size=small count=? via classifier" {
		t.Fatalf("platform slot overridden: %q", got)
	}
	r = ta.say(t, "pizza", map[string]any{"user": "u3", "text": "are you open on saturday?"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "hours via classifier" {
		t.Fatalf("hours turn = %q", got)
	}
	// Out of scope: the fallback handler, with the near misses.
	r = ta.say(t, "pizza", map[string]any{"user": "u4", "text": "what's the weather like today?"}).must(t, http.StatusOK)
	got := firstReply(t, r)
	if !strings.HasPrefix(got, "fallback ") || strings.HasPrefix(got, "fallback 0") {
		t.Fatalf("out-of-scope turn = %q, want the fallback handler with candidates", got)
	}
	// The invoke API shows the decision with its candidates.
	inv := do(t, "POST", ta.URL+"/v1/bots/pizza/invoke", adminKey,
		map[string]any{"user": "u5", "text": "tell me a joke about cats"}).must(t, http.StatusOK)
	d, _ := inv.Body["decision"].(map[string]any)
	if d["source"] != "fallback" || len(d["candidates"].([]any)) == 0 {
		t.Fatalf("invoke decision = %s", inv.Raw)
	}
}
