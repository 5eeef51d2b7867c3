package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/sandbox"
)

// loopback is a server on 127.0.0.1 that counts the requests and the
// connections it gets, and the connections it saw closed.
type loopback struct {
	*httptest.Server
	port string

	mu                      sync.Mutex
	requests, conns, closed int
}

func newLoopback(t *testing.T) *loopback {
	t.Helper()
	l := &loopback{}
	l.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.requests++
		l.mu.Unlock()
		_, _ = w.Write([]byte("secret"))
	}))
	l.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch s {
		case http.StateNew:
			l.conns++
		case http.StateClosed, http.StateHijacked:
			l.closed++
		}
	}
	l.Start()
	t.Cleanup(l.Close)
	_, l.port, _ = net.SplitHostPort(l.Listener.Addr().String())
	return l
}

func (l *loopback) counts() (requests, conns, closed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, l.conns, l.closed
}

// TestBotsDoNotShareConnections: bot A may reach a name that resolves to
// loopback because its allow-list names 127.0.0.1; bot B allow-lists the
// name only. After A's request has left a kept-alive connection, B's request
// to the same URL is refused, and A's still works on its connection.
func TestBotsDoNotShareConnections(t *testing.T) {
	l := newLoopback(t)
	c := New(Config{Resolver: resolver{"svc.example.com": {netip.MustParseAddr("127.0.0.1")}}})
	t.Cleanup(c.Close)
	ctx := context.Background()
	url := "http://svc.example.com:" + l.port + "/"
	a := &sandbox.HTTPRequest{Bot: "a", Allow: []string{"svc.example.com:" + l.port, "127.0.0.1"}, Method: "GET", URL: url}
	b := &sandbox.HTTPRequest{Bot: "b", Allow: []string{"svc.example.com:" + l.port}, Method: "GET", URL: url}

	if resp, err := c.Do(ctx, a); err != nil || string(resp.Body) != "secret" {
		t.Fatalf("bot a: %v", err)
	}
	_, err := c.Do(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "resolves to a non-public address (127.0.0.1)") {
		t.Errorf("bot b: got %v, want a refusal", err)
	}
	if resp, err := c.Do(ctx, a); err != nil || string(resp.Body) != "secret" {
		t.Errorf("bot a again: %v", err)
	}
	if requests, conns, _ := l.counts(); requests != 2 || conns != 1 {
		t.Errorf("server saw %d requests on %d connections, want bot a's 2 on 1", requests, conns)
	}

	// Two bots with the same allow-list, and one bot with two allow-lists,
	// get a pool each.
	c2 := New(Config{})
	t.Cleanup(c2.Close)
	for _, r := range []*sandbox.HTTPRequest{
		{Bot: "a", Allow: []string{"127.0.0.1:" + l.port}},
		{Bot: "b", Allow: []string{"127.0.0.1:" + l.port}},
		{Bot: "b", Allow: []string{"127.0.0.1:" + l.port, "api.example.com"}},
		{Bot: "b", Allow: []string{" API.example.com", "127.0.0.1:" + l.port}}, // the same list as the one before
	} {
		r.Method, r.URL = "GET", "http://127.0.0.1:"+l.port+"/"
		if _, err := c2.Do(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c2.pools); n != 3 {
		t.Errorf("%d pools, want 3", n)
	}
	if _, conns, _ := l.counts(); conns != 1+3 {
		t.Errorf("%d connections in all, want 4 (1 + one per pool)", conns)
	}
}

// TestReusedConnectionChecked: were a pool ever shared between two
// policies, a kept-alive connection whose remote address the request's
// policy does not admit is refused before the request is written to it.
func TestReusedConnectionChecked(t *testing.T) {
	l := newLoopback(t)
	c := New(Config{Resolver: resolver{"svc.example.com": {netip.MustParseAddr("127.0.0.1")}}})
	t.Cleanup(c.Close)
	ctx := context.Background()
	url := "http://svc.example.com:" + l.port + "/"
	a := &sandbox.HTTPRequest{Bot: "a", Allow: []string{"svc.example.com:" + l.port, "127.0.0.1"}, Method: "GET", URL: url}
	b := &sandbox.HTTPRequest{Bot: "b", Allow: []string{"svc.example.com:" + l.port}, Method: "GET", URL: url}
	if _, err := c.Do(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Hand bot b bot a's pool, with its idle connection to 127.0.0.1.
	keyA, _ := keyOf(a.Bot, a.Allow)
	keyB, _ := keyOf(b.Bot, b.Allow)
	c.mu.Lock()
	c.pools[keyB] = c.pools[keyA]
	c.mu.Unlock()

	_, err := c.Do(ctx, b)
	var refused *ConnRefusedError
	if !errors.As(err, &refused) || !refused.Reused || refused.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("bot b on bot a's connection: got %v, want a refused reused connection", err)
	}
	if !strings.Contains(err.Error(), "connection to 127.0.0.1 refused") {
		t.Errorf("message %q", err)
	}
	if requests, _, _ := l.counts(); requests != 1 {
		t.Errorf("server saw %d requests, want bot a's 1", requests)
	}
	// The refused connection was closed, not handed on.
	deadline := time.Now().Add(10 * time.Second)
	for _, _, closed := l.counts(); closed < 1; _, _, closed = l.counts() {
		if time.Now().After(deadline) {
			t.Fatal("the refused connection is still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPoolBounds: at most MaxPools pools are kept, one unused for
// IdleTimeout is dropped, and a dropped pool's connections are closed.
func TestPoolBounds(t *testing.T) {
	l := newLoopback(t)
	const idle = 200 * time.Millisecond
	c := New(Config{MaxPools: 4, IdleTimeout: idle})
	t.Cleanup(c.Close)
	ctx := context.Background()
	get := func(bot string) {
		t.Helper()
		_, err := c.Do(ctx, &sandbox.HTTPRequest{Bot: bot, Allow: []string{"127.0.0.1:" + l.port}, Method: "GET",
			URL: "http://127.0.0.1:" + l.port + "/"})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, bot := range []string{"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"} {
		get(bot)
		if n := c.lru.Len(); n > 4 || len(c.pools) != n {
			t.Fatalf("%d pools (%d in the map), want at most 4", n, len(c.pools))
		}
	}
	// Six pools were dropped: their connections close.
	waitClosed(t, l, 6)

	time.Sleep(2 * idle)
	get("fresh")
	if n := len(c.pools); n != 1 {
		t.Errorf("%d pools after the others were idle for %v, want 1", n, 2*idle)
	}
	waitClosed(t, l, 9)
}

func waitClosed(t *testing.T, l *loopback, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, conns, closed := l.counts()
		if closed >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections closed, want at least %d", closed, conns, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkPolicy is the work Do adds to a request to keep bots apart: the
// pool look-up (canonical allow-list, its hash), the request's policy, and
// the check of the connection it is given.
func BenchmarkPolicy(b *testing.B) {
	c := New(Config{})
	defer c.Close()
	allow := []string{"api.example.com", "*.example.org", "127.0.0.1:8080"}
	conn := &fakeConn{remote: &net.TCPAddr{IP: net.IPv4(203, 0, 114, 7), Port: 443}}
	b.ReportAllocs()
	for b.Loop() {
		_, pol := c.pool("bot", allow)
		if err := pol.admitConn(conn, true); err != nil {
			b.Fatal(err)
		}
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
