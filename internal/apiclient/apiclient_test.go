package apiclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func testHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing or wrong bearer token"}}`)
			return
		}
		switch r.URL.Path {
		case "/v1/echo":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"method":"`+r.Method+`","type":"`+r.Header.Get("Content-Type")+`","len":`+strconv.Itoa(len(body))+`}`)
		case "/v1/compile":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"code":"script_error","message":"syntax error","line":4}}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "upstream down")
		}
	})
}

// TestClient runs the same requests over HTTP and in process.
func TestClient(t *testing.T) {
	srv := httptest.NewServer(testHandler())
	defer srv.Close()
	for name, c := range map[string]*Client{"http": New(srv.URL+"/", "k"), "in-process": InProcess(testHandler(), "k")} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var out struct {
				Method, Type string
				Len          int
			}
			if err := c.Do(ctx, "PUT", "/v1/echo", "function handle() end", &out); err != nil || out.Method != "PUT" ||
				out.Type != "text/plain; charset=utf-8" || out.Len != 21 {
				t.Errorf("text body: %+v %v", out, err)
			}
			if err := c.Do(ctx, "POST", "/v1/echo", map[string]int{"a": 1}, &out); err != nil || out.Type != "application/json" || out.Len != 7 {
				t.Errorf("json body: %+v %v", out, err)
			}
			var ae *Error
			if err := c.Do(ctx, "PUT", "/v1/compile", "x", nil); !errors.As(err, &ae) || ae.Status != 400 || ae.Line != 4 ||
				ae.Error() != "syntax error (HTTP 400, script_error)" {
				t.Errorf("api error: %v", err)
			}
			if err := c.Do(ctx, "GET", "/other", nil, nil); err == nil || errors.As(err, &ae) || err.Error() != "GET /other: HTTP 502: upstream down" {
				t.Errorf("plain error: %v", err)
			}
			if err := New(c.Base(), "wrong").Do(ctx, "GET", "/v1/echo", nil, nil); name == "http" && (!errors.As(err, &ae) || ae.Status != 401) {
				t.Errorf("wrong key: %v", err)
			}
		})
	}
	if err := New("http://127.0.0.1:1", "k").Do(context.Background(), "GET", "/v1/bots", nil, nil); err == nil {
		t.Error("no server: no error")
	}
}
