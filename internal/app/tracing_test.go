package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/internal/tracing/tracingtest"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTurnIsOneTrace: with tracing on, a web turn is one trace that
// continues the caller's traceparent: the server span, the adapter's
// parse and render, the turn with its bot, channel, conversation, intent
// and outcome, the handler, and the Redis round trips.
func TestTurnIsOneTrace(t *testing.T) {
	exp := tracingtest.Record(t)
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.Tracing = true
	ta := serveApp(t, cfg, testLogger(t))
	ta.setupBot(t, "traced", nil, map[string]string{"Greet": `function handle(e) return "hi" end`})

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := do(t, "POST", ta.URL+"/hooks/traced/web", webToken, map[string]any{"user": "alice", "intent": "Greet"},
		"Traceparent", parent).must(t, http.StatusOK)
	if got := firstReply(t, r); got != "hi" {
		t.Fatalf("reply %q", got)
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			byName[s.Name] = s
		}
	}
	server, turn, handler := byName["POST /hooks/:bot/:channel"], byName["turn"], byName["handler Greet"]
	if server.Name == "" || turn.Name == "" || handler.Name == "" {
		t.Fatalf("spans of the caller's trace: %v", keys(byName))
	}
	if server.Parent.SpanID().String() != "00f067aa0ba902b7" || turn.Parent.SpanID() != server.SpanContext.SpanID() ||
		handler.Parent.SpanID() != turn.SpanContext.SpanID() {
		t.Errorf("span tree: server's parent %s, turn's %s, handler's %s", server.Parent.SpanID(), turn.Parent.SpanID(), handler.Parent.SpanID())
	}
	for _, step := range []string{"adapter parse web", "adapter render web"} {
		if s, ok := byName[step]; !ok || s.Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("no %s span under the server span: %v", step, keys(byName))
		}
	}
	attrs := map[string]string{}
	for _, a := range turn.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	for k, want := range map[string]string{tracing.AttrBot: "traced", tracing.AttrChannel: "web",
		tracing.AttrConversation: "web:alice", tracing.AttrIntent: "Greet", tracing.AttrOutcome: "handled"} {
		if attrs[k] != want {
			t.Errorf("turn attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
	redisSpans := 0
	for name := range byName {
		if len(name) > 6 && name[:6] == "redis " {
			redisSpans++
		}
	}
	if redisSpans == 0 {
		t.Errorf("no Redis round trip in the trace: %v", keys(byName))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestQueuedTurnContinuesTheWebhooksTrace: an asynchronous channel's turn
// runs later from the queue, yet it is the same trace as the webhook that
// brought it: the queued turn's span is the webhook span's child, the
// engine's turn and the platform send are under it, and the send carries
// the trace on to the platform in a traceparent.
func TestQueuedTurnContinuesTheWebhooksTrace(t *testing.T) {
	exp := tracingtest.Record(t)
	var mu sync.Mutex
	var sent []string // the traceparent of every send
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"result":{"message_id":1,"date":1700000000,"chat":{"id":42,"type":"private"}}}`)
	}))
	t.Cleanup(api.Close)
	cfg := testConfig(t, appOptions{redisURL: testredis.URL(t), prefix: testredis.Prefix(t)})
	cfg.Tracing = true
	cfg.QueueLease, cfg.QueuePoll, cfg.QueuePartitions = time.Second, 10*time.Millisecond, 2
	ta := serveApp(t, cfg, testLogger(t))
	ta.setupChatBot(t, "tg", "telegram", map[string]string{"secret_token": telegramSecret,
		"bot_token": telegramToken, "api_base_url": api.URL})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	h := http.Header{"Content-Type": {"application/json"}, "X-Telegram-Bot-Api-Secret-Token": {telegramSecret},
		"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}}
	chatPost(t, http.MethodPost, ta.URL+"/hooks/tg/telegram", h, []byte(telegramText(7001, "hello"))).must(t, http.StatusOK)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(sent)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reply sent")
		}
	}
	byName := map[string]tracetest.SpanStub{}
	var spans tracetest.SpanStubs
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// The queued turn's span ends just after the send is recorded.
		spans = exp.GetSpans()
		for _, s := range spans {
			if s.SpanContext.TraceID().String() == traceID {
				byName[s.Name] = s
			}
		}
		if _, ok := byName["queue turn"]; ok || time.Now().After(deadline) {
			break
		}
	}
	server, queued, turn, send := byName["POST /hooks/:bot/:channel"], byName["queue turn"], byName["turn"], byName["HTTP POST"]
	if server.Name == "" || queued.Name == "" || turn.Name == "" || send.Name == "" {
		t.Fatalf("spans of the webhook's trace: %v", keys(byName))
	}
	if queued.Parent.SpanID() != server.SpanContext.SpanID() || turn.Parent.SpanID() != queued.SpanContext.SpanID() ||
		send.Parent.SpanID() != queued.SpanContext.SpanID() {
		t.Errorf("span tree: queued turn's parent %s (server %s), turn's %s, send's %s (queued %s)", queued.Parent.SpanID(),
			server.SpanContext.SpanID(), turn.Parent.SpanID(), send.Parent.SpanID(), queued.SpanContext.SpanID())
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "00-" + traceID + "-" + send.SpanContext.SpanID().String() + "-01"; sent[0] != want {
		t.Errorf("the send's traceparent %q, want %q", sent[0], want)
	}
}
