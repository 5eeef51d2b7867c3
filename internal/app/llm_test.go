package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/llm/llmtest"
)

// faqHandler answers with the bot's model, or with the refusal's message.
const faqHandler = `function handle(event, session)
  local r, err = llm.chat{messages = {{role = "system", content = "You answer questions about Pizza Bot."},
                                      {role = "user", content = event.text}}, max_tokens = 100, stream = true}
  if not r then return "no answer: " .. err end
  return r.text
end`

// TestLLMEndToEnd: a handler's llm.chat reaches the bot's model API through
// the web channel, within the bot's allow-list and daily budget, and its
// tokens show in the invocation log and the usage.
func TestLLMEndToEnd(t *testing.T) {
	model := llmtest.New(t, func(r *llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "We are open from 11 to 23.", InputTokens: 40, OutputTokens: 60}
	})
	ta := startApp(t, appOptions{})
	ta.setupBot(t, "faq", map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "llm_tokens_per_day": 150, "timeout_ms": 5000},
		map[string]string{"fallback": faqHandler})

	r := ta.say(t, "faq", map[string]any{"user": "ann", "text": "when are you open?"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "We are open from 11 to 23." {
		t.Fatalf("reply %q", got)
	}
	req := model.Requests()[0]
	if req.Model != "test-model" || req.LastUser() != "when are you open?" || !req.Stream || req.MaxTokens != 100 {
		t.Fatalf("request %s", req.Body)
	}
	// 100 tokens used of 150; the next call goes ahead and uses 100 more,
	// and the third is refused: the count is shared through the store.
	r = ta.say(t, "faq", map[string]any{"user": "bob", "text": "and on sunday?"}).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "We are open from 11 to 23." {
		t.Fatalf("second reply %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = ta.say(t, "faq", map[string]any{"user": "cid", "text": "pizza?"}).must(t, http.StatusOK)
		if firstReply(t, r) == "no answer: budget exhausted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("budget never exhausted; last reply %q", firstReply(t, r))
		}
		time.Sleep(50 * time.Millisecond) // the tokens are counted just after each call
	}

	// The tokens are metered: invocation log, daily usage, analytics by
	// intent and the metrics, all from the same calls.
	eventually(t, func() bool {
		u := do(t, "GET", ta.URL+"/v1/bots/faq/usage", adminKey, nil).must(t, http.StatusOK)
		total, _ := u.Body["total"].(map[string]any)
		calls, _ := total["llm_calls"].(float64)
		return calls >= 2 && total["llm_input_tokens"] == 40*calls && total["llm_output_tokens"] == 60*calls
	})
	logs := do(t, "GET", ta.URL+"/v1/bots/faq/logs?limit=1", adminKey, nil).must(t, http.StatusOK)
	entry := logs.Body["invocations"].([]any)[0].(map[string]any)
	if entry["llm_calls"] != nil || entry["http_calls"] != float64(1) {
		// the latest call was refused over budget: counted as a request, not as a model call
		t.Fatalf("latest log entry %v", entry)
	}
	eventually(t, func() bool {
		a := do(t, "GET", ta.URL+"/v1/bots/faq/analytics?group_by=intent", adminKey, nil).must(t, http.StatusOK)
		groups, _ := a.Body["groups"].([]any)
		for _, g := range groups {
			g := g.(map[string]any)
			tok := g["llm_tokens"].(map[string]any)
			if g["group"].(map[string]any)["intent"] == "fallback" && tok["input"].(float64) >= 80 &&
				tok["output"].(float64) == tok["input"].(float64)*1.5 {
				return true
			}
		}
		return false
	})
	metrics := get(t, ta.URL+"/metrics")
	if !strings.Contains(metrics, `parley_llm_tokens_total{bot="faq",kind="input",model="test-model"}`) ||
		!strings.Contains(metrics, `parley_llm_calls_total{bot="faq",model="test-model",outcome="refused"} 1`) {
		t.Fatalf("metrics lack the llm series:\n%s", grepLines(metrics, "parley_llm_"))
	}

	// Without http_allow naming the model's loopback address, the call is refused.
	do(t, "PUT", ta.URL+"/v1/bots/faq", adminKey, map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"timeout_ms": 5000}).must(t, http.StatusOK)
	eventually(t, func() bool {
		got := firstReply(t, ta.say(t, "faq", map[string]any{"user": "dan", "text": "hi"}))
		return strings.HasPrefix(got, "no answer: llm:") && strings.Contains(got, "non-public")
	})
	// A key secret that is not set.
	do(t, "PUT", ta.URL+"/v1/bots/faq", adminKey, map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "llm_api_key_secret": "OPENAI_API_KEY", "timeout_ms": 5000}).must(t, http.StatusOK)
	eventually(t, func() bool {
		return firstReply(t, ta.say(t, "faq", map[string]any{"user": "eve", "text": "hi"})) ==
			"no answer: no API key: secret OPENAI_API_KEY is not set"
	})
	// Once set in the bot's secret store, the key is sent as a bearer token.
	do(t, "PUT", ta.URL+"/v1/bots/faq/secrets/OPENAI_API_KEY", adminKey, map[string]string{"value": "sk-test-0123456789"}).
		must(t, http.StatusCreated)
	eventually(t, func() bool {
		return firstReply(t, ta.say(t, "faq", map[string]any{"user": "fay", "text": "hi"})) == "We are open from 11 to 23."
	})
	reqs := model.Requests()
	if got := reqs[len(reqs)-1].Header.Get("Authorization"); got != "Bearer sk-test-0123456789" {
		t.Fatalf("authorization %q", got)
	}
}

// eventually polls cond until it holds, for at most 10 seconds.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get returns the body of a GET without authentication.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
