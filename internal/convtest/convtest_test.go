package convtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testBot is a bot that exercises every assertion: NLU with a slot,
// expect, options, session, end_conversation, the clock, the http, store and
// log modules, a failing handler and SSML.
var testBot = map[string]string{
	"bot.yaml": `name: testbot
settings:
  http_allow: [api.example.com]
  error_reply: Oops.
channels:
  web:
    token: ${TESTBOT_WEB_TOKEN}
  twilio-voice:
    auth_token: ${TESTBOT_TWILIO_TOKEN}
  telegram:
    bot_token: ${TESTBOT_TELEGRAM_TOKEN}
  slack:
    bot_token: ${TESTBOT_SLACK_TOKEN}
nlu:
  threshold: 0.75
  intents:
    Order:
      - I want a [large](size) pizza
      - order a [small](size) pizza
      - can I get a pizza
      - pizza please
    Hours:
      - when are you open
      - what are your opening hours
  slots:
    size:
      values:
        large: [big, huge]
        small: [tiny]
`,
	"intents/Order.lua": `function handle(event, session)
  session.count = (session.count or 0) + 1
  local size = event.slots and event.slots.size
  if size then
    session.size = size
    return {text = "A " .. size .. " pizza. Toppings?", options = {"mushrooms", "olives"}, expect = "Toppings"}
  end
  return {text = "What size?", options = {"small", "large"}}
end
`,
	"intents/Toppings.lua": `function handle(event, session)
  return {text = "Added " .. event.text .. ".", end_conversation = true}
end
`,
	"intents/Hours.lua": `function handle(event, session)
  return {text = "Open 11 to 23.", ssml = "<speak>Open from eleven.</speak>"}
end
`,
	"intents/fallback.lua": `function handle(event, session)
  local t = event.text
  if t == "clock" then
    return os.time() .. "|" .. os.date("!%Y-%m-%d %H:%M:%S") .. "|" .. time.format(time.now()) .. "|" .. event.timestamp
  elseif t == "menu" then
    local r, err = http.get("https://api.example.com/menu")
    if not r then return "error: " .. err end
    local menu = json.decode(r.body)
    return r.status .. " " .. tostring(r.headers["x-source"]) .. " " .. table.concat(menu.pizzas, ",")
  elseif t == "submit" then
    local r, err = http.post("https://api.example.com/orders", {size = "large"})
    if not r then return "error: " .. err end
    return r.status .. " " .. r.body
  elseif t == "elsewhere" then
    local r, err = http.get("https://evil.example.net/")
    return "error: " .. tostring(err)
  elseif t == "unmocked" then
    local r, err = http.get("https://api.example.com/other")
    return "error: " .. tostring(err)
  elseif t == "boom" then
    error("boom")
  elseif t == "tally" then
    local n = (store.get("n") or 0) + 1
    store.set("n", n)
    return "n=" .. n
  elseif t == "badssml" then
    return {text = "plain", ssml = "<speak><unclosed></speak>"}
  elseif event.postback then
    return "pressed " .. event.postback
  end
  session.last = t
  session.nested = {a = {b = 1, c = "x"}, list = {1, 2}}
  return {text = "You said: " .. t}
end
`,
}

// writeDir writes files (by path relative to a new directory) and returns
// the directory.
func writeDir(t *testing.T, files ...map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, set := range files {
		for name, content := range set {
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// runDir loads and runs a directory's tests on a new harness.
func runDir(t *testing.T, dir string) *Report {
	t.Helper()
	s, err := Load(dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newHarness(t).Run(context.Background(), s, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func resultOf(t *testing.T, r *Report, name string) *Result {
	t.Helper()
	for _, res := range r.Tests {
		if res.Name == name {
			return res
		}
	}
	t.Fatalf("no test %q in the report", name)
	return nil
}

func report(t *testing.T, r *Report) string {
	t.Helper()
	var b strings.Builder
	if err := WriteText(&b, r, true); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestAssertionsPass: every assertion kind, holding.
func TestAssertionsPass(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/pass.yaml": `tests:
  - name: order with a slot
    user: alice
    locale: en-US
    turns:
      - say: I want a big pizza
        intent: Order
        reply: A large pizza. Toppings?
        options: [mushrooms, olives]
        slots: {size: large}
        session: {count: 1, size: large}
        end_conversation: false
        outcome: handled
      - say: olives
        intent: Toppings
        reply: {matches: "^Added (olives|ham)\\.$"}
        end_conversation: true
        session: {count: null, size: null}
  - name: order without a slot
    turns:
      - say: can I get a pizza
        intent: Order
        reply: {contains: size}
        options: [small, large]
        slots: {size: null}
  - name: fallback and nested session
    turns:
      - say: something else
        intent: fallback
        outcome: fallback
        reply: "You said: something else"
        options: []
        session: {last: something else, nested: {a: {c: x}, list: [1, 2]}}
  - name: an expected failure
    turns:
      - say: boom
        outcome: error
        reply: Oops.
  - name: a button press
    turns:
      - postback: BTN_42
        intent: fallback
        reply: pressed BTN_42
      - postback: Hours
        intent: Hours
        reply: Open 11 to 23.
`})
	r := runDir(t, dir)
	if r.Failed != 0 || r.Passed != 5 {
		t.Fatalf("want 5 passed:\n%s", report(t, r))
	}
}

// TestAssertionsFail: each assertion kind, failing, reports its turn,
// field, want and got; a test stops at its first failing turn.
func TestAssertionsFail(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/fail.yaml": `tests:
  - {name: intent, turns: [{say: when are you open, intent: Order}]}
  - {name: reply, turns: [{say: when are you open, reply: Closed.}]}
  - {name: contains, turns: [{say: when are you open, reply: {contains: midnight}}]}
  - {name: matches, turns: [{say: when are you open, reply: {matches: "^Closed"}}]}
  - {name: options, turns: [{say: can I get a pizza, options: [small]}]}
  - {name: session, turns: [{say: hi there, session: {last: hello, nested: {a: {b: 2}}}}]}
  - {name: slots, turns: [{say: order a tiny pizza, slots: {size: large}}]}
  - {name: end, turns: [{say: when are you open, end_conversation: true}]}
  - {name: unexpected error, turns: [{say: boom}]}
  - {name: outcome, turns: [{say: when are you open, outcome: fallback}]}
  - name: second turn
    turns:
      - say: I want a huge pizza
        reply: A large pizza. Toppings?
      - say: ham
        reply: Added cheese.
      - say: never reached
        reply: nothing
`})
	r := runDir(t, dir)
	if r.Failed != 11 || r.Passed != 0 {
		t.Fatalf("want 11 failed:\n%s", report(t, r))
	}
	for _, tc := range []struct {
		test, field string
		turn        int
		want, got   string
	}{
		{"intent", "intent", 1, `Order`, `Hours`},
		{"reply", "reply", 1, `Closed.`, `Open 11 to 23.`},
		{"contains", "reply", 1, `map[contains:midnight]`, `Open 11 to 23.`},
		{"matches", "reply", 1, `map[matches:^Closed]`, `Open 11 to 23.`},
		{"options", "options", 1, `[small]`, `[small large]`},
		{"session", "session", 1, `map[last:hello nested:map[a:map[b:2]]]`, `map[last:hi there nested:map[a:map[b:1]]]`},
		{"slots", "slots", 1, `map[size:large]`, `map[size:small]`},
		{"end", "end_conversation", 1, `true`, `false`},
		{"unexpected error", "outcome", 1, `handled or fallback`, `error: `},
		{"outcome", "outcome", 1, `fallback`, `handled`},
		{"second turn", "reply", 2, `Added cheese.`, `Added ham.`},
	} {
		res := resultOf(t, r, tc.test)
		if len(res.Failures) != 1 {
			t.Errorf("%s: failures %+v", tc.test, res.Failures)
			continue
		}
		f := res.Failures[0]
		if f.Field != tc.field || f.Turn != tc.turn || fmtAny(f.Want) != tc.want || !strings.HasPrefix(fmtAny(f.Got), tc.got) {
			t.Errorf("%s: got failure %+v, want field %s turn %d want %s got %s", tc.test, f, tc.field, tc.turn, tc.want, tc.got)
		}
	}
	if f := resultOf(t, r, "unexpected error").Failures[0]; !strings.Contains(fmtAny(f.Got), "boom") {
		t.Errorf("the handler's error is not shown: %v", f.Got)
	}
	if f := resultOf(t, r, "second turn").Failures[0]; f.Input != `say "ham"` || f.Line != 16 {
		t.Errorf("second turn: input %q line %d", f.Input, f.Line)
	}
	out := report(t, r)
	for _, want := range []string{
		"FAIL reply (" + filepath.Join(dir, "tests", "fail.yaml") + ":3, ",
		"     turn 1 (" + filepath.Join(dir, "tests", "fail.yaml") + ":3): say \"when are you open\"\n       reply:\n         - want \"Closed.\"\n         + got  \"Open 11 to 23.\"\n",
		"           [\n         -   \"small\"\n         +   \"small\",\n         +   \"large\"\n           ]\n",
		"0 passed, 11 failed (in-process)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}

func fmtAny(v any) string { return fmt.Sprint(v) }

// TestMocks: the http module answers from the test's mocks, refuses what
// the bot's allow-list refuses as production does, and fails the test on a
// request no mock answers.
func TestMocks(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/mocks.yaml": `tests:
  - name: mocked
    mocks:
      http:
        - {url: "https://api.example.com/menu", headers: {X-Source: mock}, body: {pizzas: [margherita, diavola]}}
        - method: POST
          url: https://api.example.com/orders
          status: 201
          body: '{"id": 7}'
    turns:
      - {say: menu, reply: "200 mock margherita,diavola"}
      - {say: submit, reply: '201 {"id": 7}'}
  - name: refused by the allow-list
    turns:
      - {say: elsewhere, reply: "error: http: host evil.example.net is not allow-listed"}
  - name: unmocked
    mocks:
      http:
        - {url: "https://api.example.com/menu", body: "{}"}
    turns:
      - {say: unmocked, reply: {contains: "no mock for GET https://api.example.com/other"}}
`})
	r := runDir(t, dir)
	if !resultOf(t, r, "mocked").Passed || !resultOf(t, r, "refused by the allow-list").Passed {
		t.Errorf("mocked requests:\n%s", report(t, r))
	}
	res := resultOf(t, r, "unmocked")
	if res.Passed || len(res.Failures) != 1 || res.Failures[0].Field != "http" ||
		res.Failures[0].Got != "unmocked: GET https://api.example.com/other" {
		t.Errorf("an unmocked request does not fail the test:\n%s", report(t, r))
	}
}

// TestFrozenClock: a test's now is what os.time, os.date, the time module
// and the event's timestamp say; each test has its own.
func TestFrozenClock(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/clock.yaml": `tests:
  - name: december
    now: 2026-12-01T10:00:00Z
    turns:
      - {say: clock, reply: "1796119200|2026-12-01 10:00:00|2026-12-01T10:00:00Z|2026-12-01T10:00:00Z"}
      - {say: clock, reply: "1796119200|2026-12-01 10:00:00|2026-12-01T10:00:00Z|2026-12-01T10:00:00Z"}
  - name: a date in another zone
    now: "2027-06-30T23:30:00-02:00"
    turns:
      - {say: clock, reply: {contains: "|2027-07-01 01:30:00|2027-07-01T01:30:00Z|"}}
  - name: real time
    turns:
      - {say: clock, reply: {matches: "^\\d+\\|"}}
`})
	r := runDir(t, dir)
	if r.Failed != 0 {
		t.Fatalf("clock:\n%s", report(t, r))
	}
	if got := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Unix(); got != 1796119200 {
		t.Fatalf("the test's own arithmetic: %d", got)
	}
}

// TestStoreIsolation: each test meets the bot as deployed, without the
// store values or sessions an earlier test left.
func TestStoreIsolation(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/store.yaml": `tests:
  - name: first
    turns:
      - {say: tally, reply: n=1}
      - {say: tally, reply: n=2}
      - {say: I want a big pizza, session: {count: 1}}
  - name: second
    turns:
      - {say: tally, reply: n=1}
      - {say: I want a big pizza, session: {count: 1}}
`})
	if r := runDir(t, dir); r.Failed != 0 {
		t.Fatalf("isolation:\n%s", report(t, r))
	}
}

// TestChannels: a test's channel renders its replies through the
// channel's adapter: TwiML for Twilio Voice (SSML checked), the send API
// for Telegram (kept in the process).
func TestChannels(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/channels.yaml": `tests:
  - name: voice
    channel: twilio-voice
    user: "+15551234567"
    turns:
      - {say: when are you open, intent: Hours, reply: Open 11 to 23.}
  - name: bad ssml
    channel: twilio-voice
    turns:
      - {say: badssml, reply: plain}
  - name: telegram
    channel: telegram
    user: "4242"
    turns:
      - {say: can I get a pizza, reply: "What size?", options: [small, large]}
  - name: slack
    channel: slack
    user: C0123
    turns:
      - {say: when are you open, reply: Open 11 to 23.}
  - name: telegram needs a chat id
    channel: telegram
    turns:
      - {say: can I get a pizza}
`})
	r := runDir(t, dir)
	if !resultOf(t, r, "voice").Passed || !resultOf(t, r, "telegram").Passed || !resultOf(t, r, "slack").Passed {
		t.Errorf("channels:\n%s", report(t, r))
	}
	for _, name := range []string{"bad ssml", "telegram needs a chat id"} {
		res := resultOf(t, r, name)
		if res.Passed || res.Failures[0].Field != "render" {
			t.Errorf("%s: want a render failure:\n%s", name, report(t, r))
		}
	}
	if got := fmtAny(resultOf(t, r, "telegram needs a chat id").Failures[0].Got); !strings.Contains(got, `conversation "tester" is not a Telegram chat`) {
		t.Errorf("telegram render failure: %s", got)
	}
}

// TestSetupErrors: what keeps tests from running is a *SetupError naming
// the file and line.
func TestSetupErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // after the directory
		run   string
	}{
		{"handler does not compile", map[string]string{"intents/Hours.lua": "function handle()\n  return 'x'\n\nlocal = 5\nend\n",
			"tests/a.yaml": "{name: a, turns: [{say: hi}]}"}, "intents/Hours.lua:4: syntax error near 'local'", ""},
		{"unknown test key", map[string]string{"tests/a.yaml": "tests:\n  - name: a\n    turn:\n      - say: hi\n"},
			`tests/a.yaml:3: unknown key "turn" in a test (known: name, user, channel, locale, now, mocks, turns)`, ""},
		{"unknown turn key", map[string]string{"tests/a.yaml": "tests:\n  - name: a\n    turns:\n      - say: hi\n        replies: x\n"},
			`tests/a.yaml:5: unknown key "replies" in a turn (known: say, postback, intent, reply, options, session, slots, end_conversation, outcome)`, ""},
		{"channel not configured", map[string]string{"tests/a.yaml": "name: a\nchannel: discord\nturns: [{say: hi}]\n"},
			`tests/a.yaml:1: test "a": channel "discord" is not configured in `, ""},
		{"unknown channel", map[string]string{"tests/a.yaml": "name: a\nchannel: pigeon\nturns: [{say: hi}]\n"},
			`tests/a.yaml:1: test "a": unknown channel "pigeon"`, ""},
		{"no tests match", map[string]string{"tests/a.yaml": "name: a\nturns: [{say: hi}]\n"}, `no tests match --run "^zzz$"`, "^zzz$"},
		{"no test files", map[string]string{}, "no tests: ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, testBot, tc.files)
			re, _ := ParseRun(tc.run)
			_, err := Load(dir, LoadOptions{Run: re})
			var se *SetupError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a set-up error with %q", err, tc.want)
			}
			if strings.Contains(tc.want, ".yaml:") || strings.Contains(tc.want, ".lua:") {
				if !strings.HasPrefix(err.Error(), dir) {
					t.Errorf("the error does not start with the file's path: %v", err)
				}
			}
		})
	}
}

// TestRunFilter: --run selects tests by name.
func TestRunFilter(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{
		"tests/a.yaml": "tests:\n  - {name: order one, turns: [{say: hi}]}\n  - {name: hours, turns: [{say: hi}]}\n",
		"tests/b.yml":  "name: order two\nturns: [{say: hi}]\n",
	})
	re, err := ParseRun("^order")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir, LoadOptions{Run: re})
	if err != nil {
		t.Fatal(err)
	}
	if s.Tests() != 2 || len(s.Files) != 2 || s.Files[1].Tests[0].Name != "order two" {
		t.Errorf("selected %d tests in %d files", s.Tests(), len(s.Files))
	}
	if _, err := ParseRun("("); err == nil {
		t.Error("a bad --run pattern is accepted")
	}
}

// TestHarnessRedeploys: a harness runs a changed bot after a redeploy, as
// parley dev does.
func TestHarnessRedeploys(t *testing.T) {
	dir := writeDir(t, testBot, map[string]string{"tests/a.yaml": "name: a\nturns: [{say: when are you open, reply: Open 11 to 23.}]\n"})
	h := newHarness(t)
	for i, want := range []int{1, 0} {
		if i == 1 {
			src := strings.Replace(testBot["intents/Hours.lua"], "Open 11 to 23.", "Closed today.", 1)
			if err := os.WriteFile(filepath.Join(dir, "intents", "Hours.lua"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Load(dir, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := h.Run(context.Background(), s, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Passed != want {
			t.Errorf("run %d: %d passed, want %d:\n%s", i+1, r.Passed, want, report(t, r))
		}
	}
}

// TestWrongRepliesFailTheTest: a reply with a misspelt key, a list of
// replies, or channel data for a channel kind that does not exist is a
// run-time error naming it, which fails the test; channel data for every
// kind the server has (hyphenated ones included) is a reply.
func TestWrongRepliesFailTheTest(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"bot.yaml": "name: replybot\n",
		"intents/fallback.lua": `function handle(event, session)
  local t = event.text
  if t == "typo" then return {text = "Pick one", optoins = {"a", "b"}} end
  if t == "image" then return {text = "Look", image = "https://example.com/a.png"} end
  if t == "list" then return {{text = "one"}, {text = "two"}} end
  if t == "options map" then return {text = "Pick one", options = {yes = "Yes"}} end
  if t == "card" then return {text = "Menu", cards = {{title = "Margherita", imgae = "https://example.com/m.png"}}} end
  if t == "kind" then return {text = "Blocks", channel_data = {slakc = {blocks = {}}}} end
  return {text = "Routed", channel_data = {["dialogflow-cx"] = {targetPage = "p"}, ["twilio-voice"] = {a = 1}, slack = {b = 2}}}
end
`,
		"tests/replies.yaml": `tests:
  - {name: typo, turns: [{say: typo, reply: Pick one}]}
  - {name: image, turns: [{say: image, reply: Look}]}
  - {name: list, turns: [{say: list, reply: "one\ntwo"}]}
  - {name: options map, turns: [{say: options map, reply: Pick one}]}
  - {name: card, turns: [{say: card, reply: Menu}]}
  - {name: kind, turns: [{say: kind, reply: Blocks}]}
  - {name: known kinds, turns: [{say: fine, reply: Routed}]}
`})
	r := runDir(t, dir)
	if !resultOf(t, r, "known kinds").Passed {
		t.Errorf("channel data for known kinds:\n%s", report(t, r))
	}
	for name, want := range map[string]string{
		"typo":        `reply has unknown key "optoins"`,
		"image":       `reply has unknown key "image"`,
		"list":        `handle returned a list of replies`,
		"options map": `reply.options must be a list of strings like {"yes", "no"}, not a table with key "yes"`,
		"card":        `reply.cards[1] has unknown key "imgae"`,
		"kind":        `reply.channel_data has unknown channel kind "slakc"`,
	} {
		res := resultOf(t, r, name)
		if res.Passed || len(res.Failures) == 0 || res.Failures[0].Field != "outcome" ||
			!strings.Contains(fmtAny(res.Failures[0].Got), want) {
			t.Errorf("%s: want an outcome failure naming %q:\n%s", name, want, report(t, r))
		}
	}
}
