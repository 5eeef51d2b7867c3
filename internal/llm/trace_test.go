package llm

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/llm/llmtest"
	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/internal/tracing/tracingtest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestModelCallSpan: within a traced turn, a model call is a client span
// named and described by the GenAI semantic conventions, the parent of the
// HTTP request, which carries the trace to the API in a traceparent; the
// conversation's words are not recorded.
func TestModelCallSpan(t *testing.T) {
	exp := tracingtest.Record(t)
	h := newHarness(t, func(*llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "Opening hours are 9 to 5.", InputTokens: 31, OutputTokens: 9, Model: "test-model-2026"}
	})
	req := h.request("When are you open?")
	temp := 0.2
	req.Temperature, req.MaxTokens = &temp, 300
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx, turn := tracing.Start(ctx, "turn")
	if _, err := h.client.Chat(ctx, req); err != nil {
		t.Fatal(err)
	}
	turn.End()

	spans := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		spans[s.Name] = s
	}
	model, ok := spans["chat test-model"]
	if !ok {
		t.Fatalf("no span named chat test-model among %v", names(exp.GetSpans()))
	}
	if model.SpanKind != trace.SpanKindClient || model.Parent.SpanID() != spans["turn"].SpanContext.SpanID() {
		t.Errorf("model span: kind %v, parent %v", model.SpanKind, model.Parent.SpanID())
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, a := range model.Attributes {
		attrs[a.Key] = a.Value
	}
	for key, want := range map[attribute.Key]any{
		"gen_ai.operation.name":      "chat",
		"gen_ai.provider.name":       "openai_compatible",
		"gen_ai.request.model":       "test-model",
		"gen_ai.request.max_tokens":  int64(300),
		"gen_ai.request.temperature": 0.2,
		"gen_ai.response.model":      "test-model-2026",
		"gen_ai.usage.input_tokens":  int64(31),
		"gen_ai.usage.output_tokens": int64(9),
	} {
		if got := attrs[key].AsInterface(); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if got := attrs["gen_ai.response.finish_reasons"].AsStringSlice(); len(got) != 1 || got[0] != "stop" {
		t.Errorf("finish reasons %v", got)
	}
	for key, v := range attrs {
		if s := v.String(); s == "When are you open?" || s == "Opening hours are 9 to 5." {
			t.Errorf("%s records the conversation: %q", key, s)
		}
	}
	httpSpan, ok := spans["HTTP POST"]
	if !ok || httpSpan.Parent.SpanID() != model.SpanContext.SpanID() {
		t.Fatalf("the request's span is not the model span's child: %v", names(exp.GetSpans()))
	}
	tp0 := h.srv.Requests()[0].Header.Get("Traceparent")
	if want := httpSpan.SpanContext.TraceID().String(); len(tp0) < 55 || tp0[3:35] != want {
		t.Errorf("traceparent %q, want trace %s", tp0, want)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
