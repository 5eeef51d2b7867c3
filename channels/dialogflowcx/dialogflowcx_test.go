package dialogflowcx

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

var (
	testNow      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testSettings = channels.Settings{"header_name": "X-Parley-Secret", "header_value": "a-long-secret-value"}
)

func request(body []byte) *channels.Request {
	h := http.Header{"Content-Type": {"application/json"}, "X-Parley-Secret": {"a-long-secret-value"}}
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, Header: h, Body: body, Settings: testSettings, Now: testNow}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name   string
		answer func(ev *msg.Event) *msg.TurnResult
	}{
		{"order_status", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "order-status", msg.Reply{Text: "Your order ships tomorrow."})
		}},
		{"welcome_voice", golden.Builtin},
		{"form_parameters", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "ChooseSize", msg.Reply{Text: "Two large pizzas, delivered. Is that right?",
				SSML:    `<speak>Two <emphasis>large</emphasis> pizzas, delivered. Is that right?</speak>`,
				Options: []string{"yes", "no"}, Expect: "Confirm"})
		}},
		{"confirm_end", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Confirm", msg.Reply{Text: "Ordered. Goodbye!", EndConversation: true})
		}},
	}
	a := New(Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, resp := golden.Turn(t, a, request(golden.Read(t, c.name+".json")), c.answer)
			golden.Check(t, c.name, golden.Render(ev, resp))
		})
	}
}

func TestAuthentication(t *testing.T) {
	a := New(Config{})
	req := request(golden.Read(t, "order_status.json"))
	req.Header.Set("X-Parley-Secret", "wrong-secret-value!")
	var ce *channels.Error
	if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("wrong header secret: %v", err)
	}
	if err := a.ValidateSettings(channels.Settings{"header_name": "X-Secret"}); err == nil {
		t.Error("settings without a header value accepted")
	}
	if got := a.SecretSettings(); len(got) != 2 {
		t.Errorf("SecretSettings = %v", got)
	}
}

func TestFailedTurnKeepsSessionParameters(t *testing.T) {
	a := New(Config{})
	req := request(golden.Read(t, "order_status.json"))
	in, _ := a.Parse(req)
	resp, _ := a.Render(req, []*msg.TurnResult{golden.Failed(in.Events[0], "order-status", msg.OutcomeError)})
	var w map[string]any
	if err := json.Unmarshal(resp.Body, &w); err != nil || w["sessionInfo"] != nil || w["fulfillmentResponse"] == nil {
		t.Errorf("failed turn = %s", resp.Body)
	}
	resp = a.RenderError(req, errors.New("store down"))
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &w) != nil || w["fulfillmentResponse"] == nil {
		t.Errorf("RenderError = %s", resp.Body)
	}
}

func FuzzParse(f *testing.F) {
	a := New(Config{})
	golden.FuzzParse(f, a, golden.Fuzzing{
		Seeds:       golden.Files([]string{"order_status", "welcome_voice", "form_parameters"}, ".json"),
		Request:     request,
		TypedErrors: true,
		Check: func(t *testing.T, req *channels.Request, ev *msg.Event) {
			if _, err := a.Render(req, []*msg.TurnResult{golden.Handled(ev, "x", msg.Reply{Text: ev.Text, EndConversation: true})}); err != nil {
				t.Fatal(err)
			}
		},
	})
}
