package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/llm/llmtest"
)

// TestVoiceLLMWithinBudget: on a voice channel, llm.chat ends within the
// platform's budget (Dialogflow ES waits 5 s) even when the bot allows its
// handler 30 s and the model never finishes; a call given its own
// timeout_ms below the turn's leaves the handler time to answer itself.
func TestVoiceLLMWithinBudget(t *testing.T) {
	gate := make(chan struct{})
	t.Cleanup(func() { close(gate) })
	model := llmtest.New(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "We open at nine. On Sundays at ten.", Gate: gate}
	})
	const errorReply = "Sorry, the kitchen is busy."
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "voicellm", map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "timeout_ms": 30000, "error_reply": errorReply},
		map[string]string{
			"Ask": `function handle(event, session)
  local r, err = llm.chat{messages = {{role = "user", content = event.text}}, stream = true}
  if not r then return "No answer: " .. err end
  return r.text
end`,
			"AskBounded": `function handle(event, session)
  local r, err = llm.chat{messages = {{role = "user", content = event.text}}, stream = true, timeout_ms = 1500}
  if not r then return "No answer: " .. err end
  return r.text
end`,
		})
	ta.connect(t, "voicellm", "dialogflow", map[string]string{"header_name": "X-Secret", "header_value": "dialogflow-secret"})
	h := http.Header{"Content-Type": {"application/json"}, "X-Secret": {"dialogflow-secret"}}
	turn := func(intent string) (response, time.Duration) {
		body := []byte(`{"responseId":"r-` + intent + `","session":"projects/p/agent/sessions/s-` + intent + `",` +
			`"queryResult":{"queryText":"when are you open?","intent":{"displayName":"` + intent + `"},"languageCode":"en"}}`)
		start := time.Now()
		r := hook(t, ta.URL+"/hooks/voicellm/dialogflow", h, body).must(t, http.StatusOK)
		return r, time.Since(start)
	}

	// The model is cut at the turn's deadline, which the platform's budget
	// set: the answer comes within 5 s, after most of the budget. The
	// handler ends with the call, so it says either its own words or the
	// bot's error reply.
	r, took := turn("Ask")
	if took >= 5*time.Second || took < 3*time.Second {
		t.Errorf("answered after %v; want within Dialogflow's 5 s, after most of the budget", took)
	}
	if got := r.Body["fulfillmentText"]; got != errorReply && got != "No answer: llm: timed out" {
		t.Errorf("a model slower than the budget: %s", r.Raw)
	}

	// With its own timeout_ms the call ends first, and the handler answers.
	r, took = turn("AskBounded")
	if took >= 5*time.Second {
		t.Errorf("answered after %v", took)
	}
	if got := r.Body["fulfillmentText"]; got != "No answer: llm: timed out" {
		t.Errorf("a bounded call: %s", r.Raw)
	}
	if n := len(model.Requests()); n != 2 {
		t.Errorf("%d model requests, want 2", n)
	}
}
