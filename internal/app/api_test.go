package app

import (
	"net/http"
	"strings"
	"testing"
)

func TestManagementAPI(t *testing.T) {
	ta := startRedisApp(t)
	u := ta.URL

	do(t, "GET", u+"/healthz", "", nil).must(t, http.StatusOK)
	do(t, "GET", u+"/readyz", "", nil).must(t, http.StatusOK)

	// Bots.
	r := do(t, "PUT", u+"/v1/bots/pizza", adminKey, map[string]any{"timeout_ms": 500, "display_name": "Pizza"}).must(t, http.StatusCreated)
	if r.Body["created"] != true {
		t.Fatalf("create = %s", r.Raw)
	}
	do(t, "PUT", u+"/v1/bots/pizza", adminKey, map[string]any{"timeout_ms": 800}).must(t, http.StatusOK)
	do(t, "PUT", u+"/v1/bots/other", adminKey, "").must(t, http.StatusCreated)
	r = do(t, "GET", u+"/v1/bots", adminKey, nil).must(t, http.StatusOK)
	if got := r.Body["bots"].([]any); len(got) != 2 || got[0] != "other" || got[1] != "pizza" {
		t.Fatalf("list = %s", r.Raw)
	}
	r = do(t, "GET", u+"/v1/bots/pizza", adminKey, nil).must(t, http.StatusOK)
	if r.Body["settings"].(map[string]any)["timeout_ms"] != float64(800) {
		t.Fatalf("get = %s", r.Raw)
	}

	// Channels: secrets are never echoed.
	r = do(t, "PUT", u+"/v1/bots/pizza/channels/web", adminKey, map[string]string{"token": webToken}).must(t, http.StatusOK)
	if strings.Contains(r.Raw, webToken) {
		t.Fatalf("channel answer echoes the token: %s", r.Raw)
	}
	r = do(t, "GET", u+"/v1/bots/pizza/channels/web", adminKey, nil).must(t, http.StatusOK)
	if strings.Contains(r.Raw, webToken) || r.Body["settings"].(map[string]any)["token"] != "***" {
		t.Fatalf("channel get = %s", r.Raw)
	}
	r = do(t, "GET", u+"/v1/bots/pizza/channels", adminKey, nil).must(t, http.StatusOK)
	if chans := r.Body["channels"].([]any); len(chans) != 1 || chans[0] != "web" {
		t.Fatalf("channels = %s", r.Raw)
	}

	// Intents.
	r = do(t, "PUT", u+"/v1/bots/pizza/intents/Hi", adminKey, `function handle() return "hi" end`).must(t, http.StatusCreated)
	if r.Body["version"] != float64(1) || len(r.Body["sha256"].(string)) != 64 {
		t.Fatalf("upload = %s", r.Raw)
	}
	r = do(t, "GET", u+"/v1/bots/pizza/intents", adminKey, nil).must(t, http.StatusOK)
	if list := r.Body["intents"].([]any); len(list) != 1 || list[0].(map[string]any)["intent"] != "Hi" {
		t.Fatalf("intents = %s", r.Raw)
	}
	do(t, "GET", u+"/v1/bots/pizza/intents/Hi", adminKey, nil).must(t, http.StatusOK)

	// NLU.
	do(t, "PUT", u+"/v1/bots/pizza/nlu", adminKey, map[string]any{"intents": map[string][]string{"Hi": {"hello"}}}).must(t, http.StatusOK)
	r = do(t, "GET", u+"/v1/bots/pizza/nlu", adminKey, nil).must(t, http.StatusOK)
	if !strings.Contains(r.Raw, "hello") {
		t.Fatalf("nlu = %s", r.Raw)
	}

	// Invoke, through the classifier.
	r = do(t, "POST", u+"/v1/bots/pizza/invoke", adminKey, map[string]any{"user": "dev", "text": "Hello!"}).must(t, http.StatusOK)
	if r.Body["outcome"] != "handled" || r.Body["version"] != float64(1) ||
		r.Body["decision"].(map[string]any)["source"] != "classifier" {
		t.Fatalf("invoke = %s", r.Raw)
	}

	// Deletions.
	do(t, "DELETE", u+"/v1/bots/pizza/intents/Hi", adminKey, nil).must(t, http.StatusNoContent)
	do(t, "GET", u+"/v1/bots/pizza/intents/Hi", adminKey, nil).must(t, http.StatusNotFound)
	do(t, "DELETE", u+"/v1/bots/pizza/channels/web", adminKey, nil).must(t, http.StatusNoContent)
	// A webhook to the disconnected channel gets the answer an unknown bot gets.
	do(t, "POST", u+"/hooks/pizza/web", webToken, map[string]any{"user": "u", "text": "x"}).must(t, http.StatusUnauthorized)
	do(t, "DELETE", u+"/v1/bots/pizza", adminKey, nil).must(t, http.StatusAccepted)
	if r := do(t, "GET", u+"/v1/bots/pizza", adminKey, nil).must(t, http.StatusOK); r.Body["status"] != "deleting" {
		t.Fatalf("a deleted bot: %s", r.Raw)
	}
	do(t, "GET", u+"/v1/bots/pizza/intents", adminKey, nil).must(t, http.StatusNotFound)
	do(t, "DELETE", u+"/v1/bots/nobody", adminKey, nil).must(t, http.StatusNotFound)
}

func TestBadInput(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "b", nil, map[string]string{"Hi": `function handle() return "hi" end`})
	u := ta.URL
	big := strings.Repeat("x", 2<<20)

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         string
	}{
		{"admin without key", "GET", "/v1/bots", "", nil, 401, "unauthorized"},
		{"admin wrong key", "GET", "/v1/bots", "nope", nil, 401, "unauthorized"},
		{"web wrong token", "POST", "/hooks/b/web", "wrong-token-000000", map[string]any{"user": "u", "text": "hi"}, 401, "unauthorized"},
		{"web no token", "POST", "/hooks/b/web", "", map[string]any{"user": "u", "text": "hi"}, 401, "unauthorized"},
		{"web bad json", "POST", "/hooks/b/web", webToken, `{"user": "u", "text": `, 400, "bad_request"},
		{"web unknown field", "POST", "/hooks/b/web", webToken, map[string]any{"user": "u", "txt": "hi"}, 400, "bad_request"},
		{"web missing user", "POST", "/hooks/b/web", webToken, map[string]any{"text": "hi"}, 400, "bad_request"},
		{"web missing text and intent", "POST", "/hooks/b/web", webToken, map[string]any{"user": "u"}, 400, "bad_request"},
		{"web text not a string", "POST", "/hooks/b/web", webToken, `{"user": "u", "text": 5}`, 400, "bad_request"},
		{"web body too large", "POST", "/hooks/b/web", webToken, big, 413, "body_too_large"},
		{"web GET", "GET", "/hooks/b/web", webToken, nil, 401, "unauthorized"},
		{"unknown bot", "POST", "/hooks/nobody/web", webToken, map[string]any{"user": "u", "text": "hi"}, 401, "unauthorized"},
		{"unknown channel", "POST", "/hooks/b/pigeon", webToken, map[string]any{"user": "u", "text": "hi"}, 401, "unauthorized"},
		{"unknown route", "GET", "/nope", "", nil, 404, "not_found"},
		{"wrong method", "PATCH", "/v1/bots/b", adminKey, nil, 405, "method_not_allowed"},
		{"bad bot name", "PUT", "/v1/bots/Bad%20Name", adminKey, nil, 400, "invalid"},
		{"bad settings json", "PUT", "/v1/bots/b", adminKey, `{"timeout_ms": "fast"}`, 400, "invalid"},
		{"unknown setting", "PUT", "/v1/bots/b", adminKey, `{"timeout": 5}`, 400, "invalid"},
		{"setting out of range", "PUT", "/v1/bots/b", adminKey, `{"timeout_ms": 999999}`, 400, "invalid"},
		{"channel unknown", "PUT", "/v1/bots/b/channels/pigeon", adminKey, map[string]string{}, 404, "channel_not_found"},
		{"channel weak token", "PUT", "/v1/bots/b/channels/web", adminKey, map[string]string{"token": "short"}, 400, "bad_request"},
		{"channel for unknown bot", "PUT", "/v1/bots/ghost/channels/web", adminKey, map[string]string{"token": webToken}, 404, "bot_not_found"},
		{"intent for unknown bot", "PUT", "/v1/bots/ghost/intents/Hi", adminKey, `function handle() end`, 404, "bot_not_found"},
		{"intent bad name", "PUT", "/v1/bots/b/intents/9lives", adminKey, `function handle() end`, 400, "invalid"},
		{"lua syntax error", "PUT", "/v1/bots/b/intents/Broken", adminKey, "function handle()\n  return 'x'\nedn\n", 400, "lua_syntax"},
		{"lua without handle", "PUT", "/v1/bots/b/intents/Empty", adminKey, "local x = 1\n", 400, "lua_invalid"},
		{"lua top-level error", "PUT", "/v1/bots/b/intents/Boom", adminKey, "local x = nil\nx.y = 1\nfunction handle() end\n", 400, "lua_runtime"},
		{"rollback bad body", "POST", "/v1/bots/b/intents/Hi/rollback", adminKey, `{"version": "one"}`, 400, "bad_json"},
		{"rollback zero", "POST", "/v1/bots/b/intents/Hi/rollback", adminKey, `{"version": 0}`, 400, "invalid"},
		{"nlu bad intent name", "PUT", "/v1/bots/b/nlu", adminKey, `{"intents": {"no spaces": ["x"]}}`, 400, "invalid"},
		{"invoke unknown bot", "POST", "/v1/bots/ghost/invoke", adminKey, map[string]any{"user": "u", "text": "hi"}, 404, "bot_not_found"},
		{"invoke bad json", "POST", "/v1/bots/b/invoke", adminKey, `[]`, 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, u+tt.path, tt.token, tt.body)
			if r.Status != tt.status || r.errCode() != tt.code {
				t.Fatalf("got %d %q, want %d %q; body %.300s", r.Status, r.errCode(), tt.status, tt.code, r.Raw)
			}
		})
	}

	// A syntax error names the line.
	r := do(t, "PUT", u+"/v1/bots/b/intents/Broken", adminKey, "function handle()\n  return 'x'\nedn\n").must(t, 400)
	e := r.Body["error"].(map[string]any)
	if e["line"] != float64(3) && e["line"] != float64(4) {
		t.Fatalf("syntax error line = %v (%s)", e["line"], r.Raw)
	}
	// Nothing above changed the bot.
	r = ta.say(t, "b", map[string]any{"user": "u", "intent": "Hi"}).must(t, 200)
	if firstReply(t, r) != "hi" {
		t.Fatalf("bot broken by bad input: %s", r.Raw)
	}
}
