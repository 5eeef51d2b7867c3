package apierr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apierr"
)

// TestClassify: the first error of the chain with a status decides the
// answer; a sentinel keeps its own text while answering with its message;
// errors without a status are 503 for deadlines and 500 otherwise.
func TestClassify(t *testing.T) {
	sentinel := &apierr.Error{Status: http.StatusNotFound, Code: "thing_not_found", Message: "unknown thing",
		Err: errors.New("no such thing")}
	for _, tc := range []struct {
		err     error
		status  int
		code    string
		message string
	}{
		{fmt.Errorf("get: %w", sentinel), 404, "thing_not_found", "unknown thing"},
		{apierr.Wrap(400, "invalid", fmt.Errorf("range: %w", sentinel)), 400, "invalid", "range: no such thing"},
		{fmt.Errorf("run: %w", context.DeadlineExceeded), 503, "unavailable", "request timed out"},
		{errors.New("secret detail"), 500, "internal", "internal error"},
	} {
		a := apierr.Classify(tc.err)
		if a.Status != tc.status || a.Code != tc.code || a.Message != tc.message {
			t.Errorf("Classify(%v) = %+v", tc.err, a)
		}
	}
	if sentinel.Error() != "no such thing" || !errors.Is(fmt.Errorf("x: %w", sentinel), sentinel) {
		t.Errorf("the sentinel lost its text or identity")
	}
}

// TestWrite: the body has the details beside code and message, and a 503
// carries Retry-After rounded up to whole seconds.
func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	apierr.Write(w, &apierr.Error{Status: 503, Code: "full", Message: "later", Retry: 1500 * time.Millisecond,
		Details: map[string]any{"line": 3}})
	if w.Code != 503 || w.Header().Get("Retry-After") != "2" || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("got %d %v", w.Code, w.Header())
	}
	if got := w.Body.String(); got != `{"error":{"code":"full","line":3,"message":"later"}}` {
		t.Errorf("body %s", got)
	}
}
