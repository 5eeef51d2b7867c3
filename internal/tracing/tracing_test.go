package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// record installs a tracer provider that keeps every span in memory, for
// the duration of the test.
func record(t *testing.T) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	Use(tp)
	t.Cleanup(func() {
		Use(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	return exp
}

func TestTransportCarriesTheTrace(t *testing.T) {
	exp := record(t)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	client := &http.Client{Transport: Transport(nil)}

	ctx, span := Start(context.Background(), "turn")
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/secret/path?token=abc", strings.NewReader("x"))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span.End()
	// Outside a trace nothing is added.
	req, _ = http.NewRequest("GET", srv.URL, nil)
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	trace := span.SpanContext().TraceID().String()
	if len(got) != 2 || !strings.Contains(got[0], trace) || got[1] != "" {
		t.Fatalf("traceparent headers %q, want the trace %s on the first request only", got, trace)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[0].Name != "HTTP POST" || spans[0].Parent.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("spans %+v", spans)
	}
	for _, a := range spans[0].Attributes {
		if strings.Contains(a.Value.String(), "secret") || strings.Contains(a.Value.String(), "token") {
			t.Errorf("the client span records the URL's path or query: %s=%s", a.Key, a.Value.String())
		}
		if a.Key == "http.response.status_code" && a.Value.AsInt64() != http.StatusTeapot {
			t.Errorf("status %v", a.Value.AsInt64())
		}
	}
}

// TestSetupExportsOverOTLP: with an OTLP endpoint, spans reach a receiver
// speaking OTLP/HTTP, named for the service.
func TestSetupExportsOverOTLP(t *testing.T) {
	got := make(chan *collectortrace.ExportTraceServiceRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		got <- &req
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	shutdown, err := Setup(context.Background(), "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Use(noop.NewTracerProvider()) })
	_, span := Start(context.Background(), "turn")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		rs := req.GetResourceSpans()
		if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || rs[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "turn" {
			t.Fatalf("export %v", req)
		}
		attrs := map[string]string{}
		for _, a := range rs[0].GetResource().GetAttributes() {
			attrs[a.GetKey()] = a.GetValue().GetStringValue()
		}
		if attrs["service.name"] != "parley" || attrs["service.version"] != "v1.2.3" {
			t.Errorf("resource %v", attrs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing exported")
	}
}
