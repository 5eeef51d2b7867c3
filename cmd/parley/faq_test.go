package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/llm/llmtest"
)

// TestFAQExampleEndToEnd deploys examples/faqbot, points it at a fake
// model, and checks its three kinds of turns: a question the model answers
// from the FAQ, one it hands back (the classic fallback), and one the
// classifier routes without the model.
func TestFAQExampleEndToEnd(t *testing.T) {
	model := llmtest.New(t, func(r *llmtest.Request) llmtest.Reply {
		if strings.Contains(r.LastUser(), "deliver") {
			return llmtest.Reply{Text: "Yes: within 5 km, free over 20 euros."}
		}
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "call_1", Name: "hand_off", Arguments: `{"reason":"not in the FAQ"}`}}}
	})
	url := startServer(t)
	env := []string{"PARLEY_URL=" + url, "PARLEY_ADMIN_KEY=" + testKey, "FAQBOT_WEB_TOKEN=faq-web-token-123"}
	code, out, errOut := runCLI(t, env, "deploy", "../../examples/faqbot")
	if code != 0 {
		t.Fatalf("deploy exit %d: %s %s", code, out, errOut)
	}
	// The key the example names (llm_api_key_secret) is not set yet: deploy says so.
	if !strings.Contains(errOut, "warning: secret OPENAI_API_KEY (llm_api_key_secret) is not set") ||
		!strings.Contains(errOut, "parley secret set faqbot OPENAI_API_KEY") {
		t.Fatalf("deploy without the API key's secret: no warning in %q", errOut)
	}
	// The example names OpenAI; here the model is the fake, on loopback,
	// which http_allow must name, and without a key.
	settings, _ := json.Marshal(map[string]any{"display_name": "Pizza FAQ", "timeout_ms": 8000,
		"llm_base_url": model.BaseURL(), "llm_model": "test-model", "http_allow": []string{model.Host()}})
	req, _ := http.NewRequest(http.MethodPut, url+"/v1/bots/faqbot", bytes.NewReader(settings))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("settings: status %d", resp.StatusCode)
	}

	for _, turn := range []struct{ say, want string }{
		{"do you deliver to my street?", "Yes: within 5 km, free over 20 euros."},
		{"can I bring my dog?", "I'm not sure about that one. Did you mean one of these?"},
		{"what are your opening hours", "We're open every day from 11:00 to 23:00"},
		{"talk to a person", "I'll ask a colleague"},
	} {
		code, out, errOut := runCLI(t, env, "invoke", "faqbot", turn.say, "--user", "ann")
		if code != 0 || !strings.Contains(out, turn.want) {
			t.Fatalf("invoke %q: exit %d, output:\n%s%s\nwant it to contain %q", turn.say, code, out, errOut, turn.want)
		}
	}
	reqs := model.Requests()
	if len(reqs) != 2 || !reqs[0].Stream || !strings.Contains(reqs[0].Messages[0].Text(), "Via Roma 12") || len(reqs[0].Tools) == 0 {
		t.Fatalf("%d model requests; first %s", len(reqs), reqs[0].Body)
	}
}
