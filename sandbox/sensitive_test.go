package sandbox

import "testing"

func TestReplySensitive(t *testing.T) {
	res, err := runOnce(t, `function handle(e, s) return {text = "Card saved", sensitive = true} end`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reply.Sensitive || res.Reply.Text != "Card saved" {
		t.Errorf("reply %+v, want a sensitive one", res.Reply)
	}
	res, err = runOnce(t, `function handle(e, s) return {text = "hi"} end`, nil)
	if err != nil || res.Reply.Sensitive {
		t.Errorf("reply %+v, %v: not sensitive unless marked", res.Reply, err)
	}
	_, err = runOnce(t, `function handle(e, s) return {sensitive = "yes"} end`, nil)
	_ = wantScriptError(t, err, KindRuntime, "reply.sensitive must be a boolean")
}
