package config

import (
	"strings"
	"testing"
)

func TestTracingFromTheStandardVariables(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
		err  string
	}{
		{nil, false, ""},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"}, true, ""},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://collector:4318/v1/traces"}, true, ""},
		{[]string{"OTEL_TRACES_EXPORTER=otlp"}, true, ""},
		{[]string{"OTEL_TRACES_EXPORTER=none", "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"}, false, ""},
		{[]string{"OTEL_SDK_DISABLED=true", "OTEL_TRACES_EXPORTER=otlp"}, false, ""},
		{[]string{"OTEL_TRACES_EXPORTER=jaeger"}, false, "OTEL_TRACES_EXPORTER must be otlp or none"},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"}, false, "must be http/protobuf"},
	} {
		c, err := Load(append([]string{"PARLEY_ADMIN_KEY=0123456789abcdef"}, tc.env...))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one saying %q", tc.env, err, tc.err)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case c.Tracing != tc.want:
			t.Errorf("%v: tracing %v, want %v", tc.env, c.Tracing, tc.want)
		}
	}
}
