package app

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/purge"
	"github.com/parleyhq/parley/internal/testredis"
)

// startAnalyticsApp starts an app on the real test Redis with cfg edited.
func startAnalyticsApp(t testing.TB, edit func(*config.Config)) *testApp {
	t.Helper()
	cfg, err := config.Load([]string{"PARLEY_ADMIN_KEY=" + adminKey, secretKeyEnv, "PARLEY_SNAPSHOT_INTERVAL=1h",
		"PARLEY_REDIS_CONNECT_TIMEOUT=2s", "PARLEY_ANALYTICS_FLUSH_INTERVAL=50ms"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL, cfg.DataDir, cfg.KeyPrefix = testredis.URL(t), t.TempDir(), testredis.Prefix(t)
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("PARLEY_TEST_VERBOSE") != "" {
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ta := serveApp(t, cfg, log)
	return ta
}

var shop = map[string]string{
	"Greet":    `function handle(e, s) return "Hello " .. e.user end`,
	"Order":    `function handle(e, s) if e.text == "boom" then error("kaput") end return "Ordered" end`,
	"Pay":      `function handle(e, s) return {text = "Card " .. e.text .. " noted", sensitive = true} end`,
	"Bye":      `function handle(e, s) return {text = "Bye", end_conversation = true} end`,
	"fallback": `function handle(e, s) return "Sorry?" end`,
}

// TestAnalyticsMatchAnIndependentCount sends turns through the web channel,
// counts them on the side, and checks what the analytics API, the
// conversation routes, erasure and /metrics report.
func TestAnalyticsMatchAnIndependentCount(t *testing.T) {
	ta := startAnalyticsApp(t, nil)
	ta.setupBot(t, "shop", nil, shop)

	const n, users = 150, 12
	type count struct{ turns, fallback, errors, conversations int }
	var total count
	byIntent := make(map[string]int)
	fallbacks := make(map[string]int)
	perUser := make(map[string]int)
	hasSession := make(map[string]bool)
	phrases := []string{"Where is my parcel", "where is my  parcel", "talk to a human"}
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u%d", i%users)
		msg := map[string]any{"user": user}
		intent := ""
		switch k := i % 10; {
		case k < 3:
			intent, msg["text"] = "Greet", "hi"
		case k < 5:
			intent, msg["text"] = "Order", "a pizza"
			if i%20 == 3 {
				msg["text"] = "boom"
				total.errors++
			}
		case k == 5:
			intent, msg["text"] = "Pay", fmt.Sprintf("card-secret-%04d", i)
		case k == 6:
			intent, msg["text"] = "Bye", "bye"
		default:
			msg["text"] = phrases[i%3]
			fallbacks[strings.Join(strings.Fields(strings.ToLower(phrases[i%3])), " ")]++
			total.fallback++
		}
		if intent != "" {
			msg["intent"] = intent
		} else {
			intent = "fallback"
		}
		// A turn without a session starts a conversation; a failed turn
		// saves nothing, Bye ends the conversation, any other turn keeps it.
		if !hasSession[user] {
			total.conversations++
		}
		switch {
		case msg["text"] == "boom":
		case intent == "Bye":
			hasSession[user] = false
		default:
			hasSession[user] = true
		}
		total.turns++
		byIntent[intent]++
		perUser[user]++
		r := ta.say(t, "shop", msg).must(t, http.StatusOK)
		if r.Header.Get("X-Request-Id") == "" {
			t.Fatal("no X-Request-Id in the answer")
		}
	}
	// A webhook with a wrong token is refused and counted as rejected.
	do(t, "POST", ta.URL+"/hooks/shop/web", "wrong-token-0123456789", map[string]any{"user": "x", "text": "hi"}).must(t, http.StatusUnauthorized)
	flush(t, ta)

	get := func(path string, params url.Values) map[string]any {
		t.Helper()
		return do(t, "GET", ta.URL+path+"?"+params.Encode(), adminKey, nil).must(t, http.StatusOK).Body
	}
	rep := get("/v1/bots/shop/analytics", url.Values{"from": {"-1h"}})
	tot := rep["totals"].(map[string]any)
	want := map[string]float64{"turns": float64(total.turns), "conversations": float64(total.conversations),
		"users": users, "new_users": users, "rejected": 1,
		"fallback_rate": round6(float64(total.fallback) / float64(total.turns)),
		"error_rate":    round6(float64(total.errors) / float64(total.turns))}
	for k, v := range want {
		if tot[k] != v {
			t.Errorf("totals.%s = %v, want %v", k, tot[k], v)
		}
	}
	if rep["step"] != "minute" {
		t.Errorf("step %v for the last hour, want minute", rep["step"])
	}
	lat := tot["latency_ms"].(map[string]any)
	if !(lat["p50"].(float64) > 0 && lat["p50"].(float64) <= lat["p95"].(float64) && lat["p95"].(float64) <= lat["p99"].(float64)) {
		t.Errorf("latency percentiles %v", lat)
	}
	var seriesTurns float64
	for _, p := range rep["series"].([]any) {
		seriesTurns += p.(map[string]any)["turns"].(float64)
	}
	if seriesTurns != float64(total.turns) {
		t.Errorf("series add up to %v turns, want %d", seriesTurns, total.turns)
	}

	rep = get("/v1/bots/shop/analytics", url.Values{"from": {"-1h"}, "group_by": {"intent"}, "step": {"hour"}})
	for _, g := range rep["groups"].([]any) {
		g := g.(map[string]any)
		intent := g["group"].(map[string]any)["intent"].(string)
		if g["turns"] != float64(byIntent[intent]) {
			t.Errorf("intent %s: %v turns, want %d", intent, g["turns"], byIntent[intent])
		}
		if _, ok := g["users"]; ok {
			t.Errorf("intent %s reports users", intent)
		}
	}
	rep = get("/v1/bots/shop/analytics", url.Values{"from": {"-1h"}, "intent": {"Order"}, "channel": {"web"}})
	if got := rep["totals"].(map[string]any); got["turns"] != float64(byIntent["Order"]) || got["error_rate"] != round6(float64(total.errors)/float64(byIntent["Order"])) {
		t.Errorf("Order on web: %v", got)
	}
	bad := do(t, "GET", ta.URL+"/v1/bots/shop/analytics?from=yesterday", adminKey, nil).must(t, http.StatusBadRequest)
	if bad.errCode() != "invalid" {
		t.Errorf("bad from: %s", bad.Raw)
	}
	do(t, "GET", ta.URL+"/v1/bots/nobot/analytics", adminKey, nil).must(t, http.StatusNotFound)

	fb := get("/v1/bots/shop/analytics/fallbacks", url.Values{"limit": {"1"}})
	top := fb["utterances"].([]any)
	if len(top) != 1 || top[0].(map[string]any)["text"] != "where is my parcel" || top[0].(map[string]any)["count"] != float64(fallbacks["where is my parcel"]) {
		t.Errorf("top fallback %v, want %q x %d", top, "where is my parcel", fallbacks["where is my parcel"])
	}

	list := get("/v1/bots/shop/conversations", url.Values{"user": {"u3"}})["conversations"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["conversation"] != "u3" || list[0].(map[string]any)["turns"] != float64(perUser["u3"]) {
		t.Errorf("u3's conversations %v", list)
	}
	if all := get("/v1/bots/shop/conversations", url.Values{"limit": {"100"}})["conversations"].([]any); len(all) != users {
		t.Errorf("%d conversations listed, want %d", len(all), users)
	}
	conv := get("/v1/bots/shop/conversations/web/u5", nil)
	transcript := conv["transcript"].([]any)
	if len(transcript) != perUser["u5"] || conv["state"] == nil {
		t.Fatalf("u5's conversation: %d transcript entries, want %d; %v", len(transcript), perUser["u5"], conv)
	}
	if raw := do(t, "GET", ta.URL+"/v1/bots/shop/conversations/web/u5", adminKey, nil).Raw; strings.Contains(raw, "card-secret") {
		t.Errorf("a sensitive turn's text is in the conversation: %s", raw)
	}
	for _, e := range transcript {
		e := e.(map[string]any)
		if e["intent"] == "Pay" && (e["sensitive"] != true || e["text"] != nil || e["reply"] != nil) {
			t.Errorf("sensitive entry %v", e)
		}
		if e["request_id"] == nil || e["outcome"] == nil {
			t.Errorf("entry without request id or outcome: %v", e)
		}
	}

	metrics := do(t, "GET", ta.URL+"/metrics", "", nil).must(t, http.StatusOK).Raw
	for _, line := range []string{
		fmt.Sprintf(`parley_turns_total{bot="shop",channel="web",intent="Greet",outcome="handled"} %d`, byIntent["Greet"]),
		`parley_webhook_verification_failures_total{bot="shop",channel="web"} 1`,
		`parley_stage_duration_seconds_count{stage="handler"}`, `parley_stage_duration_seconds_count{stage="redis"}`,
		`parley_stage_duration_seconds_count{stage="adapter"}`, `parley_stage_duration_seconds_count{stage="send"}`,
		`parley_stage_duration_seconds_count{stage="routing"}`, `parley_sandbox_vms`, `parley_queue_depth{queue="analytics"}`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// Erasure: u5's session, transcript, invocation logs and remembered
	// answers go, the aggregates stay.
	logsOf := func(conv string) int {
		n := 0
		r := do(t, "GET", ta.URL+"/v1/bots/shop/logs?limit=500", adminKey, nil).must(t, http.StatusOK)
		invs, _ := r.Body["invocations"].([]any)
		for _, inv := range invs {
			if inv.(map[string]any)["conversation"] == conv {
				n++
			}
		}
		return n
	}
	var u5Base string           // the start of the conversation's key names, which hold a hash of it
	u5Keys := func() []string { // the conversation's keys that exist
		var found []string
		for _, k := range []string{"state", "hist", "answers", "msg:u5-last"} {
			key := u5Base + k
			if n, err := ta.store.Client().Exists(context.Background(), key).Result(); err != nil {
				t.Fatal(err)
			} else if n == 1 {
				found = append(found, key)
			}
		}
		return found
	}
	ta.say(t, "shop", map[string]any{"user": "u5", "id": "u5-last", "intent": "Greet"}).must(t, http.StatusOK)
	total.turns++
	ta.invocations.Flush(context.Background())
	var markers []string
	if err := purge.Scan(context.Background(), ta.store.Client(), ta.cfg.KeyPrefix+"{shop:*}:msg:u5-last", 1000, func(keys []string) error {
		markers = append(markers, keys...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(markers) == 1 {
		u5Base = strings.TrimSuffix(markers[0], "msg:u5-last")
	}
	if logsOf("u5") == 0 || len(u5Keys()) != 4 {
		t.Fatalf("before erasure: %d invocation logs and keys %v of u5", logsOf("u5"), u5Keys())
	}
	before := logsOf("u3")
	er := do(t, "DELETE", ta.URL+"/v1/bots/shop/users/u5", adminKey, nil).must(t, http.StatusOK).Body
	removed, _ := er["removed"].(map[string]any)
	if convs, _ := er["conversations"].([]any); len(convs) != 1 || removed["invocation_logs"] == nil || removed["invocation_logs"] == float64(0) ||
		removed["dead_letters"] != float64(0) {
		t.Errorf("erasure %v", er)
	}
	if n := logsOf("u5"); n != 0 {
		t.Errorf("%d invocation logs of u5 left after erasure", n)
	}
	if n := logsOf("u3"); n != before {
		t.Errorf("u3's invocation logs went from %d to %d", before, n)
	}
	if keys := u5Keys(); len(keys) != 0 {
		t.Errorf("keys of u5's conversation left after erasure (remembered answers?): %v", keys)
	}
	conv = get("/v1/bots/shop/conversations/web/u5", nil)
	if conv["active"] != false || len(conv["transcript"].([]any)) != 0 || len(conv["history"].([]any)) != 0 || conv["summary"] != nil {
		t.Errorf("u5 after erasure: %v", conv)
	}
	if list := get("/v1/bots/shop/conversations", url.Values{"user": {"u5"}})["conversations"].([]any); len(list) != 0 {
		t.Errorf("u5 still has conversations: %v", list)
	}
	after := get("/v1/bots/shop/analytics", url.Values{"from": {"-1h"}})["totals"].(map[string]any)
	if after["turns"] != float64(total.turns) {
		t.Errorf("turns after erasure %v, want %d", after["turns"], total.turns)
	}
}

func TestMetricsCanRequireTheAdminKey(t *testing.T) {
	ta := startAnalyticsApp(t, func(c *config.Config) { c.MetricsAccess = "admin" })
	do(t, "GET", ta.URL+"/metrics", "", nil).must(t, http.StatusUnauthorized)
	do(t, "GET", ta.URL+"/metrics", adminKey, nil).must(t, http.StatusOK)
	ta = startAnalyticsApp(t, func(c *config.Config) { c.MetricsAccess = "off" })
	do(t, "GET", ta.URL+"/metrics", adminKey, nil).must(t, http.StatusNotFound)
}

func TestRequestIDIsHonoured(t *testing.T) {
	ta := startAnalyticsApp(t, nil)
	req, _ := http.NewRequest("GET", ta.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "trace-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
}

func flush(t testing.TB, ta *testApp) {
	t.Helper()
	if err := ta.obs.analytics.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
