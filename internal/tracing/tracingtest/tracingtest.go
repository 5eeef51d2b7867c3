// Package tracingtest records the spans of a test: Record turns tracing on
// with an in-memory exporter for the duration of the test, and back off at
// its end.
//
//	exp := tracingtest.Record(t)
//	... run a traced turn ...
//	spans := exp.GetSpans()
package tracingtest

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/parleyhq/parley/internal/tracing"
)

// Record makes spans record, synchronously, into the exporter it returns,
// until t ends. Tests that use it must not run in parallel with other
// traced tests: the tracer provider is the process's.
func Record(t testing.TB) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tracing.Use(tp)
	t.Cleanup(func() {
		tracing.Use(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	return exp
}
