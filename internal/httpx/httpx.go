// Package httpx holds the request helpers the webhook gateway and the
// management API share: reading a bounded body and checking the admin key.
// It imports only the standard library and internal/apierr.
//
// Concurrency: the functions are safe for concurrent use.
package httpx

import (
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/internal/apierr"
)

// ErrBodyTooLarge answers a request body over the limit.
var ErrBodyTooLarge error = apierr.New(http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")

// drainFactor bounds what is read and discarded of a body over the limit:
// drainFactor times the limit.
const drainFactor = 4

// ReadBody reads r's body within limit bytes. A body that stops coming (the
// server's read timeout, a dropped connection) is the client's failure, not
// the store's. Of a body over the limit it reads and discards up to
// drainFactor times the limit before returning [ErrBodyTooLarge]: a server
// that closes the connection while the client is still sending resets it,
// and most clients then report the reset instead of the answer.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		drain(r, limit)
		return nil, ErrBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case err == nil:
		return b, nil
	case errors.As(err, &mbe):
		drain(r, limit)
		return nil, ErrBodyTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return nil, apierr.New(http.StatusRequestTimeout, "body_timeout", "the request body was not received in time")
	default:
		return nil, apierr.New(http.StatusBadRequest, "bad_request", "the request body could not be read")
	}
}

func drain(r *http.Request, limit int64) {
	_, _ = io.CopyN(io.Discard, r.Body, drainFactor*limit)
}

// Authorized reports whether r carries key as its bearer token.
func Authorized(r *http.Request, key string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && key != "" && subtle.ConstantTimeCompare([]byte(got), []byte(key)) == 1
}
