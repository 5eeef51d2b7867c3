package app

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
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
	if err := conn.SetReadDeadline(start.Add(bound)); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err == nil {
		defer resp.Body.Close()
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

// TestOversizedBodyGets413: a client that sends a body two to four times
// over the limit, at the pace of a real network, and reads the answer once
// it has sent it all, reads the 413 every time, whether it declared the
// length or sent the body in chunks, instead of a reset connection.
func TestOversizedBodyGets413(t *testing.T) {
	cfg := testConfig(t, appOptions{})
	ta, addr := listen(t, cfg)
	ta.setupBot(t, "b", nil, map[string]string{"Hi": `function handle() return "hi" end`})
	limit := int(cfg.MaxBodyBytes)
	const rounds, parallel = 32, 4
	var wg sync.WaitGroup
	errs := make(chan error, rounds)
	sem := make(chan struct{}, parallel)
	for i := 0; i < rounds; i++ {
		size, chunked := limit*(2+i%3), i%2 == 1
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// Each body takes about a second to send.
			status, err := sendBody(addr, size, chunked, time.Second)
			if err != nil {
				errs <- fmt.Errorf("request %d (%d bytes, chunked %v): %w", i, size, chunked, err)
			} else if status != http.StatusRequestEntityTooLarge {
				errs <- fmt.Errorf("request %d (%d bytes, chunked %v): status %d; want 413", i, size, chunked, status)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A body under the limit is served.
	if status, err := sendBody(addr, limit/2, false, 0); err != nil || status == http.StatusRequestEntityTooLarge {
		t.Fatalf("a body under the limit: %d, %v", status, err)
	}
}

// sendBody posts size bytes to the web hook over a raw connection, spread
// over about the given time, and then reads the answer's status. A failed
// write is an error: the client had not finished sending when the server
// dropped the connection.
func sendBody(addr string, size int, chunked bool, over time.Duration) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	head := fmt.Sprintf("POST /hooks/b/web HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n", addr, webToken)
	if chunked {
		head += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
	}
	if _, err := io.WriteString(conn, head); err != nil {
		return 0, err
	}
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	pace := over / time.Duration(size/len(chunk)+1)
	for left := size; left > 0; left -= len(chunk) {
		part := chunk[:min(len(chunk), left)]
		if chunked {
			part = append(fmt.Appendf(nil, "%x\r\n", len(part)), append(part, "\r\n"...)...)
		}
		if _, err := conn.Write(part); err != nil {
			return 0, fmt.Errorf("%d of %d bytes sent: %w", size-left, size, err)
		}
		time.Sleep(pace)
	}
	if chunked {
		if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
			return 0, fmt.Errorf("end of the chunks: %w", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, fmt.Errorf("read the answer: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
