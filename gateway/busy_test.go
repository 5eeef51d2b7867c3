package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/engine"
)

// TestBusyAnswer: a turn rejected for its bot's concurrency limit is a 429
// with Retry-After and the bot's busy reply.
func TestBusyAnswer(t *testing.T) {
	err := fmt.Errorf("run turn: %w", &engine.BusyError{Bot: "b", Reply: "Busy!", RetryAfter: 1500 * time.Millisecond})
	s := &Server{log: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest("POST", "/hooks/b/web", nil)
	s.fail(c, err)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Errorf("got %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if body := w.Body.String(); body != `{"error":{"code":"busy","message":"Busy!"}}` {
		t.Errorf("body %s", body)
	}
}
