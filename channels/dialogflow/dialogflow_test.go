package dialogflow

import (
	"encoding/base64"
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
	testSettings = channels.Settings{"username": "dialogflow", "password": "fulfillment-password"}
)

func request(body []byte) *channels.Request {
	h := http.Header{"Content-Type": {"application/json"}}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("dialogflow:fulfillment-password")))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, Header: h, Body: body, Settings: testSettings, Now: testNow}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name   string
		answer func(ev *msg.Event) *msg.TurnResult
	}{
		{"official_request", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Matched_Intent_Name", msg.Reply{Text: "Done: param value."})
		}},
		{"welcome_telephony", golden.Builtin},
		{"order_parameters", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Order_Pizza", msg.Reply{Text: "Two large pizzas. Which crust?",
				SSML: `<speak>Two large pizzas. <break time="200ms"/> Which crust?</speak>`, Reprompt: "Thin or thick?", Expect: "ChooseCrust"})
		}},
		{"fallback_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "ChooseCrust", msg.Reply{Text: "Thin crust, done. Goodbye!", EndConversation: true})
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
	body := golden.Read(t, "official_request.json")
	req := request(body)
	req.Header.Del("Authorization")
	var ce *channels.Error
	if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("no credentials: %v", err)
	}
	req = request(body)
	req.Settings = channels.Settings{"header_name": "X-Parley-Secret", "header_value": "a-long-secret-value"}
	if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("basic auth when a header is configured: %v", err)
	}
	req.Header.Set("X-Parley-Secret", "a-long-secret-value")
	if _, err := a.Parse(req); err != nil {
		t.Errorf("header secret: %v", err)
	}
	if err := a.ValidateSettings(testSettings); err != nil {
		t.Error(err)
	}
	if err := a.ValidateSettings(channels.Settings{"username": "x"}); err == nil {
		t.Error("settings without a password accepted")
	}
}

func TestRenderError(t *testing.T) {
	a := New(Config{})
	resp := a.RenderError(request(golden.Read(t, "official_request.json")), errors.New("store down"))
	var w WebhookResponse
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &w) != nil || w.FulfillmentText == "" {
		t.Errorf("RenderError = %d %s", resp.Status, resp.Body)
	}
	if a.Budget() != DefaultBudget || a.Budget() >= 5*time.Second {
		t.Errorf("Budget = %v, want less than Dialogflow's 5 s", a.Budget())
	}
}

func FuzzParse(f *testing.F) {
	a := New(Config{})
	golden.FuzzParse(f, a, golden.Fuzzing{
		Seeds:       golden.Files([]string{"official_request", "order_parameters", "welcome_telephony"}, ".json"),
		Request:     request,
		TypedErrors: true,
		Check: func(t *testing.T, req *channels.Request, ev *msg.Event) {
			if _, err := a.Render(req, []*msg.TurnResult{golden.Handled(ev, "x", msg.Reply{Text: ev.Text})}); err != nil {
				t.Fatal(err)
			}
		},
	})
}
