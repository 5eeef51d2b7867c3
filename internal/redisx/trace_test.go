package redisx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/internal/tracing/tracingtest"
	"github.com/redis/go-redis/v9"
)

func TestRedisHookRecordsRoundTripsOfATurn(t *testing.T) {
	exp := tracingtest.Record(t)
	rdb := testredis.Embedded(t)
	rdb.AddHook(TracingHook())
	bg := context.Background()
	rdb.Set(bg, "k", "v", 0) // outside a trace: nothing recorded
	ctx, span := tracing.Start(bg, "turn")
	rdb.Set(ctx, "k", "secret-value", 0)
	rdb.Get(ctx, "missing")
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "n")
		p.Expire(ctx, "n", time.Minute)
		return nil
	})
	span.End()
	// A new connection's handshake (HELLO, CLIENT SETINFO) shows too.
	names := map[string]bool{}
	batch := false
	for _, s := range exp.GetSpans() {
		names[s.Name] = true
		if s.SpanContext.TraceID() != span.SpanContext().TraceID() {
			t.Errorf("%s is not in the turn's trace", s.Name)
		}
		if s.Name == "redis GET" && s.Status.Code != 0 {
			t.Errorf("a missing key marked the span failed: %+v", s.Status)
		}
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), "secret-value") {
				t.Errorf("%s records a value", s.Name)
			}
			if a.Key == "db.operation.batch" && strings.Contains(a.Value.String(), "INCR") && strings.Contains(a.Value.String(), "EXPIRE") {
				batch = true
			}
		}
	}
	for _, want := range []string{"redis SET", "redis GET", "redis pipeline", "turn"} {
		if !names[want] {
			t.Errorf("no %q span; spans %v", want, names)
		}
	}
	if !batch {
		t.Error("the pipeline's span does not name its commands")
	}
	if len(exp.GetSpans()) > 8 {
		t.Errorf("%d spans: the Set outside the trace was recorded?", len(exp.GetSpans()))
	}
}
