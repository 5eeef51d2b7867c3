package slack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// streamFake is Slack's Web API for streamed replies: it records each call
// and answers ok with a ts, or with refuse's error for a method.
type streamFake struct {
	mu     sync.Mutex
	calls  []string         // method names
	bodies []map[string]any // their bodies
	refuse map[string]string
}

func newStreamFake(t *testing.T, refuse map[string]string) (*streamFake, channels.Settings) {
	f := &streamFake{refuse: refuse}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		f.calls, f.bodies = append(f.calls, method), append(f.bodies, body)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if e, ok := f.refuse[method]; ok {
			_, _ = io.WriteString(w, `{"ok":false,"error":"`+e+`"}`)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1700000000.000100"}`)
	}))
	t.Cleanup(srv.Close)
	return f, channels.Settings{SettingBotToken: "xoxb-1", SettingAPIBaseURL: srv.URL + "/api"}
}

// waitForCalls waits until the fake got n calls.
func (f *streamFake) waitForCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if calls, _ := f.snapshot(); len(calls) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d calls", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *streamFake) snapshot() ([]string, []map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]map[string]any(nil), f.bodies...)
}

// envelopeEvent is a message event whose payload names the workspace.
func envelopeEvent(conv string) *msg.Event {
	return &msg.Event{ID: "Ev1", User: "U1", Conversation: conv, Channel: Name,
		Raw: json.RawMessage(`{"type":"event_callback","team_id":"T1","event":{"type":"message","user":"U1","channel":"C1"}}`)}
}

// TestNativeStream: a reply streams through startStream and appendStream,
// and stopStream adds what the final reply has more; all the text sent
// together is the final reply.
func TestNativeStream(t *testing.T) {
	f, s := newStreamFake(t, nil)
	a := New(Config{})
	rs := a.Stream(context.Background(), s, envelopeEvent("C1:1699999999.000001"))
	rs.Write("Our")
	f.waitForCalls(t, 1)
	for range 20 {
		rs.Write(" pizza")
	}
	final := "Our" + strings.Repeat(" pizza", 20) + " is the best."
	sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{{Text: final}}})
	if !sent || err != nil {
		t.Fatalf("finish: %v, %v", sent, err)
	}
	calls, bodies := f.snapshot()
	if calls[0] != "chat.startStream" || calls[len(calls)-1] != "chat.stopStream" {
		t.Fatalf("calls %v", calls)
	}
	start := bodies[0]
	if start["channel"] != "C1" || start["thread_ts"] != "1699999999.000001" || start["recipient_user_id"] != "U1" ||
		start["recipient_team_id"] != "T1" {
		t.Fatalf("startStream %v", start)
	}
	var all strings.Builder
	for i, b := range bodies {
		if i > 0 && b["ts"] != "1700000000.000100" {
			t.Fatalf("%s without the stream's ts: %v", calls[i], b)
		}
		if txt, ok := b["markdown_text"].(string); ok {
			all.WriteString(txt)
		}
	}
	if all.String() != final {
		t.Fatalf("streamed %q, want %q", all.String(), final)
	}
	// Again (a retried send): nothing more is sent.
	if sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{{Text: final}}}); !sent || err != nil {
		t.Fatalf("again: %v, %v", sent, err)
	}
	if again, _ := f.snapshot(); len(again) != len(calls) {
		t.Fatalf("calls after the end: %v", again[len(calls):])
	}
}

// TestStreamFallsBackToEdits: where startStream is refused, the reply is
// previewed in a posted message edited with chat.update.
func TestStreamFallsBackToEdits(t *testing.T) {
	f, s := newStreamFake(t, map[string]string{"chat.startStream": "not_allowed_token_type"})
	a := New(Config{})
	rs := a.Stream(context.Background(), s, envelopeEvent("D1"))
	rs.Write("Hello")
	f.waitForCalls(t, 2)
	sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{{Text: "Hello there!"}}})
	if !sent || err != nil {
		t.Fatalf("finish: %v, %v", sent, err)
	}
	calls, bodies := f.snapshot()
	if strings.Join(calls, ",") != "chat.startStream,chat.postMessage,chat.update" {
		t.Fatalf("calls %v", calls)
	}
	if bodies[1]["text"] != "Hello" || bodies[2]["text"] != "Hello there!" || bodies[2]["ts"] != "1700000000.000100" {
		t.Fatalf("bodies %v", bodies)
	}
}

// TestStreamFinalNotAnExtension: a final answer that does not extend the
// streamed text (or is not one plain text) stops and removes the stream,
// and is left to Send.
func TestStreamFinalNotAnExtension(t *testing.T) {
	for _, final := range []msg.Reply{{Text: "Something else."}, {Text: "Hello", Options: []string{"More"}}} {
		f, s := newStreamFake(t, nil)
		rs := New(Config{}).Stream(context.Background(), s, envelopeEvent("C1"))
		rs.Write("Hello")
		f.waitForCalls(t, 1)
		sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{final}})
		if sent || err != nil {
			t.Fatalf("%+v: finish %v, %v", final, sent, err)
		}
		if calls, _ := f.snapshot(); strings.Join(calls, ",") != "chat.startStream,chat.stopStream,chat.delete" {
			t.Fatalf("%+v: calls %v", final, calls)
		}
	}
}
