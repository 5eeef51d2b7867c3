package lex

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

var (
	testNow      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testSettings = channels.Settings{"username": "lex-forwarder", "password": "forwarder-password"}
)

func request(body []byte) *channels.Request {
	h := http.Header{"Content-Type": {"application/json"}}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("lex-forwarder:forwarder-password")))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, Header: h, Body: body, Settings: testSettings, Now: testNow}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name   string
		answer func(ev *msg.Event) *msg.TurnResult
		action string
	}{
		{"lexv2_event", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "CheckBalance", msg.Reply{Text: "Your checking account balance is $1,234.56", EndConversation: true})
		}, "Close"},
		{"dialog_elicit_slot", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "OrderPizza", msg.Reply{Text: "A large one. Thin or thick crust?", Expect: "crust"})
		}, "ElicitSlot"},
		{"dialog_delegate", golden.Builtin, "Delegate"},
		{"confirm_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "OrderPizza", msg.Reply{
				SSML:    `<speak>A large <emphasis>thin</emphasis> pizza. Shall I order it?</speak>`,
				Options: []string{"yes", "no"}, Expect: "OrderPizza"})
		}, "ConfirmIntent"},
		{"fallback_intent", func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "ChooseToppings", msg.Reply{Text: "Mushrooms and olives. Anything else?", Expect: "ChooseToppings"})
		}, "ElicitIntent"},
		{"stop_intent", golden.Builtin, "Close"},
		{"list_slot", func(ev *msg.Event) *msg.TurnResult {
			return golden.Failed(ev, "AddToppings", msg.OutcomeError)
		}, "Close"},
	}
	a := New(Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, resp := golden.Turn(t, a, request(golden.Read(t, c.name+".json")), c.answer)
			if got := checkResponse(t, resp.Body); got != c.action {
				t.Errorf("dialog action %s, want %s", got, c.action)
			}
			golden.Check(t, c.name, golden.Render(ev, resp))
		})
	}
}

// checkResponse holds a response to the Lex V2 response rules and returns
// its dialog action.
func checkResponse(t *testing.T, body []byte) string {
	t.Helper()
	var r struct {
		SessionState struct {
			DialogAction struct {
				Type         string `json:"type"`
				SlotToElicit string `json:"slotToElicit"`
			} `json:"dialogAction"`
			Intent *struct { // echoed as Lex sent it, unknown fields and all
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"intent"`
			SessionAttributes map[string]string `json:"sessionAttributes"`
		} `json:"sessionState"`
		Messages []struct {
			ContentType string `json:"contentType"`
			Content     string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("response is not a Lex V2 response: %v\n%s", err, body)
	}
	var top map[string]map[string]json.RawMessage
	_ = json.Unmarshal(body, &top) // "messages" is an array: only the objects are read
	for k := range top["sessionState"] {
		if k != "dialogAction" && k != "intent" && k != "sessionAttributes" {
			t.Errorf("unknown sessionState field %q", k)
		}
	}
	st := r.SessionState
	if st.Intent != nil && st.Intent.Name == "" {
		t.Errorf("intent without a name: %s", body)
	}
	switch st.DialogAction.Type {
	case "Close":
		if st.Intent == nil || (st.Intent.State != "Fulfilled" && st.Intent.State != "Failed") {
			t.Errorf("Close needs an intent in a final state: %s", body)
		}
	case "ElicitSlot":
		if st.DialogAction.SlotToElicit == "" || st.Intent == nil {
			t.Errorf("ElicitSlot needs a slot and the intent: %s", body)
		}
	case "ConfirmIntent":
		if st.Intent == nil || len(r.Messages) == 0 {
			t.Errorf("ConfirmIntent needs the intent and a question: %s", body)
		}
	case "Delegate":
		if len(r.Messages) > 0 {
			t.Errorf("Delegate with messages: %s", body)
		}
	case "ElicitIntent":
	default:
		t.Errorf("unknown dialog action %q", st.DialogAction.Type)
	}
	for _, m := range r.Messages {
		if m.ContentType == "ImageResponseCard" {
			continue // checkCards
		}
		if (m.ContentType != "PlainText" && m.ContentType != "SSML") || m.Content == "" || len(m.Content) > maxMessage {
			t.Errorf("bad message %+v", m)
		}
	}
	checkCards(t, body)
	return st.DialogAction.Type
}

func TestLongTextIsSplit(t *testing.T) {
	words := strings.Repeat("lorem ipsum ", 300)
	msgs := messages(voiceText(words), false)
	if len(msgs) < 3 {
		t.Fatalf("%d messages for %d bytes", len(msgs), len(words))
	}
	var joined []string
	for _, m := range msgs {
		if len(m.Content) > maxMessage {
			t.Errorf("message of %d bytes", len(m.Content))
		}
		joined = append(joined, m.Content)
	}
	if strings.Join(joined, " ") != strings.TrimSpace(words) {
		t.Error("split text does not join back")
	}
}

func TestAuthenticationAndErrors(t *testing.T) {
	a := New(Config{})
	req := request(golden.Read(t, "lexv2_event.json"))
	req.Header.Del("Authorization")
	var ce *channels.Error
	if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("no credentials: %v", err)
	}
	req = request(golden.Read(t, "dialog_elicit_slot.json"))
	resp := a.RenderError(req, errors.New("store down"))
	if resp.Status != http.StatusOK || checkResponse(t, resp.Body) != "Close" || !strings.Contains(string(resp.Body), `"Failed"`) {
		t.Errorf("RenderError = %s", resp.Body)
	}
	resp = a.RenderError(request([]byte(`{}`)), errors.New("x"))
	if checkResponse(t, resp.Body) != "Close" {
		t.Errorf("RenderError without an intent = %s", resp.Body)
	}
	if err := a.ValidateSettings(testSettings); err != nil {
		t.Error(err)
	}
}

func FuzzParse(f *testing.F) {
	a := New(Config{})
	golden.FuzzParse(f, a, golden.Fuzzing{
		Seeds:       golden.Files([]string{"lexv2_event", "dialog_elicit_slot", "list_slot"}, ".json"),
		Request:     request,
		TypedErrors: true,
		Check: func(t *testing.T, req *channels.Request, ev *msg.Event) {
			for _, r := range []*msg.TurnResult{
				golden.Handled(ev, "x", msg.Reply{Text: ev.Text, Expect: "x"}),
				golden.Handled(ev, "x", msg.Reply{Text: "bye", EndConversation: true}),
				golden.Builtin(ev),
			} {
				resp, err := a.Render(req, []*msg.TurnResult{r})
				if err != nil {
					t.Fatal(err)
				}
				checkResponse(t, resp.Body)
			}
		},
	})
}
