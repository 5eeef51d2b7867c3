package llm

import (
	"context"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/sandbox"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// startSpan starts the span of one model call, named and described by the
// OpenTelemetry semantic conventions for generative AI ("chat {model}",
// gen_ai.* attributes): the operation, the provider, the model asked for
// and the request's parameters. Neither the messages nor the answer are
// recorded: they are the users' words. Without a recording turn it costs
// nothing.
func startSpan(ctx context.Context, req *sandbox.LLMRequest, model string) (context.Context, trace.Span) {
	if !tracing.Recording(ctx) {
		return ctx, trace.SpanFromContext(context.Background())
	}
	attrs := []attribute.KeyValue{semconv.GenAIOperationNameChat, provider(req.Settings.BaseURL),
		semconv.GenAIRequestModel(model)}
	if u, err := url.Parse(req.Settings.BaseURL); err == nil && u.Hostname() != "" {
		attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
	}
	if req.MaxTokens > 0 {
		attrs = append(attrs, semconv.GenAIRequestMaxTokens(req.MaxTokens))
	}
	if req.Temperature != nil {
		attrs = append(attrs, semconv.GenAIRequestTemperature(*req.Temperature))
	}
	if req.JSON {
		attrs = append(attrs, semconv.GenAIOutputTypeJSON)
	}
	return tracing.Start(ctx, "chat "+model, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endSpan records the answer's model, finish reason and token usage, or
// the failure, and ends the span.
func endSpan(span trace.Span, resp *sandbox.LLMResponse, outcome string, err error) {
	if !span.IsRecording() {
		return
	}
	if resp != nil {
		if resp.Model != "" {
			span.SetAttributes(semconv.GenAIResponseModel(resp.Model))
		}
		if resp.FinishReason != "" {
			span.SetAttributes(semconv.GenAIResponseFinishReasons(resp.FinishReason))
		}
		span.SetAttributes(semconv.GenAIUsageInputTokens(resp.InputTokens), semconv.GenAIUsageOutputTokens(resp.OutputTokens))
	}
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(outcome))
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// provider names the model API's provider as the conventions do: OpenAI's
// own API by its host, any other OpenAI-compatible API by that protocol.
func provider(baseURL string) attribute.KeyValue {
	if u, err := url.Parse(baseURL); err == nil {
		switch host := u.Hostname(); {
		case host == "api.openai.com":
			return semconv.GenAIProviderNameOpenAI
		case strings.HasSuffix(host, ".openai.azure.com"):
			return semconv.GenAIProviderNameAzureAIOpenAI
		}
	}
	return semconv.GenAIProviderNameKey.String("openai_compatible")
}
