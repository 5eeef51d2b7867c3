package discord

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

const commandBody = `{"id":"787053080478613556","application_id":"1200000000000000001","token":"aW50ZXJhY3Rpb246MTIz","type":2,` +
	`"channel_id":"1100000000000000001","member":{"user":{"id":"1200000000000000002"}},"data":{"id":"1","name":"ask"}}`

// TestDeferredReplies: with defer_replies an interaction is acknowledged
// with a deferred response and its event queued; the answer edits the
// original message, streamed or not.
func TestDeferredReplies(t *testing.T) {
	a := New(Config{})
	req := signed(t, []byte(commandBody), "1700000000")
	in, err := a.Parse(req)
	if err != nil || in.Async || len(in.Events) != 1 {
		t.Fatalf("without defer_replies: %+v, %v", in, err)
	}
	req.Settings[SettingDeferReplies] = "true"
	in, err = a.Parse(req)
	if err != nil || !in.Async || len(in.Events) != 1 || string(in.Response.Body) != `{"type":5}` {
		t.Fatalf("deferred: %+v, %v", in, err)
	}
	ev := in.Events[0]

	f := newFakeAPI(t)
	s := pushSettings(f)
	s[SettingDeferReplies] = "true"
	res := &msg.TurnResult{Event: ev, Conversation: ev.Conversation,
		Replies: []msg.Reply{{Text: "Large pizzas are 30 cm.", Options: []string{"Order one"}}}}
	// Not streamed: Send edits the original message.
	if err := a.Send(context.Background(), s, res); err != nil {
		t.Fatal(err)
	}
	reqs := f.take()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPatch ||
		reqs[0].Path != "/api/v10/webhooks/1200000000000000001/aW50ZXJhY3Rpb246MTIz/messages/@original" || reqs[0].Auth != "" {
		t.Fatalf("send: %+v", reqs)
	}
	var body ResponseData
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body.Content != "Large pizzas are 30 cm." || len(body.Components) != 1 {
		t.Fatalf("send body %s", reqs[0].Body)
	}

	// Streamed: the original message grows, then shows the final answer.
	rs := a.Stream(context.Background(), s, ev)
	rs.Write("Large")
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.reqs)
		f.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no preview")
		}
		time.Sleep(time.Millisecond)
	}
	rs.Write(" pizzas")
	sent, err := rs.Finish(context.Background(), res)
	if !sent || err != nil {
		t.Fatalf("finish: %v, %v", sent, err)
	}
	reqs = f.take()
	if len(reqs) < 2 || len(reqs) > 3 {
		t.Fatalf("%d edits", len(reqs))
	}
	var first, last ResponseData
	_ = json.Unmarshal(reqs[0].Body, &first)
	_ = json.Unmarshal(reqs[len(reqs)-1].Body, &last)
	if !strings.HasPrefix(first.Content, "Large") || last.Content != "Large pizzas are 30 cm." || len(last.Components) != 1 {
		t.Fatalf("edits %s ... %s", reqs[0].Body, reqs[len(reqs)-1].Body)
	}
	// A pushed message (no interaction), and an interaction answered in
	// its response, are not streamed.
	if a.Stream(context.Background(), s, &msg.Event{Conversation: testChannel}) != nil {
		t.Fatal("a stream without an interaction")
	}
	s[SettingDeferReplies] = "false"
	if a.Stream(context.Background(), s, ev) != nil {
		t.Fatal("a stream of an interaction that is not deferred")
	}
	if err := a.ValidateSettings(channels.Settings{SettingPublicKey: publicHex, SettingDeferReplies: "true"}); err != nil {
		t.Fatal(err)
	}
}
