// Package metatest is a fake platform send API for the tests of the
// channels that answer through one (Messenger, WhatsApp, LINE): it records
// every call and answers with a chosen status.
package metatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/msg"
)

// API is a fake send API. Set Status (default 200) and Header before the
// calls that should see them.
type API struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []Call
	Status int
	Header http.Header
	// Reply is the body of a 2xx answer (default "{}").
	Reply string
}

// Call is one recorded request.
type Call struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// New starts a fake API, closed when the test ends.
func New(t testing.TB) *API {
	a := &API{Status: http.StatusOK, Header: http.Header{}, Reply: "{}"}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.calls = append(a.calls, Call{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
		status, reply := a.Status, a.Reply
		for k, v := range a.Header {
			w.Header()[k] = v
		}
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status/100 == 2 {
			_, _ = io.WriteString(w, reply)
		} else {
			_, _ = io.WriteString(w, `{"error":{"message":"refused by the fake API"}}`)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// Calls returns the calls so far.
func (a *API) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Call(nil), a.calls...)
}

// SetStatus changes the status of the next answers.
func (a *API) SetStatus(status int) {
	a.mu.Lock()
	a.Status = status
	a.mu.Unlock()
}

// SetHeader sets a header of the next answers.
func (a *API) SetHeader(key, value string) {
	a.mu.Lock()
	a.Header.Set(key, value)
	a.mu.Unlock()
}

// Transcript formats events and the calls they caused as a golden file:
// each event as indented JSON without its raw payload, then each call with
// its method, path, the named headers and the body as indented JSON.
func Transcript(events []*msg.Event, calls []Call, headers ...string) []byte {
	var b bytes.Buffer
	if len(events) == 0 {
		b.WriteString("-- no events --\n")
	}
	for _, ev := range events {
		e := *ev
		e.Raw = nil
		out, _ := json.MarshalIndent(e, "", "  ")
		fmt.Fprintf(&b, "-- event --\n%s\n", out)
	}
	for _, c := range calls {
		fmt.Fprintf(&b, "-- send --\n%s %s\n", c.Method, c.Path)
		for _, h := range headers {
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(h), c.Header.Get(h))
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, c.Body, "", "  ") != nil {
			pretty.Write(c.Body)
		}
		b.Write(pretty.Bytes())
		b.WriteByte('\n')
	}
	return b.Bytes()
}
