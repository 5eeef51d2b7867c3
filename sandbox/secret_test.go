package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The value every leak test looks for.
const leakValue = "sk-live-SECRETVALUE-0123456789"

// fakeSecrets serves secrets by bot and name, and records the lookups.
type fakeSecrets struct {
	mu      sync.Mutex
	values  map[string]string // "bot/NAME" -> value
	lookups []string
	err     error // returned for every lookup when set
}

func (f *fakeSecrets) Secret(_ context.Context, bot, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, bot+"/"+name)
	if f.err != nil {
		return "", f.err
	}
	v, ok := f.values[bot+"/"+name]
	if !ok {
		return "", fmt.Errorf("bot %s: %w", bot, ErrSecretNotSet)
	}
	return v, nil
}

// secretRuntime is a Runtime with the secret API_KEY of the test bot, an
// http client that records requests, and a logger whose output is kept.
func secretRuntime(t *testing.T) (*Runtime, *fakeHTTP, *fakeSecrets, *bytes.Buffer) {
	t.Helper()
	f := &fakeHTTP{}
	s := &fakeSecrets{values: map[string]string{testKey.Bot + "/API_KEY": leakValue, "other/API_KEY": "other-bots-value"}}
	var logs bytes.Buffer
	var mu sync.Mutex
	rt := New(Config{HTTP: f, Secrets: s, Logger: slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))})
	t.Cleanup(rt.Close)
	return rt, f, s, &logs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// noLeak fails t if any of what a call produced shows the secret.
func noLeak(t *testing.T, res Result, err error, logs *bytes.Buffer) {
	t.Helper()
	seen := fmt.Sprintf("%+v %#v %v", res, res, err)
	if raw, jerr := json.Marshal(res); jerr == nil {
		seen += string(raw)
	}
	seen += logs.String()
	if strings.Contains(seen, leakValue) || strings.Contains(seen, "SECRETVALUE") {
		t.Fatalf("the secret leaked: %s", seen)
	}
}

func TestSecretAsHTTPHeader(t *testing.T) {
	rt, f, s, logs := secretRuntime(t)
	res, err := runWith(t, rt, `function handle(e, sess)
  local key = assert(secret("API_KEY"))
  assert(type(key) == "userdata")
  assert(tostring(key) == "***", tostring(key))
  assert(getmetatable(key) == false)
  local r = assert(http.get("https://api.example.com/x", {headers = {Authorization = key, ["X-Plain"] = "p"}}))
  r = assert(http.post("https://api.example.com/y", "body", {headers = {["X-Api-Key"] = secret("API_KEY")}}))
  return "ok"
end`, Call{MaxHTTPCalls: 5})
	if err != nil || res.Reply.Text != "ok" {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
	if len(f.reqs) != 2 || f.reqs[0].Header["Authorization"] != leakValue || f.reqs[0].Header["X-Plain"] != "p" ||
		f.reqs[1].Header["X-Api-Key"] != leakValue {
		t.Fatalf("the http client did not get the value: %d requests", len(f.reqs))
	}
	if fmt.Sprint(s.lookups) != "[pizzeria/API_KEY pizzeria/API_KEY]" {
		t.Errorf("lookups %v", s.lookups)
	}
	noLeak(t, res, err, logs)

	// Each bot gets its own: the lookup is for the call's bot.
	res, err = runWith(t, rt, `function handle()
  http.get("https://api.example.com/z", {headers = {K = secret("API_KEY")}})
end`, Call{Key: PoolKey{Bot: "other", Intent: "I", Version: 1}})
	if err != nil || f.reqs[2].Header["K"] != "other-bots-value" {
		t.Fatalf("another bot's call: %v", err)
	}
}

func TestSecretRefusedEverywhereElse(t *testing.T) {
	rt, f, _, logs := secretRuntime(t)
	tests := []struct {
		name, body, want string
	}{
		{"concatenation", `return "Bearer " .. k`, "cannot be joined to a string"},
		{"concatenation after", `return k .. "x"`, "cannot be joined to a string"},
		{"concatenation with a number", `return 1 .. k`, "cannot be joined to a string"},
		{"json.encode", `return json.encode(k)`, "a secret cannot be stored or encoded"},
		{"json.encode nested", `return json.encode({auth = {k}})`, "a secret cannot be stored or encoded"},
		{"json.encode as a key", `return json.encode({[k] = 1})`, "cannot store a table with a userdata key"},
		{"reply", `return k`, "handle must return a string or a table, not a userdata"},
		{"reply text", `return {text = k}`, "reply.text must be a string, not a userdata"},
		{"reply ssml", `return {ssml = k}`, "reply.ssml must be a string"},
		{"reply options", `return {text = "x", options = {k}}`, "reply.options[1] must be a string"},
		{"button title", `return {buttons = {{title = k, payload = "p"}}}`, "reply.buttons[1].title must be a string, not a userdata"},
		{"button payload", `return {buttons = {{title = "t", payload = k}}}`, "must be a string, not a userdata"},
		{"button url", `return {buttons = {{title = "t", url = k}}}`, "must be a string, not a userdata"},
		{"card", `return {cards = {{title = "t", subtitle = k}}}`, "must be a string, not a userdata"},
		{"media", `return {media = {{type = "image", url = k}}}`, "must be a string, not a userdata"},
		{"channel data", `return {channel_data = {slack = {token = k}}}`, "a secret cannot be stored or encoded"},
		{"session", `s.token = k return "ok"`, "session.token: a secret cannot be stored or encoded"},
		{"session nested", `s.auth = {headers = {k}} return "ok"`, "session.auth.headers[1]: a secret cannot be stored"},
		{"store.set", `store.set("k", k)`, "a secret cannot be stored or encoded"},
		{"http body", `http.post("https://api.example.com/", {key = k})`, "a secret cannot be stored or encoded"},
		{"http body string", `http.post("https://api.example.com/", k)`, "body must be a string or a table"},
		{"http url", `http.get(k)`, "string expected, got userdata"},
		{"http header name", `http.get("https://api.example.com/", {headers = {[k] = "v"}})`, "a header's name cannot be a secret"},
		{"field", `return k.value`, "secret: has no fields"},
		{"method", `return k:upper()`, "secret: has no fields"},
		{"assignment", `k.x = 1`, "secret: has no fields"},
		{"length", `return #k`, "secret: has no length"},
		{"call", `return k()`, "secret: cannot be called"},
		{"string.len", `return string.len(k)`, "string expected, got userdata"},
		{"string.sub", `return string.sub(k, 1, 3)`, "string expected, got userdata"},
		{"string.byte", `return string.byte(k, 1)`, "string expected, got userdata"},
		{"string.rep", `return string.rep(k, 2)`, "string expected, got userdata"},
		{"string.find", `return string.find(k, "sk")`, "string expected, got userdata"},
		{"string.gsub", `return string.gsub(k, "s", "t")`, "string expected, got userdata"},
		{"table.concat", `return table.concat({k})`, "invalid value (at index 1) in table for 'concat'"},
		{"re", `return re.match("sk", k)`, "string expected, got userdata"},
		{"ssml", `return ssml.escape(k)`, "string expected, got userdata"},
		{"tonumber", `return tonumber(k) or "none"`, ""},
		{"pairs", `for x in pairs(k) do end`, "table expected, got userdata"},
		{"setmetatable", `setmetatable(k, {})`, "table expected, got userdata"},
		{"rawget", `return rawget(k, "value")`, "table expected, got userdata"},
		{"error", `error(k)`, "userdata: 0x"},
		{"compare", `return k < "z"`, "attempt to compare"},
		{"arithmetic", `return k + 1`, "userdata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runWith(t, rt, "function handle(e, s) local k = assert(secret('API_KEY')) "+tt.body+" end",
				Call{MaxHTTPCalls: 5})
			noLeak(t, res, err, logs)
			if tt.want == "" {
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", res.Reply)
			}
			var se *ScriptError
			if !errors.As(err, &se) || !strings.Contains(se.Message, tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if res.Session != nil {
				t.Fatalf("a failed call returned a session: %v", res.Session)
			}
		})
	}
	for _, r := range f.reqs {
		if bytes.Contains(r.Body, []byte(leakValue)) || strings.Contains(r.URL, leakValue) {
			t.Fatalf("a refused request was sent: %+v", r)
		}
	}
}

func TestSecretPrintedIsMasked(t *testing.T) {
	rt, _, _, logs := secretRuntime(t)
	res, err := runWith(t, rt, `function handle(e, s)
  local k = secret("API_KEY")
  log("key", k)
  log.warn(k)
  log.error("x", k, 1)
  local shown = string.format("%s|%q|%v|%5s", k, k, k, k)
  assert(not shown:find("sk-live"), shown)
  local ok, err = pcall(error, k)
  assert(not ok and err == k)
  return {text = tostring(k) .. " " .. shown:sub(1, 8)}
end`, Call{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"key ***", "warn: ***", "error: x *** 1"}
	if fmt.Sprint(res.Logs) != fmt.Sprint(want) {
		t.Errorf("logs %q, want %q", res.Logs, want)
	}
	if res.Reply.Text != "*** userdata" {
		t.Errorf("reply %q", res.Reply.Text)
	}
	if !strings.Contains(logs.String(), `"line":"key ***"`) {
		t.Errorf("the logger did not get the masked line: %s", logs)
	}
	noLeak(t, res, err, logs)
}

func TestSecretValueFormatsMasked(t *testing.T) {
	s := &secretValue{value: leakValue}
	ud := &lua.LUserData{Value: s}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s, "ud", ud)
	shown := fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s) +
		fmt.Sprintf("%v %+v %#v %s", ud, ud, ud, ud) + buf.String() + ud.String()
	if strings.Contains(shown, leakValue) || strings.Contains(shown, "SECRETVALUE") {
		t.Fatalf("a formatted secret shows its value: %s", shown)
	}
	if _, err := json.Marshal(map[string]any{"k": s}); err == nil {
		t.Fatal("json.Marshal encoded a secret")
	}
}

func TestSecretMissingOrUnavailable(t *testing.T) {
	rt, _, s, logs := secretRuntime(t)
	res, err := runWith(t, rt, `function handle()
  local v, err = secret("NOPE")
  assert(v == nil, "a missing secret has a value")
  return err
end`, Call{})
	if err != nil || res.Reply.Text != "secret: NOPE is not set" {
		t.Fatalf("missing: %+v, %v", res.Reply, err)
	}
	s.err = errors.New("redis: connection refused at 10.0.0.1 with " + leakValue)
	res, err = runWith(t, rt, `function handle()
  local v, err = secret("API_KEY")
  return err
end`, Call{})
	if err != nil || res.Reply.Text != "secret: unavailable" {
		t.Fatalf("failing store: %+v, %v", res.Reply, err)
	}
	noLeak(t, res, err, logs)
	for _, bad := range []string{`secret("lower")`, `secret("")`, `secret("A-B")`, `secret(string.rep("A", 65))`, `secret(1)`, `secret()`} {
		_, err := runWith(t, rt, "function handle() "+bad+" end", Call{})
		if err == nil || !strings.Contains(err.Error(), "bad argument #1 to secret") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// No Secrets configured.
	plain := New(Config{})
	defer plain.Close()
	res, err = runWith(t, plain, `function handle() local v, err = secret("API_KEY") return err end`, Call{})
	if err != nil || res.Reply.Text != "secret: not available" {
		t.Fatalf("no Secrets: %+v, %v", res.Reply, err)
	}
}

func TestSecretNotAtUpload(t *testing.T) {
	_, err := Compile("Top.lua", `local key = secret("API_KEY")
function handle() return "x" end`)
	if err == nil || !strings.Contains(err.Error(), "secret: not available at upload; use it inside handle") {
		t.Fatalf("a top-level secret() at upload: %v", err)
	}
}

// TestSecretInsideHelper reads a secret in a function that handle calls.
func TestSecretInsideHelper(t *testing.T) {
	rt, f, _, logs := secretRuntime(t)
	res, err := runWith(t, rt, `local function auth() return {Authorization = secret("API_KEY")} end
function handle()
  assert(http.get("https://api.example.com/a", {headers = auth()}))
  return "ok"
end`, Call{})
	if err != nil || res.Reply.Text != "ok" || f.reqs[0].Header["Authorization"] != leakValue {
		t.Fatalf("got %+v, %v", res.Reply, err)
	}
	noLeak(t, res, err, logs)
}

func BenchmarkSecret(b *testing.B) {
	rt := New(Config{Secrets: oneSecret(leakValue)})
	defer rt.Close()
	prog := mustCompile(b, `function handle() local k = secret("API_KEY") return tostring(k) end`)
	call := Call{Key: testKey, Program: prog, Event: testEvent(), Timeout: testTimeout}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.Run(context.Background(), call); err != nil {
			b.Fatal(err)
		}
	}
}

// oneSecret is every bot's every secret.
type oneSecret string

func (s oneSecret) Secret(context.Context, string, string) (string, error) { return string(s), nil }
