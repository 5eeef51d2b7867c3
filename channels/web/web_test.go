package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

const token = "web-token-0123456789"

func request(auth, body string) *channels.Request {
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return &channels.Request{Bot: "b", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/b/web"}, Header: h,
		Body: []byte(body), Settings: channels.Settings{"token": token}, Now: time.Unix(1700000000, 0).UTC()}
}

func TestParse(t *testing.T) {
	a := New(Config{})
	in, err := a.Parse(request("Bearer "+token, `{"user":"u1","text":"hi","slots":{"size":"large"},"locale":"en-GB","id":"m1"}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := in.Events[0]
	if ev.ID != "m1" || ev.Bot != "b" || ev.Channel != "web" || ev.User != "u1" || ev.Conversation != "u1" ||
		ev.Text != "hi" || ev.Slots["size"] != "large" || ev.Locale != "en-GB" || !ev.Timestamp.Equal(time.Unix(1700000000, 0)) ||
		!strings.Contains(string(ev.Raw), `"text":"hi"`) {
		t.Fatalf("event = %+v", ev)
	}
	in, _ = a.Parse(request("Bearer "+token, `{"user":"u1","conversation":"c9","intent":"Help"}`))
	if ev := in.Events[0]; ev.Conversation != "c9" || ev.Intent != "Help" || ev.Confidence != 1 || ev.ID == "" {
		t.Fatalf("event with intent = %+v", ev)
	}
}

func TestParseRejects(t *testing.T) {
	a := New(Config{})
	for name, tc := range map[string]struct {
		auth, body string
		status     int
	}{
		"no token":      {"", `{"user":"u","text":"x"}`, 401},
		"wrong token":   {"Bearer nope-nope-nope", `{"user":"u","text":"x"}`, 401},
		"basic auth":    {"Basic " + token, `{"user":"u","text":"x"}`, 401},
		"bad json":      {"Bearer " + token, `{"user":`, 400},
		"trailing data": {"Bearer " + token, `{"user":"u","text":"x"} {}`, 400},
		"no user":       {"Bearer " + token, `{"text":"x"}`, 400},
		"no text":       {"Bearer " + token, `{"user":"u"}`, 400},
		"postback type": {"Bearer " + token, `{"user":"u","postback":{"a":1}}`, 400},
		"long postback": {"Bearer " + token, `{"user":"u","postback":"` + strings.Repeat("p", 70000) + `"}`, 400},
		"long text":     {"Bearer " + token, `{"user":"u","text":"` + strings.Repeat("a", 5000) + `"}`, 400},
	} {
		_, err := a.Parse(request(tc.auth, tc.body))
		var ce *channels.Error
		if !errors.As(err, &ce) || ce.Status != tc.status {
			t.Errorf("%s: err = %v, want status %d", name, err, tc.status)
		}
	}
	// A bot whose web channel has no token accepts nobody.
	req := request("Bearer ", `{"user":"u","text":"x"}`)
	req.Settings = channels.Settings{}
	if _, err := a.Parse(req); err == nil {
		t.Error("empty configured token accepted an empty bearer")
	}
}

func TestRender(t *testing.T) {
	resp, err := New(Config{}).Render(nil, []*msg.TurnResult{{
		Conversation: "c", Decision: msg.Decision{Intent: "Greet"},
		Replies: []msg.Reply{{Text: "hi", Options: []string{"a", "b"}, Expect: "Next"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"conversation":"c","intent":"Greet","replies":[{"text":"hi","options":["a","b"]}],"end_conversation":false}`
	if string(resp.Body) != want || resp.Status != 200 {
		t.Fatalf("render = %d %s, want %s", resp.Status, resp.Body, want)
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	if err := a.ValidateSettings(channels.Settings{"token": token}); err != nil {
		t.Error(err)
	}
	for _, s := range []channels.Settings{{}, {"token": "short"}, {"token": token, "extra": "x"}} {
		if err := a.ValidateSettings(s); err == nil {
			t.Errorf("settings %v accepted", s)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"user":"u","text":"hi","slots":{"a":"b"}}`))
	f.Add([]byte(`{"user":"u","intent":"X","conversation":"c","id":"1","locale":"en"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"user":"u","postback":"OrderPizza"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeMessage(body)
		if err != nil {
			if ce := (*channels.Error)(nil); !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if ev.User == "" || ev.Conversation == "" || ev.ID == "" || (ev.Text == "" && ev.Intent == "" && ev.Postback == "") {
			t.Fatalf("accepted an incomplete message: %+v", ev)
		}
	})
}

// TestRich: a button press is a postback, and the answer carries buttons,
// cards, media and the web channel's own channel data as the handler gave
// them (another channel's data stays out).
func TestRich(t *testing.T) {
	a := New(Config{})
	req := request("Bearer "+token, `{"user":"u1","postback":"add:margherita","id":"m2"}`)
	ev, resp := golden.Turn(t, a, req, func(ev *msg.Event) *msg.TurnResult {
		return golden.Handled(ev, "Menu", msg.Reply{
			Text:    "Here is our menu",
			Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
			Cards: []msg.Card{{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
				Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}}},
			Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"}},
			ChannelData: map[string]json.RawMessage{"web": json.RawMessage(`{"theme":"dark"}`),
				"slack": json.RawMessage(`{"blocks":[]}`)},
		})
	})
	if ev.Postback != "add:margherita" || ev.Text != "" {
		t.Fatalf("event %+v", ev)
	}
	golden.Check(t, "rich", golden.Render(ev, resp))
}

// TestAnswerWritesWhatEncodingJSONWrites: an answer's bytes are
// encoding/json's, with HTML and line separators escaped the same way.
func TestAnswerWritesWhatEncodingJSONWrites(t *testing.T) {
	ev := &msg.Event{ID: "m1", Bot: "b", Channel: "web", User: "u<1>", Conversation: "u<1>", Text: "hi"}
	res := golden.Handled(ev, "Menu", msg.Reply{
		Text:        "<b>Fish & chips</b>\u2028next\u2029 \x01 é 😀 \xff\xed\xa0\x80",
		Buttons:     []msg.Button{{Title: "A&B", Payload: "<p>"}, {Title: "Site", URL: "https://example.com/?a=1&b=2"}},
		Cards:       []msg.Card{{Title: "T", Subtitle: "<s>", Image: "https://example.com/i.png"}},
		Media:       []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/m.png", Caption: "&"}},
		ChannelData: map[string]json.RawMessage{"web": json.RawMessage(`{"theme": "<dark>"}`)},
	})
	got, err := New(Config{}).Render(&channels.Request{}, []*msg.TurnResult{res})
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(NewAnswer(res))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != string(want) {
		t.Fatalf("got  %s\nwant %s", got.Body, want)
	}
}
