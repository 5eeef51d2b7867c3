package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/web"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/queue"
	"github.com/parleyhq/parley/msg"
)

// TestRateLimitedAnswer: a turn over a rate limit is a 429 "rate_limited"
// with Retry-After rounded up to whole seconds.
func TestRateLimitedAnswer(t *testing.T) {
	err := fmt.Errorf("run turn: %w", &engine.BusyError{Bot: "b", Reply: "Slow down", RetryAfter: 2100 * time.Millisecond,
		Limit: engine.LimitPerUser})
	s := &Server{log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest("POST", "/hooks/b/web", nil)
	s.fail(c, err)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" {
		t.Errorf("got %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if body := w.Body.String(); body != `{"error":{"code":"rate_limited","message":"Slow down"}}` {
		t.Errorf("body %s", body)
	}
}

// TestQueueFullAnswer: a full queue asks the platform to deliver again later.
func TestQueueFullAnswer(t *testing.T) {
	ae := apierr.Classify(fmt.Errorf("enqueue: %w", queue.ErrFull))
	if ae.Status != http.StatusServiceUnavailable || ae.Code != "queue_full" || ae.RetryAfter <= 0 {
		t.Errorf("classify(ErrFull) = %+v", ae)
	}
}

// TestBusyAnswerInChannel: channels that render their own errors get the
// busy reply as an answer; the web channel gets none (it answers 429).
func TestBusyAnswerInChannel(t *testing.T) {
	ev := &msg.Event{Bot: "b", Conversation: "c1"}
	busy := &engine.BusyError{Bot: "b", Reply: "Slow down", Limit: engine.LimitPerBot}
	r := busyAnswer(twilio.New(twilio.Config{}), ev, fmt.Errorf("x: %w", busy))
	if r == nil || len(r.Replies) != 1 || r.Replies[0].Text != "Slow down" || r.Event != ev {
		t.Fatalf("twilio: %+v", r)
	}
	var _ channels.ErrorRenderer = twilio.New(twilio.Config{})
	if r := busyAnswer(web.New(web.Config{}), ev, busy); r != nil {
		t.Errorf("web channel got an in-channel answer: %+v", r)
	}
	if r := busyAnswer(twilio.New(twilio.Config{}), ev, engine.ErrUnavailable); r != nil {
		t.Errorf("a store failure got the busy reply: %+v", r)
	}
}
