package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
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

// toServer is a transport that sends every request to one test server,
// as if it were the host the request names.
type toServer struct{ url *url.URL }

func (s toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = s.url.Scheme, s.url.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestAlexaSaysFirstSentenceEarly: on Alexa, a streamed model answer that
// is slow to finish has its first sentence said early through a progressive
// response (Amazon's directives API, here a local fake reached through the
// channels' send client), and the response says the rest, within the budget.
func TestAlexaSaysFirstSentenceEarly(t *testing.T) {
	var mu sync.Mutex
	var directives []map[string]any
	var auth []string
	amazon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d map[string]any
		_ = json.NewDecoder(r.Body).Decode(&d)
		mu.Lock()
		if r.URL.Path == "/v1/directives" && r.Host == "api.amazonalexa.com" {
			directives, auth = append(directives, d), append(auth, r.Header.Get("Authorization"))
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(amazon.Close)
	said := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), directives...)
	}
	gate := make(chan struct{})
	model := llmtest.New(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Chunks: []string{"We open at nine. On", " Sundays at ten."}, Gate: gate}
	})
	u, _ := url.Parse(amazon.URL)
	ta := serveAppHooks(t, testConfig(t, appOptions{}), testLogger(t),
		Hooks{SendClient: &http.Client{Timeout: 5 * time.Second, Transport: toServer{u}}})
	ta.setupBot(t, "alexallm", map[string]any{"llm_base_url": model.BaseURL(), "llm_model": "test-model",
		"http_allow": []string{model.Host()}, "timeout_ms": 6000},
		map[string]string{"Ask": `function handle(event, session)
  local r, err = llm.chat{messages = {{role = "user", content = "when are you open?"}}, stream = true}
  if not r then return "No answer: " .. err end
  return r.text
end`})
	ta.connect(t, "alexallm", "alexa", map[string]string{"skill_id": testSkillID, "verify_signature": "false"})
	body := strings.Replace(string(alexaRequest("amzn1.echo-api.session.llm", true, alexaIntent("", `{"name":"Ask"}`))),
		`"apiEndpoint":"https://api.amazonalexa.com"`, `"apiEndpoint":"https://api.amazonalexa.com","apiAccessToken":"atok.llm"`, 1)

	type answer struct {
		r    response
		took time.Duration
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		r := hook(t, ta.URL+"/hooks/alexallm/alexa", http.Header{"Content-Type": {"application/json"}}, []byte(body))
		done <- answer{r, time.Since(start)}
	}()
	// The model has written its first sentence and waits: Alexa says it.
	deadline := time.Now().Add(5 * time.Second)
	for len(said()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no progressive response while the model was slow")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(gate)
	a := <-done
	if a.r.Status != http.StatusOK || a.took >= 7*time.Second {
		t.Fatalf("status %d after %v: %s", a.r.Status, a.took, a.r.Raw)
	}
	d := said()
	if len(d) != 1 || auth[0] != "Bearer atok.llm" || str(path(d[0], "directive", "type")) != "VoicePlayer.Speak" ||
		str(path(d[0], "directive", "speech")) != "<speak>We open at nine.</speak>" ||
		str(path(d[0], "header", "requestId")) == "" {
		t.Fatalf("directives %v (auth %v)", d, auth)
	}
	if got := str(path(a.r.Body, "response", "outputSpeech", "ssml")); got != "<speak>On Sundays at ten.</speak>" {
		t.Fatalf("the response says %q, want the rest: %s", got, a.r.Raw)
	}
}
