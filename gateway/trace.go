package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/logctx"
	"github.com/parleyhq/parley/internal/tracing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Instruments receives stage timings and refused webhooks, for metrics and
// analytics; *analytics.Service and *metrics.Metrics implement it.
type Instruments interface {
	// ObserveStage records how long a stage of a turn took (metrics.StageAdapter, StageSend).
	ObserveStage(stage string, d time.Duration)
	// WebhookRejected reports a webhook to a configured bot and channel
	// that got an error status instead of a turn.
	WebhookRejected(bot, channel string, status int)
}

// RequestObserver counts HTTP requests; *metrics.Metrics implements it.
type RequestObserver interface {
	// ObserveHTTP records one request by its route template ("" when no
	// route matched), method and status, and how long it took.
	ObserveHTTP(route, method string, status int, d time.Duration)
}

// Keys of values the webhook handler leaves in the gin context for trace.
const (
	// ctxHookTarget is set once the webhook's bot and channel are known to be configured.
	ctxHookTarget = "parley.hook_target"
	// ctxTurnFailed holds the status of a turn that could not run although
	// the channel answered the platform with an apology.
	ctxTurnFailed = "parley.turn_failed"
	// maxRequestIDLength bounds an X-Request-Id taken from the client.
	maxRequestIDLength = 128
)

// serverSpan marks a request's span; made once, as building an option
// allocates.
var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// trace gives every request an id (the client's X-Request-Id when it is
// sensible, else a new one), echoes it, and puts it in the request context
// so that every log line of the request carries it. After a webhook it
// reports refused ones to the instruments.
func (s *Server) trace(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Header("X-Request-Id", id)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	ctx := c.Request.Context()
	if tracing.Enabled() { // reading the caller's trace context costs allocations
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(c.Request.Header))
	}
	ctx, span := tracing.StartNamed(ctx, c.Request.Method+" ", route, serverSpan)
	defer span.End()
	c.Request = c.Request.WithContext(logctx.WithRequestID(ctx, id))
	start := time.Now()
	c.Next()
	status, took := c.Writer.Status(), time.Since(start)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", c.Request.Method), attribute.String("http.route", route),
			attribute.Int("http.response.status_code", status), attribute.String("parley.request_id", id))
		if bot := c.Param("bot"); bot != "" {
			span.SetAttributes(attribute.String(tracing.AttrBot, bot))
		}
		if ch := c.Param("channel"); ch != "" {
			span.SetAttributes(attribute.String(tracing.AttrChannel, ch))
		}
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	if s.log.Enabled(c, slog.LevelDebug) { // the arguments cost allocations even when the line is not logged
		s.log.DebugContext(c, "request", "method", c.Request.Method, "route", route, "status", status,
			"duration_ms", float64(took.Microseconds())/1000)
	}
	if s.cfg.Requests != nil {
		s.cfg.Requests.ObserveHTTP(c.FullPath(), c.Request.Method, status, took)
	}
	if s.cfg.Instruments == nil || !c.GetBool(ctxHookTarget) {
		return
	}
	if failed := c.GetInt(ctxTurnFailed); failed != 0 {
		status = failed
	}
	if status >= 400 {
		s.cfg.Instruments.WebhookRejected(c.Param("bot"), c.Param("channel"), status)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// stage reports the time since start as a stage of the turn.
func (s *Server) stage(name string, start time.Time) {
	if s.cfg.Instruments != nil {
		s.cfg.Instruments.ObserveStage(name, time.Since(start))
	}
}

// endAdapterSpan ends the span of a channel adapter's step (verifying and
// parsing the webhook, rendering the answer) with its bot and channel.
func endAdapterSpan(span trace.Span, bot, channel string, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String(tracing.AttrBot, bot), attribute.String(tracing.AttrChannel, channel))
	if err != nil {
		span.SetStatus(codes.Error, apierr.Classify(err).Code)
	}
	span.End()
}
