package queue

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/msg"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// stored is an event as the queue keeps it: the event's own fields, and the
// W3C traceparent of the webhook that enqueued it while tracing, so that
// the turn run later, on any replica, continues the webhook's trace.
type stored struct {
	*msg.Event
	TraceParent string `json:"traceparent,omitempty"`
}

// encodeEvent is ev as stored, with ctx's trace when it records one.
func encodeEvent(ctx context.Context, ev *msg.Event) ([]byte, error) {
	s := stored{Event: ev}
	if tracing.Recording(ctx) {
		carrier := propagation.MapCarrier{}
		otel.GetTextMapPropagator().Inject(ctx, carrier)
		s.TraceParent = carrier.Get("traceparent")
	}
	return json.Marshal(s)
}

// startTurn starts the span of a queued event's turn and send, a child of
// the webhook's span when the event carries its trace (raw is the event as
// stored). While tracing is off it returns ctx and a span that records
// nothing.
func startTurn(ctx context.Context, ev *msg.Event, raw []byte) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return tracing.Start(ctx, "")
	}
	var s struct {
		TraceParent string `json:"traceparent"`
	}
	if json.Unmarshal(raw, &s) == nil && s.TraceParent != "" {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier{"traceparent": s.TraceParent})
	}
	return tracing.Start(ctx, "queue turn", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String(tracing.AttrBot, ev.Bot), attribute.String(tracing.AttrChannel, ev.Channel),
		attribute.String(tracing.AttrConversation, ev.Conversation)))
}
