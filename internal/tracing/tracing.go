// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// variables and holds the small pieces of instrumentation the rest of Parley
// shares: the tracer and an HTTP transport that propagates and records the
// current turn's trace (the go-redis hook is redisx.TracingHook).
//
// Tracing is off unless configured: with no exporter the global tracer
// provider stays OpenTelemetry's no-op, and every span below costs next to
// nothing. The configuration decides (config.Config.Tracing: an OTLP
// endpoint or OTEL_TRACES_EXPORTER=otlp), and [Setup] turns it on; the
// OTLP/HTTP exporter then reads its own OTEL_EXPORTER_OTLP_* variables
// (endpoint, headers, timeout, protocol http/protobuf), the SDK the sampler
// (OTEL_TRACES_SAMPLER, default parentbased_always_on) and the resource
// (OTEL_SERVICE_NAME, default "parley"; OTEL_RESOURCE_ATTRIBUTES).
//
// One turn is one trace: the webhook's server span (continuing a W3C
// traceparent the caller sent), the engine's turn span with the bot,
// channel, conversation and intent, the handler's span, a span per Redis
// round trip and per outbound HTTP request (handlers' http calls, platform
// sends), whose requests carry the trace on in a traceparent header.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName names Parley's tracer.
const tracerName = "github.com/parleyhq/parley"

// tracer is Parley's tracer once [Use] installed a provider; nil while
// tracing is off.
var tracer atomic.Pointer[trace.Tracer]

// off is the span of a context without one: it records nothing, and
// returning it allocates nothing.
var off = trace.SpanFromContext(context.Background())

// Start starts a span with Parley's tracer. Until [Setup] or [Use] installs
// a provider it returns ctx and a span that records nothing, without
// asking OpenTelemetry's global provider (a lock and a map lookup) or
// allocating: every turn starts several spans.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t := tracer.Load()
	if t == nil {
		return ctx, off
	}
	return (*t).Start(ctx, name, opts...)
}

// StartNamed is [Start] of a span named prefix+name, joined only when
// tracing is on.
func StartNamed(ctx context.Context, prefix, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if tracer.Load() == nil {
		return ctx, off
	}
	return Start(ctx, prefix+name, opts...)
}

// Enabled reports whether a tracer provider is installed, so that callers
// skip work spans would need (extracting a caller's trace context, naming
// a span) while tracing is off.
func Enabled() bool { return tracer.Load() != nil }

// Attribute keys of Parley's own span attributes.
const (
	AttrBot          = "parley.bot"
	AttrChannel      = "parley.channel"
	AttrConversation = "parley.conversation"
	AttrIntent       = "parley.intent"
	AttrOutcome      = "parley.outcome"
	AttrVersion      = "parley.handler.version"
)

// Setup installs a tracer provider exporting over OTLP/HTTP, configured by
// the standard OTEL_* variables, and the W3C trace-context propagator.
// Call it only when tracing is enabled (config.Config.Tracing). The
// shutdown flushes the spans not yet exported.
func Setup(ctx context.Context, version string) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceVersion(version)))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return noop, fmt.Errorf("trace resource: %w", err)
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" && !strings.Contains(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), "service.name=") {
		res, _ = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName("parley")))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	Use(tp)
	return tp.Shutdown, nil
}

// Use installs tp as the global tracer provider with the W3C trace-context
// and baggage propagators. Tests use it with an in-memory exporter, and
// with a no-op provider to turn tracing off again ([Enabled] is then false).
func Use(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if _, off := tp.(noop.TracerProvider); off {
		tracer.Store(nil)
		return
	}
	t := tp.Tracer(tracerName)
	tracer.Store(&t)
}

// Recording reports whether ctx carries a span that records, so that
// callers build attributes only when someone will read them.
func Recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }
