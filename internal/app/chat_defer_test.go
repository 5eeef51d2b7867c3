package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// startOnePartitionApp starts an app on the test Redis whose queue has a
// single partition, so every conversation shares it.
func startOnePartitionApp(t *testing.T, redisURL, prefix string, drain time.Duration) *testApp {
	t.Helper()
	cfg := testConfig(t, appOptions{redisURL: redisURL, prefix: prefix})
	cfg.QueueLease, cfg.QueuePoll, cfg.QueuePartitions = time.Second, 10*time.Millisecond, 1
	if drain > 0 {
		cfg.ShutdownTimeout = drain
	}
	ta := serveApp(t, cfg, testLogger(t))
	return ta
}

// byChannel groups the texts posted per Slack channel, in order, and
// returns the channels in the order of the posts.
func (f *fakePlatform) byChannel() (map[string][]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	texts := map[string][]string{}
	var order []string
	for _, p := range f.posts {
		ch, _ := p["channel"].(string)
		txt, _ := p["text"].(string)
		texts[ch] = append(texts[ch], txt)
		order = append(order, ch)
	}
	return texts, order
}

func echoes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("echo: %s%d #%d", prefix, i, i+1)
	}
	return out
}

// TestRateLimitedUserDoesNotDelayOthers: on a single queue partition, a
// user over rate_limit_per_user waits for the limit, answered in order and
// once each, while other users' messages, sent after, are answered without
// waiting behind them.
func TestRateLimitedUserDoesNotDelayOthers(t *testing.T) {
	ta := startOnePartitionApp(t, testredis.URL(t), testredis.Prefix(t), 0)
	fake := newFakePlatform(t)
	do(t, "PUT", ta.URL+"/v1/bots/lbot", adminKey, map[string]any{"rate_limit_per_user": "1/s"}).must(t, http.StatusCreated)
	ta.connectChat(t, "lbot", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	do(t, "PUT", ta.URL+"/v1/bots/lbot/intents/fallback", adminKey, echoHandler).must(t, http.StatusCreated)
	hook := ta.URL + "/hooks/lbot/slack"
	const n = 3
	for i := range n {
		postSlack(t, hook, "application/json", slackMessage(fmt.Sprintf("EvS%d", i), "D1", "U1", fmt.Sprint("s", i)), slackSecret, 0).must(t, 200)
	}
	others := []string{"D2", "D3", "D4"} // one message each: under the limit
	for _, ch := range others {
		postSlack(t, hook, "application/json", slackMessage("Ev"+ch, ch, "U"+ch, "f0"), slackSecret, 0).must(t, 200)
	}
	// While the limited user's later messages wait, the admin API lists
	// them: one conversation, its next message first.
	var parked []any
	for deadline := time.Now().Add(5 * time.Second); len(parked) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		parked, _ = do(t, "GET", ta.URL+"/v1/bots/lbot/parked", adminKey, nil).must(t, 200).Body["parked"].([]any)
	}
	if len(parked) != 1 {
		t.Fatalf("parked conversations: %v", parked)
	}
	conv, _ := parked[0].(map[string]any)
	next, _ := conv["event"].(map[string]any)
	if entries, _ := conv["entries"].(float64); entries < 1 || next["text"] != "s1" || next["channel"] != "slack" || conv["due"] == nil {
		t.Fatalf("parked conversation: %v", conv)
	}
	do(t, "GET", ta.URL+"/v1/bots/lbot/parked?limit=0", adminKey, nil).must(t, http.StatusBadRequest)
	do(t, "GET", ta.URL+"/v1/bots/lbot/parked", "", nil).must(t, http.StatusUnauthorized)
	fake.waitFor(t, n+len(others))
	time.Sleep(300 * time.Millisecond)
	texts, order := fake.byChannel()
	if !slices.Equal(texts["D1"], echoes("s", n)) {
		t.Fatalf("sent %q", texts)
	}
	for _, ch := range others {
		if !slices.Equal(texts[ch], echoes("f", 1)) {
			t.Fatalf("sent %q", texts)
		}
	}
	// The limited user's second answer waits about a second; the other
	// user's answers came before it.
	var d1 []int
	for i, ch := range order {
		if ch == "D1" {
			d1 = append(d1, i)
		}
	}
	for i, ch := range order {
		if ch != "D1" && i > d1[1] {
			t.Fatalf("the other user waited behind the limited one: %v", order)
		}
	}
	dl, _ := do(t, "GET", ta.URL+"/v1/bots/lbot/deadletters", adminKey, nil).must(t, 200).Body["deadletters"].([]any)
	if len(dl) != 0 {
		t.Fatalf("dead letters: %v", dl)
	}
	if parked, _ := do(t, "GET", ta.URL+"/v1/bots/lbot/parked", adminKey, nil).must(t, 200).Body["parked"].([]any); len(parked) != 0 {
		t.Fatalf("still parked after every answer: %v", parked)
	}
}

// TestReplicaKilledWhileMessagesParked: a replica parks a rate-limited
// user's messages and is killed before their time comes; the survivor
// answers every message (Slack's retries of them included) exactly once, in
// order, and the other user's too.
func TestReplicaKilledWhileMessagesParked(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startOnePartitionApp(t, url, prefix, time.Millisecond)
	fake := newFakePlatform(t)
	do(t, "PUT", a.URL+"/v1/bots/kbot", adminKey, map[string]any{"rate_limit_per_user": "1/s"}).must(t, http.StatusCreated)
	a.connectChat(t, "kbot", "slack", map[string]string{"signing_secret": slackSecret, "bot_token": slackToken,
		"api_base_url": fake.srv.URL + "/api"})
	do(t, "PUT", a.URL+"/v1/bots/kbot/intents/fallback", adminKey, echoHandler).must(t, http.StatusCreated)
	cut := &partition{}
	a.store.Client().AddHook(cut)
	a.queueConn.Client().AddHook(cut)
	rdb := a.store.Client()
	ctx := context.Background()
	waitKey := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitKey("replica a holding the partition", func() bool { return rdb.Exists(ctx, prefix+"q:{p0}:lease").Val() == 1 })
	b := startOnePartitionApp(t, url, prefix, 0)
	brdb := b.store.Client()

	const n = 5
	msg := func(ch, text string, i int) string {
		return slackMessage(fmt.Sprintf("Ev%s%d", ch, i), ch, "U"+ch, fmt.Sprint(text, i))
	}
	for i := range 3 {
		postSlack(t, a.URL+"/hooks/kbot/slack", "application/json", msg("D1", "m", i), slackSecret, 0).must(t, 200)
	}
	// The first is answered; the second waits for the limit and the third
	// behind it.
	fake.waitFor(t, 1)
	waitKey("two parked messages", func() bool { return brdb.Get(ctx, prefix+"q:{p0}:parked-count").Val() == "2" })
	cut.dead.Store(true)
	a.cutOff = true
	a.stop()

	for i := range n {
		target := b.URL + "/hooks/kbot/slack"
		if i < 3 {
			postSlack(t, target, "application/json", msg("D1", "m", i), slackSecret, 1).must(t, 200) // Slack's retry
		} else {
			postSlack(t, target, "application/json", msg("D1", "m", i), slackSecret, 0).must(t, 200)
		}
		postSlack(t, target, "application/json", msg("D2", "o", i), slackSecret, 0).must(t, 200)
	}
	fake.waitFor(t, 2*n)
	time.Sleep(500 * time.Millisecond)
	texts, _ := fake.byChannel()
	if !slices.Equal(texts["D1"], echoes("m", n)) || !slices.Equal(texts["D2"], echoes("o", n)) {
		t.Fatalf("sent %q, want each once, in order", texts)
	}
	if left := brdb.Get(ctx, prefix+"q:{p0}:parked-count").Val(); left != "" {
		t.Fatalf("%s messages still parked", left)
	}
}
