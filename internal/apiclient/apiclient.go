// Package apiclient calls Parley's management API (/v1), over HTTP or, for
// a Parley running in the same process, straight through its handler.
//
//	c := apiclient.New("http://localhost:8080", key)
//	var bot map[string]any
//	err := c.Do(ctx, "GET", "/v1/bots/pizzabot", nil, &bot)
//
// An answer with an error status is an [*Error] carrying the API's error
// body. A Client is safe for concurrent use.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

// Client calls the management API.
type Client struct {
	base string
	key  string
	http *http.Client
}

// DefaultTimeout bounds one request of a Client made by New.
const DefaultTimeout = 60 * time.Second

// New returns a client of the Parley at base (such as
// "http://localhost:8080") with the admin key.
func New(base, key string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), key: key, http: &http.Client{Timeout: DefaultTimeout}}
}

// InProcess returns a client that serves its requests with h, a Parley's
// HTTP handler in this process, without a network.
func InProcess(h http.Handler, key string) *Client {
	return &Client{base: "http://parley.in-process", key: key, http: &http.Client{Transport: handlerTransport{h}}}
}

// Base is the URL the client talks to.
func (c *Client) Base() string { return c.base }

// handlerTransport answers requests with a handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// Error is the management API's answer to a request it refused.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code and Message are the error body's.
	Code    string `json:"code"`
	Message string `json:"message"`
	// Line is the script line of a handler that does not compile, when known.
	Line int `json:"line"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// maxAnswerBytes bounds an answer read.
const maxAnswerBytes = 16 << 20

// Do sends body (JSON-encoded, unless it is a string, sent as text, or nil)
// and decodes the JSON answer into out, when out is not nil.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd, contentType = strings.NewReader(b), "text/plain; charset=utf-8"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach parley at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return errorFrom(method, path, resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// errorFrom is the error of an answer with status and body raw: an *Error
// when the body is the API's error.
func errorFrom(method, path string, status int, raw []byte) error {
	var wrapped struct {
		Error Error `json:"error"`
	}
	if json.Unmarshal(raw, &wrapped) != nil || wrapped.Error.Code == "" {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, strings.TrimSpace(string(raw)))
	}
	wrapped.Error.Status = status
	return &wrapped.Error
}

// NewRequest builds an authenticated request to path, for callers that
// read the answer themselves (a stream).
func (c *Client) NewRequest(ctx context.Context, method, path string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	return req, nil
}

// AnswerError reads the error answer resp of method on path: an *Error
// when it has the API's error body.
func AnswerError(method, path string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return errorFrom(method, path, resp.StatusCode, raw)
}
