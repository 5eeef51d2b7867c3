package app

import (
	"context"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestTurnIsOneTrace: with tracing on, a web turn is one trace that
// continues the caller's traceparent: the server span, the turn with its
// bot, channel, conversation, intent and outcome, the handler, and the
// Redis round trips.
func TestTurnIsOneTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tracing.Use(tp)
	t.Cleanup(func() {
		tracing.Use(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
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
