package telegram

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

func (f *fakeTelegram) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Path[strings.LastIndexByte(c.Path, '/')+1:])
	}
	return out
}

// waitForCalls waits until the fake got n calls.
func (f *fakeTelegram) waitForCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.methods()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d calls", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fakeTelegram) body(i int) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]any
	_ = json.Unmarshal(f.calls[i].Body, &m)
	return m
}

// TestStreamEditsOneMessage: the first text is sent at once, the rest is
// folded into few edits, and Finish makes the message show the final
// reply exactly.
func TestStreamEditsOneMessage(t *testing.T) {
	f, srv := newFake(t)
	a := New(Config{})
	s := channels.Settings{SettingBotToken: "123:abc", SettingAPIBaseURL: srv.URL}
	ev := &msg.Event{ID: "1", Conversation: "-100123:7", Channel: Name}
	rs := a.Stream(context.Background(), s, ev)
	rs.Write("We")
	f.waitForCalls(t, 1)
	for range 50 {
		rs.Write(" open")
	}
	sent, err := rs.Finish(context.Background(), &msg.TurnResult{Event: ev, Conversation: ev.Conversation,
		Replies: []msg.Reply{{Text: "We open at nine."}}})
	if err != nil || !sent {
		t.Fatalf("finish: %v, %v", sent, err)
	}
	m := f.methods()
	if m[0] != "sendMessage" || m[len(m)-1] != "editMessageText" || len(m) > 3 {
		t.Fatalf("calls %v: want sendMessage, at most one preview edit, the final edit", m)
	}
	first, last := f.body(0), f.body(len(m)-1)
	if first["chat_id"] != float64(-100123) || first["message_thread_id"] != float64(7) || !strings.HasPrefix(first["text"].(string), "We") {
		t.Fatalf("first %v", first)
	}
	if last["text"] != "We open at nine." || last["message_id"] != float64(1) {
		t.Fatalf("final %v", last)
	}
	// Finishing again (a retried send) changes nothing.
	if sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{{Text: "We open at nine."}}}); !sent || err != nil {
		t.Fatalf("second finish: %v, %v", sent, err)
	}
}

// TestStreamFinalWithOptions: a final answer the preview cannot become by
// an edit removes the preview, and is left to Send.
func TestStreamFinalWithOptions(t *testing.T) {
	f, srv := newFake(t)
	a := New(Config{})
	s := channels.Settings{SettingBotToken: "123:abc", SettingAPIBaseURL: srv.URL}
	ev := &msg.Event{ID: "1", Conversation: "42"}
	rs := a.Stream(context.Background(), s, ev)
	rs.Write("Pick one")
	f.waitForCalls(t, 1)
	sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{{Text: "Pick one", Options: []string{"A", "B"}}}})
	if err != nil || sent {
		t.Fatalf("finish: %v, %v", sent, err)
	}
	if m := f.methods(); len(m) != 2 || m[0] != "sendMessage" || m[1] != "deleteMessage" {
		t.Fatalf("calls %v", m)
	}
	// A stream nothing was written to sends nothing.
	rs = a.Stream(context.Background(), s, ev)
	if sent, err := rs.Finish(context.Background(), &msg.TurnResult{Replies: []msg.Reply{{Text: "x"}}}); sent || err != nil {
		t.Fatalf("empty stream: %v, %v", sent, err)
	}
	if n := len(f.methods()); n != 2 {
		t.Fatalf("%d calls", n)
	}
	if a.Stream(context.Background(), s, &msg.Event{Conversation: "not-a-chat"}) != nil {
		t.Fatal("a stream for a conversation that is no chat")
	}
}
