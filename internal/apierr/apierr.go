// Package apierr gives errors their HTTP meaning. An error that knows how
// the API answers it implements small interfaces ([HasStatus], [HasCode],
// [HasPublic], [HasDetails], [HasRetry]), asked with errors.As; [Classify]
// reads them and [Write] sends the answer, so the HTTP packages need no list
// of other packages' errors. It imports only the standard library.
//
// Concurrency: everything here is safe for concurrent use.
package apierr

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// HasStatus is an error with the HTTP status the API answers it with. The
// first error of a chain that has one decides the answer; the other
// interfaces are asked of it (and of what it wraps).
type HasStatus interface {
	error
	HTTPStatus() int
}

// HasCode is an error with the machine-readable code of the answer
// ("bot_not_found"). Without one the code is "error".
type HasCode interface {
	error
	ErrorCode() string
}

// HasPublic is an error with the message outsiders may read. Without one
// the message is the Error text of the error that has the status.
type HasPublic interface {
	error
	PublicMessage() string
}

// HasDetails is an error with more fields for the answer's error object
// (a script error's line).
type HasDetails interface {
	error
	ErrorDetails() map[string]any
}

// HasRetry is an error that suggests when to retry; it becomes the
// Retry-After header of a 429 or 503 answer.
type HasRetry interface {
	error
	RetryDelay() time.Duration
}

// Error is an error with its whole answer. Packages use it for their own
// refusals ([New]) and for sentinels that keep their Error text but answer
// with another message (Err set).
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the error code of the answer.
	Code string
	// Message is the answer's message; empty means the Error text.
	Message string
	// Details are extra fields of the answer's error object.
	Details map[string]any
	// Retry is the suggested delay before a retry (429 and 503).
	Retry time.Duration
	// Err is the cause; when set, Error returns its text and errors.Is and
	// errors.As see it.
	Err error
}

// New returns an error answered with status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Wrap returns err answered with status and code, and err's text as the
// message.
func Wrap(status int, code string, err error) *Error {
	return &Error{Status: status, Code: code, Err: err}
}

// Error returns the cause's text, or the message.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus implements [HasStatus].
func (e *Error) HTTPStatus() int { return e.Status }

// ErrorCode implements [HasCode].
func (e *Error) ErrorCode() string { return e.Code }

// PublicMessage implements [HasPublic].
func (e *Error) PublicMessage() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Error()
}

// ErrorDetails implements [HasDetails].
func (e *Error) ErrorDetails() map[string]any { return e.Details }

// RetryDelay implements [HasRetry].
func (e *Error) RetryDelay() time.Duration { return e.Retry }

// Answer is the HTTP answer to an error.
type Answer struct {
	Status     int
	Code       string
	Message    string
	Details    map[string]any
	RetryAfter time.Duration
}

// Classify decides the answer to err: what the first error of the chain
// with a status says of itself; else 503 for a deadline, a cancellation or
// a store that cannot be reached; else 500, with nothing of err shown.
func Classify(err error) Answer {
	var hs HasStatus
	if !errors.As(err, &hs) {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return Answer{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "request timed out"}
		case isNetworkError(err):
			return Answer{Status: http.StatusServiceUnavailable, Code: "unavailable",
				Message: "the store is unreachable; retry shortly"}
		}
		return Answer{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	a := Answer{Status: hs.HTTPStatus(), Code: "error", Message: hs.Error()}
	var hc HasCode
	if errors.As(hs, &hc) {
		a.Code = hc.ErrorCode()
	}
	var hp HasPublic
	if errors.As(hs, &hp) {
		a.Message = hp.PublicMessage()
	}
	var hd HasDetails
	if errors.As(hs, &hd) {
		a.Details = hd.ErrorDetails()
	}
	var hr HasRetry
	if errors.As(hs, &hr) {
		a.RetryAfter = hr.RetryDelay()
	}
	return a
}

// isNetworkError reports a failure to reach the store (Redis down or the
// connection dropped), as opposed to a bug.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Body is the JSON error object of an answer: {"code", "message"} and the
// details.
func (a Answer) Body() map[string]any {
	body := map[string]any{"code": a.Code, "message": a.Message}
	for k, v := range a.Details {
		body[k] = v
	}
	return body
}

// Write answers err: its status, a Retry-After header on 429 and 503 (at
// least one second), and {"error": {"code": ..., "message": ...}}. It is the
// one place where the API writes an error; it returns the answer, for logs.
func Write(w http.ResponseWriter, err error) Answer {
	a := Classify(err)
	if a.Status == http.StatusServiceUnavailable || a.Status == http.StatusTooManyRequests {
		secs := int((a.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	b, merr := json.Marshal(map[string]any{"error": a.Body()})
	if merr != nil { // details that do not encode: the answer without them
		b, _ = json.Marshal(map[string]any{"error": map[string]any{"code": a.Code, "message": a.Message}})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(a.Status)
	_, _ = w.Write(b)
	return a
}
