package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/purge"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/internal/testredis"
)

// leakValue is the secret every leak check looks for.
const leakValue = "sk-live-SECRETVALUE-0123456789"

// apiServer is a stand-in for a third-party API: it records the
// Authorization header of each request.
type apiServer struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newAPIServer(t *testing.T) *apiServer {
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// storedData returns every value the app's store holds under its prefix,
// as text, to look for a secret in.
func storedData(t *testing.T, ta *testApp) string {
	t.Helper()
	ctx := context.Background()
	rdb := ta.store.Client()
	var b strings.Builder
	err := purge.Scan(ctx, rdb, ta.cfg.KeyPrefix+"*", 1000, func(keys []string) error {
		for _, k := range keys {
			var v any
			var err error
			switch typ, _ := rdb.Type(ctx, k).Result(); typ {
			case "string":
				v, err = rdb.Get(ctx, k).Result()
			case "hash":
				v, err = rdb.HGetAll(ctx, k).Result()
			case "list":
				v, err = rdb.LRange(ctx, k, 0, -1).Result()
			case "set":
				v, err = rdb.SMembers(ctx, k).Result()
			case "zset":
				v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			case "stream":
				v, err = rdb.XRange(ctx, k, "-", "+").Result()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s=%v\n", k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// secretHandlers use the secret as a header (Call), try to keep it in the
// session (Keep), and read a missing one (Missing).
func secretHandlers(apiURL string) map[string]string {
	return map[string]string{
		"Call": `function handle(event, session)
  local key = assert(secret("API_KEY"))
  log("calling with", key)
  local r, err = http.get(` + strconv.Quote(apiURL+"/v1/x") + `, {headers = {Authorization = key}})
  if not r then return err end
  session.calls = (session.calls or 0) + 1
  return {text = "status " .. r.status .. " with " .. tostring(key), options = {tostring(key)}}
end`,
		"Keep": `function handle(event, session)
  session.key = secret("API_KEY")
  return "kept"
end`,
		"Encode": `function handle(event, session)
  return json.encode({key = secret("API_KEY")})
end`,
		"Missing": `function handle(event, session)
  local v, err = secret("NOT_SET")
  return tostring(v) .. " / " .. err
end`,
	}
}

func TestSecretsEndToEnd(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testSecretsEndToEnd(t, appOptions{}) })
	t.Run("redis", func(t *testing.T) {
		testSecretsEndToEnd(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	})
}

func testSecretsEndToEnd(t *testing.T, o appOptions) {
	cfg := testConfig(t, o)
	if o.redisURL == "" {
		cfg.SecretKey = nil // the embedded store generates its key
	}
	ta := serveApp(t, cfg, testLogger(t))
	api := newAPIServer(t)
	u := ta.URL + "/v1/bots/shop"
	const errorReply = "Sorry, that failed."

	// The settings name the secrets the bot needs: saving them warns.
	r := do(t, "PUT", u, adminKey, map[string]any{"secrets": []string{"API_KEY"}, "error_reply": errorReply,
		"http_allow": []string{strings.TrimPrefix(api.URL, "http://")}}).must(t, http.StatusCreated)
	if w, _ := r.Body["warnings"].([]any); len(w) != 1 || !strings.Contains(w[0].(string), "secret API_KEY is not set") {
		t.Fatalf("warnings: %s", r.Raw)
	}
	if m, _ := do(t, "GET", u, adminKey, nil).must(t, http.StatusOK).Body["missing_secrets"].([]any); len(m) != 1 {
		t.Fatalf("missing secrets: %v", m)
	}
	do(t, "PUT", u+"/channels/web", adminKey, map[string]string{"token": webToken}).must(t, http.StatusOK)
	for intent, src := range secretHandlers(api.URL) {
		do(t, "PUT", u+"/intents/"+intent, adminKey, src).must(t, http.StatusCreated)
	}

	// The API never shows a value.
	answers := do(t, "PUT", u+"/secrets/API_KEY", adminKey, map[string]any{"value": "first-value-0123"}).must(t, http.StatusCreated).Raw
	r = do(t, "PUT", u+"/secrets/API_KEY", adminKey, map[string]any{"value": leakValue}).must(t, http.StatusOK)
	answers += r.Raw
	if r.Body["created"] != false || r.Body["name"] != "API_KEY" {
		t.Fatalf("replace: %s", r.Raw)
	}
	r = do(t, "GET", u+"/secrets", adminKey, nil).must(t, http.StatusOK)
	answers += r.Raw
	list, _ := r.Body["secrets"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "API_KEY" || list[0].(map[string]any)["updated"] == nil {
		t.Fatalf("list: %s", r.Raw)
	}
	r = do(t, "PUT", u, adminKey, map[string]any{"secrets": []string{"API_KEY"}, "error_reply": errorReply,
		"http_allow": []string{strings.TrimPrefix(api.URL, "http://")}}).must(t, http.StatusOK)
	if _, ok := r.Body["warnings"]; ok {
		t.Fatalf("warnings with every secret set: %s", r.Raw)
	}

	// A turn sends the value to the API, and only there.
	if got := firstReply(t, ta.say(t, "shop", map[string]any{"user": "alice", "intent": "Call"})); got != "status 200 with ***" {
		t.Fatalf("reply %q", got)
	}
	if got := api.received(); len(got) != 1 || got[0] != leakValue {
		t.Fatalf("the API got %q", got)
	}
	for _, intent := range []string{"Keep", "Encode"} {
		if got := firstReply(t, ta.say(t, "shop", map[string]any{"user": "alice", "intent": intent})); got != errorReply {
			t.Fatalf("%s: reply %q, want the error reply", intent, got)
		}
	}
	if got := firstReply(t, ta.say(t, "shop", map[string]any{"user": "alice", "intent": "Missing"})); got != "nil / secret: NOT_SET is not set" {
		t.Fatalf("missing: %q", got)
	}
	answers += do(t, "POST", u+"/invoke", adminKey, map[string]any{"user": "bob", "intent": "Call"}).must(t, http.StatusOK).Raw

	// Nothing the API answers, and nothing stored, holds the value.
	ta.invocations.Flush(t.Context())
	flush(t, ta)
	logs := do(t, "GET", u+"/logs?limit=50", adminKey, nil).must(t, http.StatusOK)
	if !strings.Contains(logs.Raw, "calling with ***") || !strings.Contains(logs.Raw, "a secret cannot be stored or encoded") {
		t.Fatalf("the invocation logs miss the masked line or the refusal: %.2000s", logs.Raw)
	}
	answers += logs.Raw
	for _, path := range []string{"", "/intents/Call", "/conversations/web/alice", "/conversations?from=-1d", "/channels/web",
		"/analytics?from=-1h", "/usage"} {
		answers += do(t, "GET", u+path, adminKey, nil).must(t, http.StatusOK).Raw
	}
	answers += do(t, "GET", ta.URL+"/metrics", "", nil).must(t, http.StatusOK).Raw
	if strings.Contains(answers, leakValue) || strings.Contains(answers, "SECRETVALUE") {
		t.Fatalf("an answer shows the secret: %s", answers)
	}
	if strings.Contains(answers, webToken) {
		t.Fatalf("an answer shows the channel token")
	}
	stored := storedData(t, ta)
	if strings.Contains(stored, leakValue) || strings.Contains(stored, "SECRETVALUE") || strings.Contains(stored, webToken) {
		t.Fatalf("the store holds a secret in clear:\n%s", stored)
	}
	if !strings.Contains(stored, "enc:v1:") {
		t.Fatalf("no sealed value in the store:\n%s", stored)
	}

	// Deleting it: the next turn gets nil.
	do(t, "DELETE", u+"/secrets/API_KEY", adminKey, nil).must(t, http.StatusNoContent)
	if r := do(t, "DELETE", u+"/secrets/API_KEY", adminKey, nil).must(t, http.StatusNotFound); r.errCode() != "secret_not_found" {
		t.Fatalf("deleting twice: %s", r.Raw)
	}
	if got := firstReply(t, ta.say(t, "shop", map[string]any{"user": "carol", "intent": "Call"})); got != errorReply {
		t.Fatalf("a deleted secret: %q", got)
	}

	// Refusals.
	for _, c := range []struct {
		path string
		body any
		code int
		want string
	}{
		{"/secrets/lower_case", map[string]any{"value": "v"}, http.StatusBadRequest, "upper-case"},
		{"/secrets/BIG", map[string]any{"value": strings.Repeat("x", 8193)}, http.StatusBadRequest, "limited to 8192 bytes"},
		{"/secrets/EMPTY", map[string]any{"value": ""}, http.StatusBadRequest, "must not be empty"},
		{"/secrets/NOVALUE", map[string]any{}, http.StatusBadRequest, "bad_json"},
		{"/secrets/WRONG", `{"value": sk-unquoted-secret}`, http.StatusBadRequest, "bad_json"},
		{"/secrets/EXTRA", map[string]any{"value": "v", "note": "x"}, http.StatusBadRequest, "bad_json"},
		{"/secrets/NUMBER", map[string]any{"value": 12345}, http.StatusBadRequest, "bad_json"},
	} {
		r := do(t, "PUT", u+c.path, adminKey, c.body)
		if r.Status != c.code || !strings.Contains(r.Raw, c.want) || strings.Contains(r.Raw, "sk-unquoted") || strings.Contains(r.Raw, "xxxx") {
			t.Errorf("PUT %s: %d %s", c.path, r.Status, r.Raw)
		}
	}
	do(t, "PUT", u+"/secrets/API_KEY", "", map[string]any{"value": "v"}).must(t, http.StatusUnauthorized)
	do(t, "GET", u+"/secrets", "", nil).must(t, http.StatusUnauthorized)
	do(t, "GET", ta.URL+"/v1/bots/nobody/secrets", adminKey, nil).must(t, http.StatusNotFound)

	if o.redisURL == "" {
		// The embedded store's snapshot and its generated key.
		do(t, "PUT", u+"/secrets/API_KEY", adminKey, map[string]any{"value": leakValue}).must(t, http.StatusCreated)
		ta.Close()
		snap, err := os.ReadFile(filepath.Join(ta.cfg.DataDir, "snapshot.json"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(snap), leakValue) || strings.Contains(string(snap), webToken) || !strings.Contains(string(snap), "enc:v1:") {
			t.Fatalf("the snapshot holds a secret in clear, or nothing sealed")
		}
		fi, err := os.Stat(filepath.Join(ta.cfg.DataDir, secretKeyFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("the generated key file: %v, %v", fi, err)
		}
	}
}

// TestSecretsWithoutKeyOnRedis: a server on Redis without a key starts,
// and refuses secrets and channels' secret settings with a clear answer.
func TestSecretsWithoutKeyOnRedis(t *testing.T) {
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.SecretKey = nil
	ta := serveApp(t, cfg, testLogger(t))
	do(t, "GET", ta.URL+"/readyz", "", nil).must(t, http.StatusOK)
	u := ta.URL + "/v1/bots/shop"
	do(t, "PUT", u, adminKey, map[string]any{}).must(t, http.StatusCreated)
	for path, body := range map[string]any{"/secrets/API_KEY": map[string]any{"value": leakValue},
		"/channels/web": map[string]any{"token": webToken}} {
		r := do(t, "PUT", u+path, adminKey, body).must(t, http.StatusNotImplemented)
		if r.errCode() != "secret_key_missing" || !strings.Contains(r.Raw, "PARLEY_SECRET_KEY") {
			t.Fatalf("PUT %s: %s", path, r.Raw)
		}
	}
	// A channel without secret settings connects.
	do(t, "PUT", u+"/channels/alexa", adminKey, map[string]any{"skill_id": "amzn1.ask.skill.0123"}).must(t, http.StatusOK)
	if stored := storedData(t, ta); strings.Contains(stored, leakValue) || strings.Contains(stored, webToken) {
		t.Fatalf("a refused secret was stored:\n%s", stored)
	}
}

// TestSecretKeyRotation: values in clear from before sealing, and values
// sealed under the embedded store's generated key, are sealed again under
// a configured key at start; then under the next one after a rotation.
func TestSecretKeyRotation(t *testing.T) {
	dir := t.TempDir()
	start := func(key string, previous ...string) *testApp {
		t.Helper()
		cfg := testConfig(t, appOptions{dataDir: dir})
		cfg.SecretKey, cfg.SecretKeysPrevious = nil, nil
		if key != "" {
			env := []string{"PARLEY_SECRET_KEY=" + key}
			if len(previous) > 0 {
				env = append(env, "PARLEY_SECRET_KEY_PREVIOUS="+strings.Join(previous, ","))
			}
			keys, err := config.Load(env)
			if err != nil {
				t.Fatal(err)
			}
			cfg.SecretKey, cfg.SecretKeysPrevious = keys.SecretKey, keys.SecretKeysPrevious
		}
		return serveApp(t, cfg, testLogger(t))
	}
	// kids lists the key ids of the sealed values the store holds.
	kids := func(ta *testApp) map[string]int {
		out := map[string]int{}
		for _, part := range strings.Split(storedData(t, ta), "enc:v1:")[1:] {
			out[part[:8]]++
		}
		return out
	}
	newKey := func() (string, string) {
		k, _ := seal.NewKey()
		return base64.StdEncoding.EncodeToString(k), seal.KeyID(k)
	}
	works := func(ta *testApp) {
		t.Helper()
		if got := firstReply(t, ta.say(t, "shop", map[string]any{"user": "alice", "intent": "Missing"})); !strings.Contains(got, "is not set") {
			t.Fatalf("the bot does not answer: %q", got)
		}
		r := do(t, "GET", ta.URL+"/v1/bots/shop/secrets", adminKey, nil).must(t, http.StatusOK)
		if list, _ := r.Body["secrets"].([]any); len(list) != 1 {
			t.Fatalf("secrets: %s", r.Raw)
		}
	}

	// First start: a generated key.
	ta := start("")
	ta.setupBot(t, "shop", nil, map[string]string{"Missing": secretHandlers("")["Missing"]})
	do(t, "PUT", ta.URL+"/v1/bots/shop/secrets/API_KEY", adminKey, map[string]any{"value": leakValue}).must(t, http.StatusCreated)
	// A channel stored in clear, as before sealing existed.
	ctx := context.Background()
	if err := ta.store.Client().HSet(ctx, ta.cfg.KeyPrefix+"bot:{shop}:channels", "alexa", `{"skill_id":"amzn1.ask.skill.0123"}`).Err(); err != nil {
		t.Fatal(err)
	}
	ta.Close()

	// A configured key: everything is sealed under it, the generated one still opens.
	k1, id1 := newKey()
	ta = start(k1)
	if got := kids(ta); len(got) != 1 || got[id1] != 3 {
		t.Fatalf("after configuring a key: sealed under %v, want 3 values under %s", got, id1)
	}
	works(ta)
	ta.Close()

	// Rotation.
	k2, id2 := newKey()
	ta = start(k2, k1)
	if got := kids(ta); len(got) != 1 || got[id2] != 3 {
		t.Fatalf("after rotating: sealed under %v, want 3 values under %s", got, id2)
	}
	works(ta)
	ta.Close()
	ta = start(k2)
	works(ta)
	ta.Close()
}
