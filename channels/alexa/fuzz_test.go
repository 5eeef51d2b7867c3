package alexa

import (
	"errors"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// FuzzParse feeds arbitrary bodies through Parse (signature check off, so
// that the JSON handling is reached) and renders whatever it accepts.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"launch_request", "intent_entity_resolution", "intent_multiple_values", "session_ended_request"} {
		f.Add(golden.Read(f, name+".json"))
	}
	f.Add([]byte(`{"request":{"timestamp":1563230663000}}`))
	a := New(Config{FetchCertificate: func(string) ([]byte, error) { return nil, http.ErrNotSupported }})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &channels.Request{Bot: "b", Method: http.MethodPost, Header: http.Header{}, Body: body, Now: testNow,
			Settings: channels.Settings{SettingSkillID: testSkillID, SettingVerifySignature: "false"}}
		in, err := a.Parse(req)
		if err != nil {
			if ce := (*channels.Error)(nil); !errors.As(err, &ce) {
				t.Fatalf("Parse error %T is not a *channels.Error", err)
			}
			return
		}
		for _, ev := range in.Events {
			if ev.Conversation == "" || ev.ID == "" {
				t.Fatalf("event without conversation or id: %+v", ev)
			}
			if _, err := a.Render(req, []*msg.TurnResult{golden.Handled(ev, ev.Intent, msg.Reply{Text: "ok", Expect: "x"})}); err != nil {
				t.Fatal(err)
			}
		}
		a.RenderError(req, nil)
	})
}
