package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/sandbox"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		entry, host, port string
		want              bool
	}{
		{"api.example.com", "api.example.com", "443", true},
		{"API.Example.com", "api.example.com", "80", true},
		{"api.example.com", "example.com", "443", false},
		{"api.example.com", "api.example.com.evil.com", "443", false},
		{"api.example.com:8443", "api.example.com", "8443", true},
		{"api.example.com:8443", "api.example.com", "443", false},
		{"*.example.com", "a.b.example.com", "443", true},
		{"*.example.com", "example.com", "443", false},
		{"*.example.com", "evilexample.com", "443", false},
		{"127.0.0.1", "127.0.0.1", "80", true},
		{"127.0.0.1", "localhost", "80", false},
		{"[::1]:80", "::1", "80", true},
		{"::ffff:127.0.0.1", "127.0.0.1", "443", true},
		// Without a port, an entry admits 80 and 443 only.
		{"api.example.com", "api.example.com", "8080", false},
		{"api.example.com", "api.example.com", "22", false},
		{"*.example.com", "a.example.com", "6379", false},
		{"127.0.0.1", "127.0.0.1", "1234", false},
		{"127.0.0.1:1234", "127.0.0.1", "1234", true},
		{"127.0.0.1:1234", "127.0.0.1", "80", false},
	}
	for _, tt := range tests {
		if got := Match(tt.entry, tt.host, tt.port); got != tt.want {
			t.Errorf("Match(%q, %q, %q) = %v", tt.entry, tt.host, tt.port, got)
		}
	}
}

func server(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-Token", r.Header.Get("X-Token"))
			w.Header().Set("X-Agent", r.Header.Get("User-Agent"))
			_, _ = w.Write(b)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 2000)))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/redirect-out":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/huge-headers":
			// Eight headers of 1 MiB each.
			for i := range 8 {
				w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("h", 1<<20))
			}
			_, _ = w.Write([]byte("ok"))
		case "/fat-header":
			w.Header().Set("X-Fat", strings.Repeat("f", 900))
			_, _ = w.Write([]byte(strings.Repeat("b", 200)))
		case "/many-headers":
			for i := range 200 {
				w.Header().Set(fmt.Sprintf("X-H-%03d", i), "v")
			}
		case "/redirect-in":
			http.Redirect(w, r, "/echo", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().String()
}

func TestDo(t *testing.T) {
	srv, entry := server(t)
	host, port, _ := net.SplitHostPort(entry)
	c := New(Config{})
	t.Cleanup(c.Close)
	ctx := context.Background()
	allow := []string{entry}

	resp, err := c.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "POST", URL: srv.URL + "/echo",
		Body: []byte("hello"), Header: map[string]string{"x-token": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || string(resp.Body) != "hello" || resp.Header["x-method"] != "POST" ||
		resp.Header["x-token"] != "t" || resp.Header["x-agent"] != "Parley" {
		t.Errorf("response %+v", resp)
	}
	resp, err = c.Do(ctx, &sandbox.HTTPRequest{Allow: allow, Method: "GET", URL: srv.URL + "/redirect-in"})
	if err != nil || resp.Status != 200 || resp.Header["x-method"] != "GET" {
		t.Errorf("redirect inside the allow-list: %+v, %v", resp, err)
	}

	for _, tt := range []struct {
		name string
		req  sandbox.HTTPRequest
		want string
	}{
		{"no allow-list", sandbox.HTTPRequest{Method: "GET", URL: srv.URL + "/echo"}, "no hosts are allow-listed"},
		{"not listed", sandbox.HTTPRequest{Allow: []string{"api.example.com"}, Method: "GET", URL: srv.URL + "/echo"}, "is not allow-listed"},
		{"other port", sandbox.HTTPRequest{Allow: []string{host}, Method: "GET", URL: srv.URL + "/echo"},
			"port " + port + " is not allow-listed (an entry without a port allows 80 and 443 only)"},
		{"localhost by name", sandbox.HTTPRequest{Allow: []string{"localhost:" + port}, Method: "GET",
			URL: "http://localhost:" + port + "/echo"}, "resolves to a non-public address"},
		{"scheme", sandbox.HTTPRequest{Allow: allow, Method: "GET", URL: "file:///etc/passwd"}, "only http and https"},
		{"credentials", sandbox.HTTPRequest{Allow: allow, Method: "GET", URL: "http://u:p@" + host + "/"}, "credentials"},
		{"redirect out", sandbox.HTTPRequest{Allow: allow, Method: "GET", URL: srv.URL + "/redirect-out"}, "redirect refused"},
		{"too large", sandbox.HTTPRequest{Allow: allow, Method: "GET", URL: srv.URL + "/big", MaxResponseBytes: 1000}, "larger than 1000 bytes"},
		{"host header", sandbox.HTTPRequest{Allow: allow, Method: "GET", URL: srv.URL + "/echo", Header: map[string]string{"host": "x"}}, "cannot be set"},
		{"method", sandbox.HTTPRequest{Allow: allow, Method: "DELETE", URL: srv.URL + "/echo"}, "not supported"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(ctx, &tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPrivateResolution: a public-looking allow-listed name that resolves to
// a private address is refused at connect time; one that does not resolve
// fails cleanly.
func TestPrivateResolution(t *testing.T) {
	_, entry := server(t)
	_, port, _ := net.SplitHostPort(entry)
	c := New(Config{Resolver: resolver{
		"api.example.com":    {netip.MustParseAddr("127.0.0.1")},
		"mapped.example.com": {netip.MustParseAddr("::ffff:127.0.0.1")},
		"nat64.example.com":  {netip.MustParseAddr("64:ff9b::7f00:1")},
		"6to4.example.com":   {netip.MustParseAddr("2002:7f00:1::1")},
		"site.example.com":   {netip.MustParseAddr("fec0::1")},
	}})
	t.Cleanup(c.Close)
	for name, want := range map[string]string{
		"api.example.com":    "resolves to a non-public address (127.0.0.1)",
		"mapped.example.com": "resolves to a non-public address (127.0.0.1)",
		"nat64.example.com":  "resolves to a non-public address (64:ff9b::7f00:1)",
		"6to4.example.com":   "resolves to a non-public address (2002:7f00:1::1)",
		"site.example.com":   "resolves to a non-public address (fec0::1)",
		"gone.example.com":   "cannot resolve",
	} {
		_, err := c.Do(context.Background(), &sandbox.HTTPRequest{Allow: []string{name + ":" + port}, Method: "GET",
			URL: "http://" + name + ":" + port + "/echo"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}

// resolver resolves the names it holds and no other.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ips, ok := r[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestDeadline(t *testing.T) {
	srv, host := server(t)
	c := New(Config{})
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, &sandbox.HTTPRequest{Allow: []string{host}, Method: "GET", URL: srv.URL + "/slow"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestResponseHeaderCaps: a response whose header block is larger than
// Config.MaxResponseHeaderBytes fails quickly with a clear error; the
// headers a script is given count towards MaxResponseBytes; at most
// maxResponseHeaders of them are passed back, the same ones every time.
func TestResponseHeaderCaps(t *testing.T) {
	srv, entry := server(t)
	allow := []string{entry}
	c := New(Config{})
	t.Cleanup(c.Close)
	ctx := context.Background()

	start := time.Now()
	_, err := c.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "GET", URL: srv.URL + "/huge-headers"})
	if err == nil || err.Error() != "response headers are larger than 65536 bytes" {
		t.Errorf("huge headers: got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("huge headers took %v", d)
	}
	small := New(Config{MaxResponseHeaderBytes: 512})
	if _, err := small.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "GET", URL: srv.URL + "/fat-header"}); err == nil ||
		!strings.Contains(err.Error(), "response headers are larger than 512 bytes") {
		t.Errorf("configured cap: got %v", err)
	}

	// 900 bytes of header and 200 of body: over 1000, under 1300.
	_, err = c.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "GET", URL: srv.URL + "/fat-header", MaxResponseBytes: 1000})
	if err == nil || !strings.Contains(err.Error(), "response is larger than 1000 bytes") {
		t.Errorf("headers and body over MaxResponseBytes: got %v", err)
	}
	_, err = c.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "GET", URL: srv.URL + "/fat-header", MaxResponseBytes: 800})
	if err == nil || !strings.Contains(err.Error(), "headers alone are") {
		t.Errorf("headers alone over MaxResponseBytes: got %v", err)
	}
	resp, err := c.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "GET", URL: srv.URL + "/fat-header", MaxResponseBytes: 1300})
	if err != nil || len(resp.Body) != 200 || len(resp.Header["x-fat"]) != 900 {
		t.Errorf("within MaxResponseBytes: %v", err)
	}

	// Which headers are kept must not depend on map order; their values
	// may (Date changes between two requests).
	var first []string
	for range 3 {
		resp, err := c.Do(ctx, &sandbox.HTTPRequest{Bot: "b", Allow: allow, Method: "GET", URL: srv.URL + "/many-headers"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Header) != maxResponseHeaders {
			t.Fatalf("%d headers passed back, want %d", len(resp.Header), maxResponseHeaders)
		}
		names := slices.Sorted(maps.Keys(resp.Header))
		if first == nil {
			first = names
		} else if !slices.Equal(first, names) {
			t.Errorf("different headers passed back: %v, then %v", first, names)
		}
	}
}

// BenchmarkDo is one small GET to a loopback server over a kept-alive
// connection: the per-request cost of the policy (pool look-up, the check of
// the connection) on top of net/http's.
func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	c := New(Config{})
	req := &sandbox.HTTPRequest{Bot: "b", Allow: []string{"api.example.com", "*.example.org", srv.Listener.Addr().String()},
		Method: "GET", URL: srv.URL + "/"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	allow := []string{"api.example.com", "*.example.org", "svc.example.net:8443"}
	for _, tc := range []struct {
		url, err string
	}{
		{"https://api.example.com/menu", ""},
		{"http://a.example.org/x", ""},
		{"https://svc.example.net:8443/", ""},
		{"https://svc.example.net/", "host svc.example.net is not allow-listed"},
		{"https://api.example.com:8080/", "host api.example.com port 8080 is not allow-listed (an entry without a port allows 80 and 443 only)"},
		{"ftp://api.example.com/", "only http and https URLs are allowed"},
		{"https://user:pw@api.example.com/", "credentials in URLs are not allowed"},
		{"https://other.example.com/", "host other.example.com is not allow-listed"},
		{"%zz", "invalid url"},
	} {
		err := CheckURL(allow, tc.url)
		if got := fmt.Sprint(err); tc.err == "" && err != nil || tc.err != "" && got != tc.err {
			t.Errorf("CheckURL(%q) = %v, want %q", tc.url, err, tc.err)
		}
	}
	if err := CheckURL(nil, "https://api.example.com/"); err == nil || !strings.Contains(err.Error(), "no hosts are allow-listed") {
		t.Errorf("empty allow-list: %v", err)
	}
}
