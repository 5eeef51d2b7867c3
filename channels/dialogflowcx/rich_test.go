package dialogflowcx

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// TestRichGolden renders each testdata/rich/<case>.json (a handler's
// replies) as the answer to the order-status request; the golden file
// holds the event and the webhook response.
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
			ev, resp := golden.Turn(t, a, request(golden.Read(t, "order_status.json")), func(ev *msg.Event) *msg.TurnResult {
				return golden.Handled(ev, "Show_Menu", replies...)
			})
			if !json.Valid(resp.Body) {
				t.Fatalf("invalid JSON: %s", resp.Body)
			}
			golden.Check(t, filepath.Join("rich", name), golden.Render(ev, resp))
		})
	}
}

// TestChipPressIsAPostback: a pressed chip sends its text as the query;
// the choices the previous answer left in a session parameter map it back
// to the button's payload, and are cleared by an answer without choices.
func TestChipPressIsAPostback(t *testing.T) {
	a := New(Config{})
	ev, resp := golden.Turn(t, a, request(golden.Read(t, "chip_press.json")), func(ev *msg.Event) *msg.TurnResult {
		return golden.Handled(ev, "Order", msg.Reply{Text: "One Diavola coming up."})
	})
	if ev.Postback != "ORDER_D" || ev.Text != "Order Diavola" {
		t.Fatalf("event = %+v", ev)
	}
	if _, ok := ev.Slots["parley_choices"]; ok {
		t.Error("Parley's choices leaked into the slots")
	}
	var w struct {
		SessionInfo struct {
			Parameters map[string]any `json:"parameters"`
		} `json:"sessionInfo"`
	}
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		t.Fatal(err)
	}
	if v, ok := w.SessionInfo.Parameters[choicesParam]; !ok || v != nil {
		t.Errorf("choices not cleared: %s", resp.Body)
	}
	// Words that name no choice are not a postback.
	body := strings.Replace(string(golden.Read(t, "chip_press.json")), `"text":"Order Diavola"`, `"text":"no thanks"`, 1)
	in, err := a.Parse(request([]byte(body)))
	if err != nil || in.Events[0].Postback != "" {
		t.Fatalf("postback = %q, %v", in.Events[0].Postback, err)
	}
	// Nor is a number when nothing was offered.
	body = strings.Replace(string(golden.Read(t, "order_status.json")), `"text":"where is my order 12345"`, `"text":"1"`, 1)
	if in, err := a.Parse(request([]byte(body))); err != nil || in.Events[0].Postback != "" {
		t.Fatalf("postback = %q, %v", in.Events[0].Postback, err)
	}
}

func TestBadChannelData(t *testing.T) {
	a := New(Config{})
	req := request(golden.Read(t, "order_status.json"))
	in, err := a.Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	res := golden.Handled(in.Events[0], "X", msg.Reply{Text: "hi", ChannelData: map[string]json.RawMessage{ChannelDataKind: json.RawMessage(`[]`)}})
	if _, err := a.Render(req, []*msg.TurnResult{res}); err == nil {
		t.Fatal("channel data that is not an object was accepted")
	}
}
