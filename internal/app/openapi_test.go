package app

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/parleyhq/parley/docs"
	"github.com/parleyhq/parley/gateway"
)

// apiSpec is the served OpenAPI description with a validator for real
// requests and answers.
type apiSpec struct {
	doc libopenapi.Document
	v   validator.Validator
}

func loadSpec(t *testing.T) *apiSpec {
	t.Helper()
	doc, err := libopenapi.NewDocument(docs.OpenAPIYAML())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	return &apiSpec{doc: doc, v: v}
}

// operations lists the document's operations as "METHOD /path".
func (s *apiSpec) operations(t *testing.T) []string {
	t.Helper()
	model, err := s.doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversRoutes holds the description and the router to each
// other: every route the server answers is documented, and every documented
// operation is answered by a route (a documented literal segment, as in
// /hooks/{bot}/web, may be served by a route's parameter).
func TestOpenAPICoversRoutes(t *testing.T) {
	ta := startApp(t, appOptions{})
	lister, ok := ta.Handler().(interface{ Routes() []gateway.Route })
	if !ok {
		t.Fatalf("the handler %T does not list its routes", ta.Handler())
	}
	var routes []string
	for _, r := range lister.Routes() {
		routes = append(routes, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(routes)
	ops := loadSpec(t).operations(t)
	if len(routes) < 40 || len(ops) < 40 {
		t.Fatalf("%d routes and %d documented operations; want at least 40 of each", len(routes), len(ops))
	}
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, op := range ops {
		if !slices.ContainsFunc(routes, func(r string) bool { return servedBy(op, r) }) {
			t.Errorf("docs/openapi.yaml describes %s, which the server does not answer", op)
		}
	}
}

// servedBy reports whether the route (both "METHOD /path") answers the
// documented operation.
func servedBy(op, route string) bool {
	om, opath, _ := strings.Cut(op, " ")
	rm, rpath, _ := strings.Cut(route, " ")
	os, rs := strings.Split(opath, "/"), strings.Split(rpath, "/")
	if om != rm || len(os) != len(rs) {
		return false
	}
	for i := range os {
		if os[i] != rs[i] && !strings.HasPrefix(rs[i], "{") {
			return false
		}
	}
	return true
}

func TestOpenAPIServed(t *testing.T) {
	ta := startApp(t, appOptions{})
	r := do(t, "GET", ta.URL+"/v1/openapi.json", "", nil).must(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	want, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if r.Raw != string(want) {
		t.Fatal("GET /v1/openapi.json is not the converted docs/openapi.yaml")
	}
	if r.Body["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", r.Body["openapi"])
	}
}

// checker sends requests and validates each request and its answer against
// the description.
type checker struct {
	t       *testing.T
	spec    *apiSpec
	base    string
	checked map[string]bool // "METHOD /path status" seen
}

// call sends a request (body: nil, a string sent as text/plain, or a value
// sent as JSON), checks it and its answer against the description, and
// fails unless the status is want. A 4xx answer is checked alone.
func (c *checker) call(method, path, token string, body any, want int) response {
	c.t.Helper()
	var raw []byte
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		raw, contentType = []byte(b), "text/plain"
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			c.t.Fatal(err)
		}
		contentType = "application/json"
	}
	newRequest := func() *http.Request {
		req, err := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
		if err != nil {
			c.t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req
	}
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(newRequest())
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(answer)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(answer) > 0 {
		if err := json.Unmarshal(answer, &out.Body); err != nil {
			c.t.Fatalf("%s %s: answer is not JSON: %q", method, path, answer)
		}
	}
	if out.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, out.Status, want, answer)
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	resp.Request = newRequest()
	// A request the server refuses as bad input may break the description
	// too (that is why it is refused): only its answer is checked then.
	validate := c.spec.v.ValidateHttpRequestResponse
	if want >= 400 && want < 500 {
		validate = c.spec.v.ValidateHttpResponse
	}
	if ok, errs := validate(newRequest(), resp); !ok {
		for _, e := range errs {
			c.t.Errorf("%s %s -> %d: %s: %s", method, path, out.Status, e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				c.t.Errorf("    at %s (%s): %s", se.FieldPath, se.KeywordLocation, se.Reason)
			}
		}
		c.t.Errorf("    answer: %.600s", answer)
	}
	u, _ := url.Parse(path)
	c.checked[method+" "+u.Path] = true
	return out
}

// TestOpenAPIDescribesAnswers runs a bot's life through the API (create it,
// connect the web channel, deploy, roll out a canary, train NLU, talk to it,
// read its logs, usage, analytics and conversations, schedule it, erase a
// user, delete it) and checks every request and answer, errors included,
// against the description.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	ta := startApp(t, appOptions{})
	c := &checker{t: t, spec: loadSpec(t), base: ta.URL, checked: map[string]bool{}}
	const bot = "/v1/bots/pizza"

	c.call("GET", "/healthz", "", nil, http.StatusOK)
	c.call("GET", "/readyz", "", nil, http.StatusOK)
	c.call("GET", "/metrics", "", nil, http.StatusOK)
	c.call("GET", "/v1/openapi.json", "", nil, http.StatusOK)
	c.call("GET", "/console", "", nil, http.StatusMovedPermanently)
	c.call("GET", "/console/console.js", "", nil, http.StatusOK)

	// Bots and channels.
	c.call("GET", "/v1/bots", "", nil, http.StatusUnauthorized)
	c.call("GET", "/v1/bots", "wrong-key", nil, http.StatusUnauthorized)
	c.call("GET", bot, adminKey, nil, http.StatusNotFound)
	c.call("PUT", bot, adminKey, map[string]any{"display_name": "Pizza", "timeout_ms": 800, "http_allow": []string{"api.example.com"}},
		http.StatusCreated)
	c.call("PUT", bot, adminKey, map[string]any{"timeout_ms": 900}, http.StatusOK)
	c.call("PUT", bot, adminKey, map[string]any{"timeout_ms": 99999}, http.StatusBadRequest)
	c.call("PUT", bot, adminKey, map[string]any{"no_such_setting": 1}, http.StatusBadRequest)
	c.call("GET", "/v1/bots", adminKey, nil, http.StatusOK)
	c.call("PUT", bot+"/channels/web", adminKey, map[string]string{"token": webToken}, http.StatusOK)
	c.call("PUT", bot+"/channels/web", adminKey, map[string]string{"token": "short"}, http.StatusBadRequest)
	c.call("PUT", bot+"/channels/carrier-pigeon", adminKey, map[string]string{"x": "y"}, http.StatusNotFound)
	c.call("GET", bot+"/channels/web", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/channels/slack", adminKey, nil, http.StatusNotFound)
	c.call("GET", bot+"/channels", adminKey, nil, http.StatusOK)

	// Intents, versions, canaries and rollbacks.
	hi1 := `function handle(event, session) log("hello from v1") return "Hi! (1)" end`
	hi2 := `function handle(event, session) return {text = "Hi! (2)", options = {"menu", "order"}} end`
	hi3 := `function handle(event, session) return "Hi! (3)" end`
	c.call("PUT", bot+"/intents/Hi", adminKey, hi1, http.StatusCreated)
	c.call("PUT", bot+"/intents/Hi", adminKey, hi1, http.StatusOK)
	r := c.call("PUT", bot+"/intents/Broken", adminKey, "function handle(", http.StatusBadRequest)
	if !strings.HasPrefix(r.errCode(), "lua_") {
		t.Errorf("a syntax error answered %s", r.Raw)
	}
	c.call("PUT", bot+"/intents/Fail", adminKey, `function handle(event) error("no pizza today") end`, http.StatusCreated)
	c.call("PUT", bot+"/intents/Hi?canary=50", adminKey, hi2, http.StatusCreated)
	c.call("PUT", bot+"/intents/Hi", adminKey, hi3, http.StatusConflict)
	c.call("PUT", bot+"/intents/Hi/canary", adminKey, map[string]int{"percent": 0}, http.StatusOK)
	c.call("GET", bot, adminKey, nil, http.StatusOK)
	c.call("POST", bot+"/intents/Hi/canary/promote", adminKey, nil, http.StatusOK)
	c.call("PUT", bot+"/intents/Hi?canary=10", adminKey, hi3, http.StatusCreated)
	c.call("POST", bot+"/intents/Hi/canary/abort", adminKey, nil, http.StatusOK)
	c.call("POST", bot+"/intents/Hi/canary/abort", adminKey, nil, http.StatusNotFound)
	c.call("GET", bot+"/intents", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/intents/Hi", adminKey, nil, http.StatusOK)
	c.call("POST", bot+"/intents/Hi/rollback", adminKey, map[string]int{"version": 1}, http.StatusOK)
	c.call("POST", bot+"/intents/Hi/rollback", adminKey, map[string]int{"version": 99}, http.StatusNotFound)
	c.call("GET", bot+"/intents/Nope", adminKey, nil, http.StatusNotFound)

	// NLU.
	c.call("GET", bot+"/nlu", adminKey, nil, http.StatusOK)
	c.call("PUT", bot+"/nlu", adminKey, map[string]any{
		"intents": map[string][]string{"Hi": {"hello", "hi there", "good morning"}, "Fail": {"i want a [large](size) pizza", "a pizza please"}},
		"slots":   map[string]any{"size": map[string]any{"values": map[string][]string{"large": {"big"}, "small": nil}}},
	}, http.StatusOK)
	c.call("GET", bot+"/nlu", adminKey, nil, http.StatusOK)

	// The web channel and invoke.
	c.call("POST", "/hooks/pizza/web", "", map[string]any{"user": "alice", "text": "hello"}, http.StatusUnauthorized)
	c.call("POST", "/hooks/pizza/web", webToken, map[string]any{"text": "hello"}, http.StatusBadRequest)
	r = c.call("POST", "/hooks/pizza/web", webToken, map[string]any{"user": "alice", "text": "hello", "id": "m1"}, http.StatusOK)
	if firstReply(t, r) != "Hi! (1)" {
		t.Errorf("web answer %s", r.Raw)
	}
	c.call("POST", "/hooks/pizza/web", webToken, map[string]any{"user": "alice", "intent": "Fail", "slots": map[string]string{"size": "large"}},
		http.StatusOK)
	c.call("POST", "/hooks/pizza/web", webToken, map[string]any{"user": "bob", "text": "what is the weather on mars"}, http.StatusOK)
	// A rich answer, and a button press.
	c.call("PUT", bot+"/intents/Menu", adminKey, `function handle(event)
  return {text = "Menu (" .. tostring(event.postback) .. ")",
    buttons = {{title = "Order", payload = "Hi"}, {title = "Website", url = "https://example.com"}},
    cards = {{title = "Margherita", subtitle = "Tomato", image = "https://example.com/m.jpg",
              buttons = {{title = "Add", payload = "add:margherita"}}}},
    media = {{type = "image", url = "https://example.com/menu.png", caption = "Menu"}},
    channel_data = {web = {theme = "dark"}, slack = {blocks = {}}}}
end`, http.StatusCreated)
	r = c.call("POST", "/hooks/pizza/web", webToken, map[string]any{"user": "dave", "postback": "Menu"}, http.StatusOK)
	if firstReply(t, r) != "Menu (Menu)" || !strings.Contains(r.Raw, `"channel_data":{"theme":"dark"}`) ||
		!strings.Contains(r.Raw, `"payload":"add:margherita"`) {
		t.Errorf("rich web answer %s", r.Raw)
	}
	r = c.call("POST", "/hooks/pizza/web", webToken, map[string]any{"user": "dave", "postback": "Hi"}, http.StatusOK)
	if firstReply(t, r) != "Hi! (1)" {
		t.Errorf("a press naming an intent answered %s", r.Raw)
	}
	c.call("POST", "/hooks/nobody/web", webToken, map[string]any{"user": "alice", "text": "hello"}, http.StatusUnauthorized)
	c.call("POST", "/hooks/nobody/web", adminKey, map[string]any{"user": "alice", "text": "hello"}, http.StatusNotFound)
	c.call("POST", "/hooks/pizza/slack", "", map[string]any{"type": "url_verification"}, http.StatusUnauthorized)
	c.call("GET", "/hooks/pizza/carrier-pigeon", adminKey, nil, http.StatusNotFound)
	r = c.call("POST", bot+"/invoke", adminKey, map[string]any{"user": "carol", "text": "hello"}, http.StatusOK)
	if logs, _ := r.Body["logs"].([]any); len(logs) != 1 {
		t.Errorf("invoke logs: %s", r.Raw)
	}
	r = c.call("POST", bot+"/invoke", adminKey, map[string]any{"user": "carol", "intent": "Fail"}, http.StatusOK)
	if r.Body["error"] == nil {
		t.Errorf("a failing handler's invoke has no error: %s", r.Raw)
	}
	c.call("POST", bot+"/invoke", adminKey, `{"user": "carol"`, http.StatusBadRequest)

	// What was recorded. Turns reach analytics and the logs in the background.
	if err := ta.obs.analytics.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ta.invocations.Flush(t.Context())
	r = c.call("GET", bot+"/logs?limit=10", adminKey, nil, http.StatusOK)
	if list, _ := r.Body["invocations"].([]any); len(list) == 0 {
		t.Errorf("no invocations logged: %s", r.Raw)
	}
	c.call("GET", bot+"/logs?outcome=error", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/logs?outcome=sideways", adminKey, nil, http.StatusBadRequest)
	c.call("GET", bot+"/usage", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/usage?from=yesterday", adminKey, nil, http.StatusBadRequest)
	r = c.call("GET", bot+"/analytics?from=-1h", adminKey, nil, http.StatusOK)
	if totals, _ := r.Body["totals"].(map[string]any); totals["turns"] == float64(0) {
		t.Errorf("no turns in analytics: %s", r.Raw)
	}
	c.call("GET", bot+"/analytics?from=-1h&group_by=intent", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/analytics?group_by=weather", adminKey, nil, http.StatusBadRequest)
	c.call("GET", bot+"/analytics/fallbacks", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/analytics/settings", adminKey, nil, http.StatusOK)
	c.call("PUT", bot+"/analytics/settings", adminKey, map[string]any{"transcript_retention": "30d", "transcript_max_turns": 500},
		http.StatusOK)
	c.call("GET", bot+"/conversations", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/conversations?user=alice&from=-7d", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/conversations?limit=10&before=-1h", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/conversations?before=yesterday", adminKey, nil, http.StatusBadRequest)
	c.call("GET", bot+"/conversations/web/alice", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/conversations/web/nobody-here", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/conversations/alice", adminKey, nil, http.StatusBadRequest)

	// Schedules.
	c.call("PUT", bot+"/schedules/morning", adminKey, map[string]any{"cron": "30 8 * * MON-FRI", "timezone": "Europe/Berlin", "intent": "Hi"},
		http.StatusOK)
	c.call("PUT", bot+"/schedules/bad", adminKey, map[string]any{"cron": "every now and then", "intent": "Hi"}, http.StatusBadRequest)
	c.call("GET", bot+"/schedules/morning", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/schedules", adminKey, nil, http.StatusOK)
	c.call("DELETE", bot+"/schedules/morning", adminKey, nil, http.StatusNoContent)
	c.call("GET", bot+"/schedules/morning", adminKey, nil, http.StatusNotFound)

	// Secrets.
	c.call("GET", bot+"/secrets", adminKey, nil, http.StatusOK)
	c.call("PUT", bot+"/secrets/API_KEY", adminKey, map[string]any{"value": "sk-0123"}, http.StatusCreated)
	c.call("PUT", bot+"/secrets/API_KEY", adminKey, map[string]any{"value": "sk-4567"}, http.StatusOK)
	c.call("PUT", bot+"/secrets/lower", adminKey, map[string]any{"value": "v"}, http.StatusBadRequest)
	c.call("PUT", bot+"/secrets/BIG", adminKey, map[string]any{"value": strings.Repeat("x", 9000)}, http.StatusBadRequest)
	c.call("PUT", "/v1/bots/nobody/secrets/API_KEY", adminKey, map[string]any{"value": "v"}, http.StatusNotFound)
	c.call("PUT", bot, adminKey, map[string]any{"timeout_ms": 900, "secrets": []string{"API_KEY", "OTHER_KEY"}}, http.StatusOK)
	c.call("GET", bot, adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/secrets", adminKey, nil, http.StatusOK)
	c.call("DELETE", bot+"/secrets/API_KEY", adminKey, nil, http.StatusNoContent)
	c.call("DELETE", bot+"/secrets/API_KEY", adminKey, nil, http.StatusNotFound)

	// The queue of the asynchronous channels.
	c.call("GET", bot+"/deadletters", adminKey, nil, http.StatusOK)
	c.call("GET", bot+"/deadletters?limit=0", adminKey, nil, http.StatusBadRequest)
	c.call("POST", bot+"/deadletters/1-0/replay", adminKey, nil, http.StatusNotFound)
	c.call("DELETE", bot+"/deadletters/1-0", adminKey, nil, http.StatusNotFound)
	c.call("GET", bot+"/parked", adminKey, nil, http.StatusOK)

	// Erasure and deletion.
	r = c.call("DELETE", bot+"/users/alice", adminKey, nil, http.StatusOK)
	if list, _ := r.Body["conversations"].([]any); len(list) == 0 {
		t.Errorf("erasure found no conversation: %s", r.Raw)
	}
	c.call("DELETE", bot+"/intents/Fail", adminKey, nil, http.StatusNoContent)
	c.call("DELETE", bot+"/channels/web", adminKey, nil, http.StatusNoContent)
	c.call("DELETE", bot+"/channels/web", adminKey, nil, http.StatusNotFound)
	c.call("DELETE", bot, adminKey, nil, http.StatusAccepted)
	c.call("GET", bot+"/intents", adminKey, nil, http.StatusNotFound)

	if len(c.checked) < 35 {
		t.Errorf("only %d routes were checked", len(c.checked))
	}
}
