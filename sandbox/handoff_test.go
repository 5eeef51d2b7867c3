package sandbox

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/msg"
)

// TestReplyHandoff: reply.handoff hands the conversation over, with the
// default queue when it names none.
func TestReplyHandoff(t *testing.T) {
	for _, tc := range []struct {
		ret  string
		want msg.Handoff
	}{
		{`{text = "A person will answer", handoff = {queue = "support", reason = "asked for a human"}}`,
			msg.Handoff{Queue: "support", Reason: "asked for a human"}},
		{`{text = "One moment", handoff = {}}`, msg.Handoff{Queue: msg.DefaultHandoffQueue}},
		{`{text = "One moment", handoff = true}`, msg.Handoff{Queue: msg.DefaultHandoffQueue}},
	} {
		res, err := runOnce(t, "function handle(e, s) return "+tc.ret+" end", nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.ret, err)
		}
		if res.Reply.Handoff == nil || *res.Reply.Handoff != tc.want {
			t.Errorf("%s: handoff %+v, want %+v", tc.ret, res.Reply.Handoff, tc.want)
		}
	}
	res, err := runOnce(t, `function handle(e, s) return {text = "x", handoff = false} end`, nil)
	if err != nil || res.Reply.Handoff != nil {
		t.Fatalf("handoff = false: %+v, %v", res.Reply.Handoff, err)
	}
}

func TestReplyHandoffErrors(t *testing.T) {
	for _, tc := range []struct{ ret, msg string }{
		{`{handoff = {queue = "Support"}}`, `reply.handoff.queue must be 1-64 lowercase letters, digits, '_' or '-', not "Support"`},
		{`{handoff = {queue = "a b"}}`, `reply.handoff.queue must be 1-64`},
		{`{handoff = {queue = string.rep("q", 65)}}`, `reply.handoff.queue must be 1-64`},
		{`{handoff = {queue = "q", reason = string.rep("é", 501)}}`, `reply.handoff.reason is longer than 500 characters`},
		{`{handoff = {queue = "q", team = "x"}}`, `reply.handoff has unknown key "team"`},
		{`{handoff = "support"}`, `reply.handoff must be a table like {queue = "support", reason = "..."} or true, not a string`},
		{`{handoff = {queue = {}}}`, `reply.handoff.queue must be a string, not a table`},
	} {
		_, err := runOnce(t, "function handle(e, s) return "+tc.ret+" end", nil)
		_ = wantScriptError(t, err, KindRuntime, tc.msg)
	}
	// A reason of 500 characters is fine, however many bytes they take.
	res, err := runOnce(t, `function handle(e, s) return {handoff = {reason = string.rep("é", 500)}} end`, nil)
	if err != nil || res.Reply.Handoff == nil || !strings.HasPrefix(res.Reply.Handoff.Reason, "éé") {
		t.Fatalf("500 characters: %+v, %v", res.Reply.Handoff, err)
	}
}
