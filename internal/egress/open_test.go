package egress

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestOpenScope: a host of Scope.Hosts may be requested without being in
// the allow-list, but a non-public address is reached only when the
// allow-list names it; other hosts are refused.
func TestOpenScope(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: one\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := New(Config{})
	defer c.Close()
	open := func(scope Scope, path string) (*http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		return c.Open(ctx, scope, req)
	}

	refused := func(scope Scope, want string) {
		t.Helper()
		resp, err := open(scope, "/")
		if err == nil {
			resp.Body.Close()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%+v: %v, want an error with %q", scope, err, want)
		}
	}
	// The host is named by Hosts only: its address is loopback, which only
	// the allow-list can admit.
	refused(Scope{Bot: "b", Hosts: []string{host}}, "non-public")
	refused(Scope{Bot: "b", Hosts: []string{"api.example.com"}}, "not allow-listed")
	resp, err := open(Scope{Bot: "b", Allow: []string{host}, Hosts: []string{host}}, "/")
	if err != nil {
		t.Fatalf("allow-listed address: %v", err)
	}
	// The body streams: the first event arrives while the server holds the
	// response open, and Close ends the request.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	// Redirects are not followed.
	resp, err = open(Scope{Bot: "b", Allow: []string{host}}, "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: status %d", resp.StatusCode)
	}
	// A scheme other than http(s) is refused before anything is sent.
	req, _ := http.NewRequest(http.MethodPost, "ftp://"+host+"/", nil)
	if resp, err := c.Open(context.Background(), Scope{Bot: "b", Allow: []string{host}}, req); err == nil {
		resp.Body.Close()
		t.Fatal("ftp URL opened")
	}
}
