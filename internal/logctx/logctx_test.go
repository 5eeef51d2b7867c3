package logctx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestRequestIDIsLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil))).With("component", "engine")
	ctx := WithRequestID(context.Background(), "req-1")
	log.InfoContext(ctx, "turn", "bot", "b")
	log.Info("no context")

	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	if first["request_id"] != "req-1" || first["component"] != "engine" {
		t.Errorf("first record = %v", first)
	}
	if _, ok := second["request_id"]; ok {
		t.Errorf("record without a request id got one: %v", second)
	}
	if RequestID(context.Background()) != "" || RequestID(ctx) != "req-1" {
		t.Error("RequestID does not read back what WithRequestID stored")
	}
	if h := NewHandler(NewHandler(slog.DiscardHandler)); h.(handler).Handler != slog.DiscardHandler {
		t.Error("wrapping twice nests handlers")
	}
}
