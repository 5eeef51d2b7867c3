package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/config"
)

// listen serves an app with cfg on a real listener, with the server's own
// timeouts, and returns its address; everything stops at cleanup.
func listen(t *testing.T, cfg config.Config) (*testApp, string) {
	t.Helper()
	a, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
	return &testApp{App: a, URL: "http://" + ln.Addr().String()}, ln.Addr().String()
}

// TestSlowBodyIsCutOff: a client that trickles its body, one byte at a
// time, loses its connection once the read timeout has passed, instead of
// holding it for as long as it likes.
func TestSlowBodyIsCutOff(t *testing.T) {
	cfg := testConfig(t, appOptions{})
	cfg.ReadTimeout = time.Second
	ta, addr := listen(t, cfg)
	ta.setupBot(t, "b", nil, map[string]string{"Hi": `function handle() return "hi" end`})

	const (
		bodyLen = 100
		gap     = 250 * time.Millisecond // the whole body would take 25 s
		bound   = 12 * time.Second       // far beyond the 1 s timeout, well before the body ends
	)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /hooks/b/web HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, webToken, bodyLen)
	start := time.Now()
	go func() {
		for i := 0; i < bodyLen; i++ {
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(gap)
		}
	}()
	conn.SetReadDeadline(start.Add(bound))
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err == nil {
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("a trickled body got %d, want 408", resp.StatusCode)
		}
		// The server closes the connection after the answer: reading the
		// rest ends with EOF, not with the client's deadline.
		_, err = io.Copy(io.Discard, rd)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection was still open %v after the body began, with a %v read timeout", bound, cfg.ReadTimeout)
	}
	t.Logf("connection closed after %v (%v)", time.Since(start).Round(time.Millisecond), err)
}
