package sandbox

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/parleyhq/parley/msg"
)

func TestRichReply(t *testing.T) {
	src := `function handle(e, s)
  return {
    text = "Here is our menu",
    buttons = {{title = "Order", payload = "OrderPizza"}, {title = "Website", url = "https://example.com"}},
    cards = {{title = "Margherita", subtitle = "Tomato, mozzarella", image = "https://example.com/m.jpg",
              buttons = {{title = "Add", payload = "add:margherita"}}},
             {title = "Diavola"}},
    media = {{type = "image", url = "https://example.com/menu.png", caption = "Menu"},
             {type = "file", url = "http://example.com/menu.pdf"}},
    channel_data = {slack = {blocks = {{type = "divider"}}}, telegram = {disable_notification = true}},
  }
end`
	res, err := runOnce(t, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := msg.Reply{
		Text: "Here is our menu",
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"},
			{Title: "Website", URL: "https://example.com"}},
		Cards: []msg.Card{{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
			Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}}, {Title: "Diavola"}},
		Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
			{Type: msg.MediaFile, URL: "http://example.com/menu.pdf"}},
		ChannelData: map[string]json.RawMessage{
			"slack":    json.RawMessage(`{"blocks":[{"type":"divider"}]}`),
			"telegram": json.RawMessage(`{"disable_notification":true}`),
		},
	}
	if !reflect.DeepEqual(res.Reply, want) {
		got, _ := json.Marshal(res.Reply)
		exp, _ := json.Marshal(want)
		t.Fatalf("reply\n got %s\nwant %s", got, exp)
	}
}

func TestRichReplyErrors(t *testing.T) {
	tests := []struct {
		name string
		ret  string
		kind ErrorKind
		msg  string
	}{
		{"button title type", `{buttons = {{title = "a", payload = "p"}, {title = "b", payload = "q"}, {title = {}, payload = "x"}}}`,
			KindRuntime, "reply.buttons[3].title must be a string, not a table"},
		{"button without title", `{buttons = {{payload = "p"}}}`, KindRuntime, "reply.buttons[1].title is required"},
		{"button without action", `{buttons = {{title = "a"}}}`, KindRuntime, "reply.buttons[1] needs a payload"},
		{"button with both", `{buttons = {{title = "a", payload = "p", url = "https://x.org"}}}`, KindRuntime,
			"reply.buttons[1] has both a payload and a url"},
		{"button unknown key", `{buttons = {{title = "a", paylod = "p"}}}`, KindRuntime, `reply.buttons[1] has unknown key "paylod"`},
		{"single button not in a list", `{buttons = {title = "a", payload = "p"}}`, KindRuntime,
			"reply.buttons must be a list of buttons like"},
		{"buttons not a table", `{buttons = "a"}`, KindRuntime, "reply.buttons must be a list of buttons, not a string"},
		{"button not a table", `{buttons = {"a"}}`, KindRuntime, "reply.buttons[1] must be a table (a button), not a string"},
		{"buttons with a hole", `{buttons = {{title = "a", payload = "p"}, nil, {title = "c", payload = "q"}}}`, KindRuntime,
			"reply.buttons must be a list (keys 1 to n)"},
		{"javascript link", `{buttons = {{title = "a", url = "javascript:alert(1)"}}}`, KindRuntime,
			"reply.buttons[1].url must be an absolute https or http URL"},
		{"relative link", `{buttons = {{title = "a", url = "/menu"}}}`, KindRuntime, "reply.buttons[1].url must be an absolute"},
		{"link with credentials", `{buttons = {{title = "a", url = "https://u:p@example.com/"}}}`, KindRuntime,
			"reply.buttons[1].url must be an absolute"},
		{"card without title", `{cards = {{subtitle = "s"}}}`, KindRuntime, "reply.cards[1].title is required"},
		{"card image scheme", `{cards = {{title = "t", image = "data:image/png;base64,AAAA"}}}`, KindRuntime,
			"reply.cards[1].image must be an absolute https or http URL"},
		{"card button path", `{cards = {{title = "t"}, {title = "u", buttons = {{title = 5}}}}}`, KindRuntime,
			"reply.cards[2].buttons[1] needs a payload"},
		{"card unknown key", `{cards = {{title = "t", text = "x"}}}`, KindRuntime, `reply.cards[1] has unknown key "text"`},
		{"media type", `{media = {{type = "gif", url = "https://example.com/a.gif"}}}`, KindRuntime,
			`reply.media[1].type must be "image", "audio", "video" or "file", not "gif"`},
		{"media without url", `{media = {{type = "image"}}}`, KindRuntime, "reply.media[1].url is required"},
		{"media scheme", `{media = {{type = "image", url = "ftp://example.com/a.png"}}}`, KindRuntime,
			"reply.media[1].url must be an absolute https or http URL"},
		{"channel data not a table", `{channel_data = "x"}`, KindRuntime, "reply.channel_data must be a table of channel kinds"},
		{"channel data list", `{channel_data = {{a = 1}}}`, KindRuntime, "reply.channel_data must be keyed by channel kind"},
		{"channel data kind", `{channel_data = {Slack = {}}}`, KindRuntime, `reply.channel_data has a key "Slack" that is no channel kind`},
		{"options with names", `{options = {"a", x = "b"}}`, KindRuntime, `reply.options must be a list of strings like {"yes", "no"}, not a table with key "x"`},
		{"options as a map", `{options = {yes = true}}`, KindRuntime, `not a table with key "yes"`},
		{"options with a hole", `{options = {"a", nil, "c"}}`, KindRuntime, "reply.options must be a list (keys 1 to n) of strings"},
		{"channel data value", `{channel_data = {slack = "blocks"}}`, KindRuntime, "reply.channel_data.slack must be a table, not a string"},
		{"channel data array", `{channel_data = {slack = {1, 2}}}`, KindRuntime, "reply.channel_data.slack must be a table with named fields"},
		{"channel data function", `{channel_data = {slack = {f = function() end}}}`, KindRuntime, "reply.channel_data.slack.f: cannot store a function"},
		{"too large buttons", `(function() local b = {} for i = 1, 2000 do b[i] = {title = string.rep("t", 20), payload = string.rep("p", 20)} end return {buttons = b} end)()`,
			KindLimit, "reply is larger than 65536 bytes"},
		{"too large channel data", `{text = string.rep("x", 60000), channel_data = {web = {x = string.rep("y", 6000)}}}`,
			KindLimit, "reply is larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runOnce(t, "function handle(e, s) return "+tt.ret+" end", nil)
			_ = wantScriptError(t, err, tt.kind, tt.msg)
		})
	}
}

// TestReplyChannelKinds: with the host's channel kinds given, channel_data
// may name only them (a misspelt one is an error naming it, not data no
// channel reads); every kind, hyphenated ones included, is accepted.
func TestReplyChannelKinds(t *testing.T) {
	rt := New(Config{DefaultTimeout: testTimeout, ChannelKinds: []string{"slack", "dialogflow-cx", "twilio-voice"}})
	defer rt.Close()
	run := func(ret string) (Result, error) {
		return rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, "function handle(e, s) return "+ret+" end"),
			Event: testEvent(), Timeout: testTimeout})
	}
	res, err := run(`{text = "x", channel_data = {["dialogflow-cx"] = {targetPage = "p"}, slack = {a = 1}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Reply.ChannelData["dialogflow-cx"]); got != `{"targetPage":"p"}` {
		t.Errorf("dialogflow-cx channel data %q", got)
	}
	_, err = run(`{text = "x", channel_data = {slakc = {a = 1}}}`)
	_ = wantScriptError(t, err, KindRuntime, `reply.channel_data has unknown channel kind "slakc" (known: dialogflow-cx, slack, twilio-voice)`)

	// Without the list, any well-formed kind passes, hyphenated ones too.
	res, err = runOnce(t, `function handle(e, s) return {channel_data = {["twilio-voice"] = {a = 1}, custom = {b = 2}}} end`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Reply.ChannelData) != 2 {
		t.Errorf("channel data %v", res.Reply.ChannelData)
	}
}

// TestReplyHandlerReturnsEvent: the lazy event table returned as a reply
// is read as the ordinary table it is, and refused for its keys.
func TestReplyHandlerReturnsEvent(t *testing.T) {
	_, err := runOnce(t, "function handle(e, s) return e end", nil)
	se := wantScriptError(t, err, KindRuntime, "reply has unknown key")
	if !strings.Contains(se.Message, `"bot"`) {
		t.Errorf("got %q, want the first unknown key (bot) named", se.Message)
	}
}

func TestEventPostback(t *testing.T) {
	src := `function handle(e, s) return tostring(e.postback) .. "/" .. e.source end`
	res, err := runOnceEvent(t, src, &msg.Event{Bot: "b", User: "u", Postback: "add:margherita"},
		msg.Decision{Intent: "Test", Source: msg.SourcePostback})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply.Text != "add:margherita/postback" {
		t.Errorf("got %q", res.Reply.Text)
	}
	res, err = runOnceEvent(t, src, &msg.Event{Bot: "b", User: "u", Text: "hi"}, msg.Decision{Intent: "Test", Source: msg.SourceClassifier})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply.Text != "nil/classifier" {
		t.Errorf("typed message: got %q, want no postback", res.Reply.Text)
	}
}

func runOnceEvent(t testing.TB, src string, ev *msg.Event, route msg.Decision) (Result, error) {
	t.Helper()
	rt := New(Config{DefaultTimeout: testTimeout})
	defer rt.Close()
	return rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, src), Event: ev, Route: route, Timeout: testTimeout})
}
