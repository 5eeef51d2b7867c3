package twiliovoice

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// menu is a reply with buttons, a card and media.
var menu = msg.Reply{Text: "What would you like?",
	Buttons: []msg.Button{{Title: "Order a pizza", Payload: "ORDER"}, {Title: "Opening hours", Payload: "HOURS"},
		{Title: "Our website", URL: "https://pizza.example"}},
	Cards: []msg.Card{{Title: "Margherita", Subtitle: "Tomato & mozzarella", Image: "https://pizza.example/m.jpg",
		Buttons: []msg.Button{{Title: "Order", Payload: "ORDER_M"}}}},
	Media:    []msg.Media{{Type: msg.MediaAudio, URL: "https://pizza.example/jingle.mp3"}, {Type: msg.MediaImage, URL: "https://pizza.example/m.jpg"}},
	Reprompt: "Are you still there?"}

// TestRichGolden: buttons become a spoken, numbered prompt inside a Gather
// that takes a key or speech, the choices ride in the action URL, cards are
// read out, audio is played, and what cannot be heard is left out.
func TestRichGolden(t *testing.T) {
	for name, settings := range map[string]channels.Settings{
		"rich_say":   nil,
		"rich_polly": {SettingAuthToken: testToken, SettingWebhookURL: testWebhook, SettingVoice: "Polly.Joanna-Neural"},
	} {
		t.Run(name, func(t *testing.T) {
			req := request(t, golden.Read(t, "gather_speech.form"), 1, settings)
			in, err := New(Config{}).Parse(req)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := New(Config{}).Render(req, []*msg.TurnResult{golden.Handled(in.Events[0], "Menu", menu)})
			if err != nil {
				t.Fatal(err)
			}
			if err := wellFormed(resp.Body); err != nil {
				t.Fatalf("TwiML is not well-formed XML: %v\n%s", err, resp.Body)
			}
			golden.Check(t, name, golden.Render(in.Events[0], resp))
		})
	}
}

var actionAttr = regexp.MustCompile(`action="([^"]+)"`)

// answerTo is the signed request Twilio makes to the action URL of the
// first Gather in twiml, with form.
func answerTo(t *testing.T, twiml, form string) *channels.Request {
	t.Helper()
	m := actionAttr.FindStringSubmatch(twiml)
	if m == nil {
		t.Fatalf("no action in %s", twiml)
	}
	target := strings.ReplaceAll(m[1], "&amp;", "&")
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	values, _ := url.ParseQuery(form)
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	h.Set(twilio.SignatureHeader, twilio.Signature(testToken, target, values))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/twilio-voice", RawQuery: u.RawQuery},
		Header: h, Body: []byte(form), Settings: channels.Settings{SettingAuthToken: testToken, SettingWebhookURL: testWebhook}, Now: testNow}
}

// TestKeyOrWordsArePostbacks: the caller's key (Digits), number word or
// title in the next request comes back as the chosen button's payload; a
// changed choices parameter fails the signature.
func TestKeyOrWordsArePostbacks(t *testing.T) {
	a := New(Config{})
	req := request(t, golden.Read(t, "gather_speech.form"), 1, nil)
	in, err := a.Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Render(req, []*msg.TurnResult{golden.Handled(in.Events[0], "Menu", menu)})
	if err != nil {
		t.Fatal(err)
	}
	twiml := string(resp.Body)
	const call = "AccountSid=AC00000000000000000000000000000000&CallSid=CA33333333333333333333333333333333&CallStatus=in-progress&From=%2B14155551234&To=%2B15005550006"
	for form, want := range map[string]string{
		call + "&Digits=2":                          "HOURS",
		call + "&Digits=3":                          "ORDER_M",
		call + "&SpeechResult=Number+one.":          "ORDER",
		call + "&SpeechResult=Opening+hours":        "HOURS",
		call + "&SpeechResult=I%27d+like+a+calzone": "",
		call + "&Digits=7":                          "",
	} {
		in, err := a.Parse(answerTo(t, twiml, form))
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		if got := in.Events[0].Postback; got != want {
			t.Errorf("%s: postback %q, want %q", form, got, want)
		}
	}
	tampered := answerTo(t, twiml, call+"&Digits=1")
	q := tampered.URL.Query()
	q.Set(choicesParam, encodeChoices(nil)+"W3sidCI6IngiLCJwIjoiWCJ9XQ")
	tampered.URL.RawQuery = q.Encode()
	if _, err := a.Parse(tampered); err == nil {
		t.Error("a changed choices parameter was accepted")
	}
}

// TestManyChoices: more than nine choices take several keys (no numDigits);
// too many to carry are offered by title, without postbacks.
func TestManyChoices(t *testing.T) {
	var bs []msg.Button
	for i := range 12 {
		bs = append(bs, msg.Button{Title: "Pizza number " + string(rune('A'+i)), Payload: strings.Repeat("P", 10) + string(rune('A'+i))})
	}
	o := offer([]msg.Reply{{Buttons: bs}})
	out := render(channels.Settings{SettingWebhookURL: testWebhook}, 2, voiceAnswer("Which one?"), o)
	if o.param == "" || strings.Contains(out, "numDigits") || !strings.Contains(out, "12 for Pizza number L") {
		t.Errorf("twelve choices: %s", out)
	}
	for i := range bs {
		bs[i].Payload = strings.Repeat("x", 300) + bs[i].Payload
	}
	o = offer([]msg.Reply{{Buttons: bs}})
	out = render(channels.Settings{SettingWebhookURL: testWebhook}, 2, voiceAnswer("Which one?"), o)
	if o.param != "" || strings.Contains(out, choicesParam+"=") || !strings.Contains(out, "You can say Pizza number A, or") {
		t.Errorf("too many to carry: %s", out)
	}
}

// voiceAnswer is the answer of a reply that says text.
func voiceAnswer(text string) voice.Answer {
	return voice.NewAnswer(&msg.TurnResult{Replies: []msg.Reply{{Text: text}}})
}
