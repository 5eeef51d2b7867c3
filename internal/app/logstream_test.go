package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testredis"
)

// sseEvent is one server-sent event, or a comment when Comment is set.
type sseEvent struct {
	ID, Event, Data, Comment string
}

// logStream is an open GET /v1/bots/{bot}/logs stream.
type logStream struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
}

// openLogStream opens a bot's log stream with the query and headers; on
// an answer other than 200 it returns a nil stream and the answer's status
// and headers.
func openLogStream(t *testing.T, baseURL, bot, query string, header map[string]string) (*logStream, int, http.Header) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", baseURL+"/v1/bots/"+bot+"/logs?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // logStream.Close closes it, at cleanup at the latest
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		return nil, resp.StatusCode, resp.Header
	}
	s := &logStream{resp: resp, cancel: cancel, events: make(chan sseEvent, 100)}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.Comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	t.Cleanup(s.Close)
	return s, resp.StatusCode, resp.Header
}

func (s *logStream) Close() {
	s.cancel()
	s.resp.Body.Close()
}

// nextInvocation waits for the next invocation event and decodes it.
func (s *logStream) nextInvocation(t *testing.T) (id string, entry map[string]any) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if ev.Event != "invocation" {
				continue
			}
			if err := json.Unmarshal([]byte(ev.Data), &entry); err != nil {
				t.Fatalf("event data %q: %v", ev.Data, err)
			}
			if entry["id"] != ev.ID || ev.ID == "" {
				t.Fatalf("event id %q, entry id %v", ev.ID, entry["id"])
			}
			return ev.ID, entry
		case <-deadline:
			t.Fatal("no invocation event within 20s")
		}
	}
}

const logHandlers = `function handle(e) if e.text == "boom" then error("kaboom") end return "ok " .. e.text end`

// TestLogStreamAcrossReplicas: an invocation on one replica reaches a
// follower on another, filtered by intent and outcome; a follower that
// reconnects with Last-Event-ID to the first replica gets what it missed.
func TestLogStreamAcrossReplicas(t *testing.T) {
	url, prefix := testredis.URL(t), testredis.Prefix(t)
	a := startApp(t, appOptions{redisURL: url, prefix: prefix})
	b := startApp(t, appOptions{redisURL: url, prefix: prefix})
	a.setupBot(t, "logbot", nil, map[string]string{"fallback": logHandlers})

	all, _, _ := openLogStream(t, b.URL, "logbot", "", nil)
	errorsOnly, _, _ := openLogStream(t, b.URL, "logbot", "outcome=error&intent=fallback", nil)
	a.say(t, "logbot", map[string]any{"user": "u1", "text": "first"}).must(t, http.StatusOK)
	id1, e1 := all.nextInvocation(t)
	if e1["intent"] != "fallback" || e1["outcome"] != "ok" || e1["bot"] != "logbot" {
		t.Fatalf("first entry %v", e1)
	}
	a.say(t, "logbot", map[string]any{"user": "u1", "text": "boom"})
	if _, e := errorsOnly.nextInvocation(t); e["outcome"] != "error" || !strings.Contains(e["error"].(string), "kaboom") {
		t.Fatalf("error entry %v", e)
	}
	if _, e := all.nextInvocation(t); e["outcome"] != "error" {
		t.Fatalf("second entry %v", e)
	}
	all.Close()

	// Missed while disconnected: a third turn, then a reconnect elsewhere.
	b.say(t, "logbot", map[string]any{"user": "u2", "text": "third"}).must(t, http.StatusOK)
	again, _, _ := openLogStream(t, a.URL, "logbot", "", map[string]string{"Last-Event-ID": id1})
	if _, e := again.nextInvocation(t); e["outcome"] != "error" {
		t.Fatalf("first after reconnect %v", e)
	}
	if _, e := again.nextInvocation(t); e["conversation"] != "u2" {
		t.Fatalf("second after reconnect %v", e)
	}
	// since backfills from the kept entries.
	since, _, _ := openLogStream(t, b.URL, "logbot", "since=10m&outcome=ok", nil)
	if _, e := since.nextInvocation(t); e["conversation"] != "u1" || e["outcome"] != "ok" {
		t.Fatalf("since backfill %v", e)
	}
}

// TestLogStreamBoundsAndCleanup: a bot has at most PARLEY_LOG_FOLLOWERS
// streams on a server; a closed stream frees its place; a silent stream
// gets heartbeats; bad parameters are 400s.
func TestLogStreamBoundsAndCleanup(t *testing.T) {
	cfg := testConfig(t, appOptions{})
	cfg.LogFollowers, cfg.LogHeartbeat = 2, 200*time.Millisecond
	ta := serveApp(t, cfg, testLogger(t))
	ta.setupBot(t, "few", nil, map[string]string{"fallback": logHandlers})

	first, _, _ := openLogStream(t, ta.URL, "few", "", nil)
	second, _, _ := openLogStream(t, ta.URL, "few", "", nil)
	if s, status, header := openLogStream(t, ta.URL, "few", "", nil); s != nil || status != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %v, %d %v; want 429 with Retry-After", s, status, header)
	}
	// Heartbeats keep a silent stream alive.
	for deadline := time.After(20 * time.Second); ; {
		select {
		case ev := <-second.events:
			if ev.Comment == "keepalive" {
				goto heartbeat
			}
		case <-deadline:
			t.Fatal("no heartbeat within 20s")
		}
	}
heartbeat:
	first.Close()
	// The server notices the disconnect (at the next heartbeat at the latest).
	var third *logStream
	for deadline := time.Now().Add(20 * time.Second); third == nil; time.Sleep(100 * time.Millisecond) {
		var status int
		if third, status, _ = openLogStream(t, ta.URL, "few", "", nil); third == nil && status != http.StatusTooManyRequests {
			t.Fatalf("status %d", status)
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed stream's place was not freed within 20s")
		}
	}
	for _, q := range []string{"follow=true&outcome=bad", "follow=true&since=yesterday", "follow=true&after=nope"} {
		if r := do(t, "GET", ta.URL+"/v1/bots/few/logs?"+q, adminKey, nil); r.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", q, r.Status)
		}
	}
	if r := do(t, "GET", ta.URL+"/v1/bots/nobot/logs?follow=true", adminKey, nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown bot: status %d", r.Status)
	}
}

// TestShutdownEndsLogStreams: a server with open log streams drains and
// stops without waiting for them.
func TestShutdownEndsLogStreams(t *testing.T) {
	cfg := testConfig(t, appOptions{})
	cfg.ShutdownTimeout = 10 * time.Second
	a, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.ServeListener(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	do(t, "PUT", base+"/v1/bots/stay", adminKey, map[string]any{}).must(t, http.StatusCreated)
	s, _, _ := openLogStream(t, base, "stay", "", nil)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v (the drain waited for the log stream)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop within 30s")
	}
	for range s.events { // the stream ended
	}
}
