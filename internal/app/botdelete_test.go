package app

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/purge"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// Handlers of the bots whose deletion is tested: they keep session state,
// write and read the store module, and log.
const (
	rememberHandler = `function handle(event, session)
  session.n = (session.n or 0) + 1
  store.set("k", event.text)
  store.set("short", 1, 3600)
  log("remembered", event.text)
  return "ok " .. session.n
end`
	recallHandler = `function handle(event, session)
  return "k=" .. tostring(store.get("k")) .. " n=" .. tostring(session.n)
end`
	tickHandler = `function handle(event, session)
  store.set("ticks", (store.get("ticks") or 0) + 1)
  return "tick"
end`
)

// populate gives bot data of every kind Parley keeps: settings with rate
// limits, a channel, handlers with a canary, NLU data and model, analytics
// settings, a schedule that has run, web turns (sessions, remembered
// answers, transcripts, invocation logs, store values), an erased user,
// queued events that became dead letters, and one parked event.
func populate(t *testing.T, ta *testApp, bot string) {
	t.Helper()
	u := ta.URL + "/v1/bots/" + bot
	ta.setupBot(t, bot, map[string]any{"rate_limit_per_bot": "1000/h", "rate_limit_per_user": "20/h"},
		map[string]string{"Remember": rememberHandler, "Recall": recallHandler, "Tick": tickHandler})
	do(t, "PUT", u+"/intents/Recall?canary=50", adminKey, recallHandler+"\n-- v2").must(t, http.StatusCreated)
	do(t, "PUT", u+"/nlu", adminKey, map[string]any{"intents": map[string][]string{
		"Remember": {"remember this", "keep this for me", "note it down"},
		"Recall":   {"what did I say", "recall it", "remind me"}}}).must(t, http.StatusOK)
	do(t, "PUT", u+"/analytics/settings", adminKey, map[string]any{"transcript_retention": "30d"}).must(t, http.StatusOK)
	do(t, "PUT", u+"/schedules/tick", adminKey, map[string]any{"cron": "@every 1s", "intent": "Tick"}).must(t, http.StatusOK)
	do(t, "PUT", u+"/secrets/API_KEY", adminKey, map[string]any{"value": "sk-" + bot}).must(t, http.StatusCreated)

	for i, user := range []string{"alice", "bob", "gone"} {
		r := ta.say(t, bot, map[string]any{"user": user, "text": "secret of " + bot, "intent": "Remember",
			"id": fmt.Sprintf("m%d", i)})
		if r.must(t, http.StatusOK); firstReply(t, r) != "ok 1" {
			t.Fatalf("%s: %s", bot, r.Raw)
		}
	}
	if r := ta.say(t, bot, map[string]any{"user": "alice", "text": "recall it"}); !strings.Contains(firstReply(t, r), "secret of "+bot) {
		t.Fatalf("%s: recall: %s", bot, r.Raw)
	}
	do(t, "DELETE", u+"/users/gone", adminKey, nil).must(t, http.StatusOK)

	// Queued events of a channel that cannot push replies (Lex answers only
	// in its webhook's response), so each answered one becomes a dead
	// letter; past rate_limit_per_user the last is parked.
	ctx := context.Background()
	for i := range 21 {
		ev := &msg.Event{ID: fmt.Sprintf("q%d", i), Bot: bot, Channel: "lex", User: "queued", Conversation: "queued",
			Text: "queued", Intent: "Remember", Timestamp: time.Now().UTC()}
		if _, err := ta.queue.Enqueue(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, bot+": schedule runs, dead letters and a parked event", func() bool {
		runs, _ := do(t, "GET", u+"/schedules", adminKey, nil).must(t, http.StatusOK).Body["runs"].([]any)
		dead, _ := do(t, "GET", u+"/deadletters", adminKey, nil).must(t, http.StatusOK).Body["deadletters"].([]any)
		parked, _ := do(t, "GET", u+"/parked", adminKey, nil).must(t, http.StatusOK).Body["parked"].([]any)
		return len(runs) > 0 && len(dead) == 20 && len(parked) == 1
	})
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// mentions matches a key that names the bot: its name not followed by
// another character of a bot name (so "acme" is not "acme2").
func mentions(bot string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(bot) + `([^a-z0-9_-]|$)`)
}

// keysOf lists the app's keys that name bot.
func (ta *testApp) keysOf(t *testing.T, bot string) map[string]bool {
	t.Helper()
	re := mentions(bot)
	out := map[string]bool{}
	err := purge.Scan(context.Background(), ta.store.Client(), ta.cfg.KeyPrefix+"*", 1000, func(keys []string) error {
		for _, k := range keys {
			if re.MatchString(strings.TrimPrefix(k, ta.cfg.KeyPrefix)) {
				out[k] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stableKeysOf waits until the keys naming bot stop changing (buffered
// analytics and invocation logs written) and returns them.
func (ta *testApp) stableKeysOf(t *testing.T, bot string) map[string]bool {
	t.Helper()
	prev := ta.keysOf(t, bot)
	for range 20 {
		time.Sleep(700 * time.Millisecond)
		next := ta.keysOf(t, bot)
		if maps.Equal(prev, next) {
			return next
		}
		prev = next
	}
	t.Fatalf("the keys of %s keep changing", bot)
	return nil
}

// deletionApp starts an app whose bot deletions settle for settle.
func deletionApp(t *testing.T, o appOptions, settle time.Duration) *testApp {
	cfg := testConfig(t, o)
	cfg.BotDeleteSettle = settle
	cfg.QueuePoll = 20 * time.Millisecond
	return serveApp(t, cfg, testLogger(t))
}

func TestDeletedBotLeavesNoData(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testDeletedBotLeavesNoData(t, appOptions{}) })
	t.Run("redis", func(t *testing.T) {
		testDeletedBotLeavesNoData(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	})
}

// testDeletedBotLeavesNoData deletes a bot that has data of every kind, next
// to bots named like it ("acme2") and unlike it, and checks that no key
// naming it is left, the others' keys are all there, and a bot created
// again under its name starts from nothing.
func testDeletedBotLeavesNoData(t *testing.T, o appOptions) {
	ta := deletionApp(t, o, 2*time.Second)
	for _, bot := range []string{"acme", "acme2", "other"} {
		populate(t, ta, bot)
	}
	// The neighbours' schedules pause, so their keys stop changing.
	for _, bot := range []string{"acme2", "other"} {
		do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/schedules/tick", adminKey,
			map[string]any{"cron": "@every 1s", "intent": "Tick", "disabled": true}).must(t, http.StatusOK)
	}
	flush(t, ta)
	before := map[string]map[string]bool{"acme2": ta.stableKeysOf(t, "acme2"), "other": ta.stableKeysOf(t, "other")}

	// The workload reached every kind of key the bot can have.
	acmeKeys := slices.Sorted(maps.Keys(ta.keysOf(t, "acme")))
	for _, family := range []string{"bot:{acme}:settings", "bot:{acme}:channels", "bot:{acme}:secrets", "bot:{acme}:intent:", "bot:{acme}:rollouts",
		"bot:{acme}:nlu:model", "kv:{acme}:v:k", "kv:{acme}:idx", "}:state", "}:hist", "}:msg:", "users:{acme:", "an:acme:m:", "an:acme:settings", "an:acme:cl:", "an:{acme}:u:", "an:{acme:c",
		"an:{acme:u", ":erased:", "inv:acme:recent", "inv:acme:day:", "sched:{acme}", "sched:{acme}:last:tick",
		"sched:{acme}:runs", "rl:{acme}", "rl:{acme}:c:", "deadletters:{acme}", ":seen:acme:lex:", ":parked:acme:lex:queued"} {
		if !slices.ContainsFunc(acmeKeys, func(k string) bool { return strings.Contains(k, family) }) {
			t.Errorf("no key of acme contains %q: the workload misses a kind of data; keys: %q", family, acmeKeys)
		}
	}

	r := do(t, "DELETE", ta.URL+"/v1/bots/acme", adminKey, nil).must(t, http.StatusAccepted)
	if r.Body["status"] != "deleting" || r.Body["name"] != "acme" {
		t.Fatalf("delete: %s", r.Raw)
	}
	// The bot is gone at once for its users (its webhooks get the answer of
	// an unknown bot); deleting it again is no error.
	ta.say(t, "acme", map[string]any{"user": "alice", "text": "hi"}).must(t, http.StatusUnauthorized)
	do(t, "DELETE", ta.URL+"/v1/bots/acme", adminKey, nil).must(t, http.StatusAccepted)
	waitUntil(t, "the deletion to finish", func() bool {
		r := do(t, "GET", ta.URL+"/v1/bots/acme", adminKey, nil)
		if r.Status == http.StatusOK && r.Body["status"] != "deleting" {
			t.Fatalf("a deleted bot: %s", r.Raw)
		}
		return r.Status == http.StatusNotFound
	})
	if left := ta.keysOf(t, "acme"); len(left) > 0 {
		t.Fatalf("keys of the deleted bot are left: %q", slices.Sorted(maps.Keys(left)))
	}
	// No parked event of acme is left in the queue's due sets either.
	rdb := ta.store.Client()
	for p := range ta.cfg.QueuePartitions {
		members, err := rdb.ZRange(context.Background(), fmt.Sprintf("%sq:{p%d}:due", ta.cfg.KeyPrefix, p), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if strings.HasPrefix(m, "acme:") {
				t.Fatalf("partition %d still has acme's parked conversation %q", p, m)
			}
		}
	}
	for bot, keys := range before {
		if after := ta.keysOf(t, bot); !maps.Equal(keys, after) {
			t.Fatalf("deleting acme changed the keys of %s:\nbefore %q\nafter  %q", bot,
				slices.Sorted(maps.Keys(keys)), slices.Sorted(maps.Keys(after)))
		}
	}

	// Created again, the bot has nothing of its predecessor.
	ta.setupBot(t, "acme", nil, map[string]string{"Recall": recallHandler})
	u := ta.URL + "/v1/bots/acme"
	if list := do(t, "GET", u+"/secrets", adminKey, nil).must(t, http.StatusOK).Body["secrets"].([]any); len(list) != 0 {
		t.Fatalf("secrets of the new acme: %v", list)
	}
	sched := do(t, "GET", u+"/schedules", adminKey, nil).must(t, http.StatusOK)
	if s, _ := sched.Body["schedules"].(map[string]any); len(s) != 0 || len(sched.Body["runs"].([]any)) != 0 {
		t.Fatalf("schedules of the new acme: %s", sched.Raw)
	}
	for path, field := range map[string]string{"/conversations?from=-7d": "conversations", "/logs": "invocations",
		"/deadletters": "deadletters", "/parked": "parked"} {
		r := do(t, "GET", u+path, adminKey, nil).must(t, http.StatusOK)
		if list, _ := r.Body[field].([]any); len(list) != 0 {
			t.Fatalf("GET %s of the new acme: %s", path, r.Raw)
		}
	}
	if got := firstReply(t, ta.say(t, "acme", map[string]any{"user": "alice", "text": "x", "intent": "Recall"})); got != "k=nil n=nil" {
		t.Fatalf("the new acme reads its predecessor's data: %q", got)
	}
}

// TestBotNameTakenWhileDeleting: until a deletion finishes, the name cannot
// be used (409) and GET shows the deletion; a deletion interrupted by a
// restart is finished by the next start.
func TestBotNameTakenWhileDeleting(t *testing.T) {
	dir := t.TempDir()
	ta := deletionApp(t, appOptions{dataDir: dir}, time.Hour)
	ta.setupBot(t, "acme", nil, map[string]string{"Remember": rememberHandler})
	ta.say(t, "acme", map[string]any{"user": "alice", "text": "secret", "intent": "Remember"}).must(t, http.StatusOK)
	do(t, "DELETE", ta.URL+"/v1/bots/acme", adminKey, nil).must(t, http.StatusAccepted)

	r := do(t, "PUT", ta.URL+"/v1/bots/acme", adminKey, map[string]any{}).must(t, http.StatusConflict)
	if r.errCode() != "bot_deleting" {
		t.Fatalf("re-create while deleting: %s", r.Raw)
	}
	g := do(t, "GET", ta.URL+"/v1/bots/acme", adminKey, nil).must(t, http.StatusOK)
	if g.Body["status"] != "deleting" || g.Body["deletion"] == nil {
		t.Fatalf("GET while deleting: %s", g.Raw)
	}
	list := do(t, "GET", ta.URL+"/v1/bots", adminKey, nil).must(t, http.StatusOK)
	if bots, _ := list.Body["bots"].([]any); len(bots) != 0 {
		t.Fatalf("a deleted bot is listed: %s", list.Raw)
	}
	// The first sweep already ran: the store module's value is gone.
	waitUntil(t, "the first sweep", func() bool {
		return !slices.ContainsFunc(slices.Collect(maps.Keys(ta.keysOf(t, "acme"))),
			func(k string) bool { return strings.Contains(k, "kv:{acme}") })
	})
	ta.Close() // the deletion is interrupted while it waits to settle

	// The next start, with a short settle, finishes it. (Whether the name
	// is still taken just after the start depends on how fast this machine
	// runs the 100 ms settle: not asserted.)
	tb := deletionApp(t, appOptions{dataDir: dir}, 100*time.Millisecond)
	waitUntil(t, "the resumed deletion to finish", func() bool {
		return do(t, "GET", tb.URL+"/v1/bots/acme", adminKey, nil).Status == http.StatusNotFound
	})
	if left := tb.keysOf(t, "acme"); len(left) > 0 {
		t.Fatalf("keys of the deleted bot are left: %q", slices.Sorted(maps.Keys(left)))
	}
	do(t, "PUT", tb.URL+"/v1/bots/acme", adminKey, map[string]any{}).must(t, http.StatusCreated)
	do(t, "DELETE", tb.URL+"/v1/bots/ghost", adminKey, nil).must(t, http.StatusNotFound)
}
