package dialogflow

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// TestRichGolden renders each testdata/rich/<case>.json (a handler's
// replies) as the answer to a request from the Facebook integration
// (facebook_ cases) or from an API caller (the official sample request);
// the golden file holds the event and the webhook response.
func TestRichGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rich", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no rich cases", err)
	}
	a := New(Config{})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			var replies []msg.Reply
			if err := json.Unmarshal(golden.Read(t, filepath.Join("rich", name+".json")), &replies); err != nil {
				t.Fatal(err)
			}
			inbound := "official_request.json"
			if strings.HasPrefix(name, "facebook_") {
				inbound = "facebook_menu.json"
			}
			ev, resp := golden.Turn(t, a, request(golden.Read(t, inbound)), func(ev *msg.Event) *msg.TurnResult {
				return golden.Handled(ev, "Show_Menu", replies...)
			})
			var w map[string]any
			if err := json.Unmarshal(resp.Body, &w); err != nil {
				t.Fatalf("invalid JSON: %s", resp.Body)
			}
			golden.Check(t, filepath.Join("rich", name), golden.Render(ev, resp))
		})
	}
}

// TestCardPressIsAPostback: Facebook sends a pressed card button's
// postback text as the query; the choices the previous answer left in an
// output context map it back to the button's payload, and the context is
// dropped when the answer offers no choices.
func TestCardPressIsAPostback(t *testing.T) {
	a := New(Config{})
	ev, resp := golden.Turn(t, a, request(golden.Read(t, "facebook_card_press.json")), func(ev *msg.Event) *msg.TurnResult {
		return golden.Handled(ev, "Order", msg.Reply{Text: "One Margherita coming up."})
	})
	if ev.Postback != "ORDER_M" || ev.Text != "Order Margherita" {
		t.Fatalf("event = %+v", ev)
	}
	var w struct {
		OutputContexts []context `json:"outputContexts"`
	}
	if err := json.Unmarshal(resp.Body, &w); err != nil || len(w.OutputContexts) != 2 {
		t.Fatalf("contexts = %s", resp.Body)
	}
	if c := w.OutputContexts[0]; !strings.HasSuffix(c.Name, "/contexts/ordering") || c.LifespanCount != 3 || c.Parameters["size"] != "large" {
		t.Errorf("the agent's context was changed: %+v", c)
	}
	if c := w.OutputContexts[1]; !isChoices(c.Name) || c.LifespanCount != 0 {
		t.Errorf("the used choices were not dropped: %+v", c)
	}
	// Text that names no choice is not a postback.
	body := strings.Replace(string(golden.Read(t, "facebook_card_press.json")), `"queryText":"Order Margherita"`, `"queryText":"Order a calzone"`, 1)
	in, err := a.Parse(request([]byte(body)))
	if err != nil || in.Events[0].Postback != "" {
		t.Fatalf("postback = %q, %v", in.Events[0].Postback, err)
	}
}

// TestNoChoicesNoContexts: an answer without choices, to a request without
// them, leaves Dialogflow's contexts alone.
func TestNoChoicesNoContexts(t *testing.T) {
	_, resp := golden.Turn(t, New(Config{}), request(golden.Read(t, "facebook_menu.json")), func(ev *msg.Event) *msg.TurnResult {
		return golden.Handled(ev, "Show_Menu", msg.Reply{Text: "We are closed."})
	})
	if strings.Contains(string(resp.Body), "outputContexts") {
		t.Fatalf("response = %s", resp.Body)
	}
}

func TestBadChannelData(t *testing.T) {
	a := New(Config{})
	req := request(golden.Read(t, "official_request.json"))
	in, err := a.Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	res := golden.Handled(in.Events[0], "X", msg.Reply{Text: "hi", ChannelData: map[string]json.RawMessage{ChannelDataKind: json.RawMessage(`"x"`)}})
	if _, err := a.Render(req, []*msg.TurnResult{res}); err == nil {
		t.Fatal("channel data that is not an object was accepted")
	}
}
