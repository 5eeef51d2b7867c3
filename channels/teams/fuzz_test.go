package teams

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// FuzzActivity feeds the activity decoder and the normalizer arbitrary
// bodies: nothing panics, a refused body is a 400, and every event has a
// conversation, an id and the body as its raw payload, and renders.
func FuzzActivity(f *testing.F) {
	for _, name := range parseCases(f) {
		f.Add(golden.Read(f, name+".json"))
	}
	f.Add([]byte(`{"type":"message","id":"1","serviceUrl":"https://x/","channelId":"msteams","from":{"id":"u"},"conversation":{"id":"c"},"value":"\u0000"}`))
	f.Add([]byte(`{"type":"message","id":"1","serviceUrl":"https://x/","channelId":"msteams","from":{"id":"u"},"conversation":{"id":"c"},"value":{"parley":"r:zz"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		act, err := DecodeActivity(body)
		if err != nil {
			return
		}
		in := Normalize(act, body)
		if in.Response == nil {
			t.Fatal("no acknowledgement")
		}
		for _, ev := range in.Events {
			if ev.Conversation == "" || ev.ID == "" || string(ev.Raw) != string(body) {
				t.Fatalf("event %+v", ev)
			}
			if ev.Postback != "" && len(ev.Postback) > maxPostbackLen {
				t.Fatalf("postback of %d bytes", len(ev.Postback))
			}
			reply := msg.Reply{Text: ev.Text, Options: []string{ev.Text}, Buttons: []msg.Button{{Title: ev.Text, Payload: ev.Postback + "x"}}}
			for _, a := range fit(Render([]msg.Reply{reply})) {
				if _, err := json.Marshal(a); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkParse is the verification and normalization of one activity
// (an RSA signature check with a cached key).
func BenchmarkParse(b *testing.B) {
	f := newFixture(b)
	body := golden.Read(b, "message_personal.json")
	golden.BenchmarkParse(b, f.a, f.signed(b, body))
}
