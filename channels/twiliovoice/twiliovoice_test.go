package twiliovoice

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"
	"github.com/twilio/twilio-go/twiml"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/msg"
)

const (
	testToken   = "12345"
	testWebhook = "https://example.com/twilio/voice/gather"
	// gatherSignature is the published signature of gather_speech.form
	// requested at testWebhook?turn=1 with the token 12345.
	gatherSignature = "UWk5Q+ZWFRxo1caZQcbeoXoPsE4="
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// request is a Twilio webhook request for turn (0: the call's first), signed
// like Twilio signs it.
func request(t testing.TB, body []byte, turn int, settings channels.Settings) *channels.Request {
	t.Helper()
	if settings == nil {
		settings = channels.Settings{SettingAuthToken: testToken, SettingWebhookURL: testWebhook}
	}
	target := actionURL(settings[SettingWebhookURL], turn, "")
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	h.Set(twilio.SignatureHeader, twilio.Signature(settings[SettingAuthToken], target, form))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/twilio-voice", RawQuery: u.RawQuery},
		Header: h, Body: body, Settings: settings, Now: testNow}
}

func TestGolden(t *testing.T) {
	polly := channels.Settings{SettingAuthToken: testToken, SettingWebhookURL: testWebhook,
		SettingVoice: "Polly.Joanna-Neural", SettingLanguage: "en-US"}
	cases := []struct {
		name     string
		turn     int
		settings channels.Settings
		answer   func(ev *msg.Event) *msg.TurnResult
	}{
		{"incoming_call", 0, nil, golden.Builtin},
		{"gather_speech", 1, polly, func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Hours", msg.Reply{
				Text:     "We are open from 11 to 11. Anything else?",
				SSML:     `<speak>We are open from <say-as interpret-as="cardinal">11</say-as> to 11. <break time="300ms"/> Anything else?</speak>`,
				Reprompt: "Are you still there?", Options: []string{"order a pizza", "no, thanks"}})
		}},
		{"gather_goodbye", 2, nil, func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Goodbye", msg.Reply{Text: "Thanks for calling & goodbye!", EndConversation: true})
		}},
		{"handler_timeout", 3, nil, func(ev *msg.Event) *msg.TurnResult {
			return golden.Failed(ev, "ChooseSize", msg.OutcomeTimeout)
		}},
		{"gather_digits", 4, nil, func(ev *msg.Event) *msg.TurnResult {
			return golden.Handled(ev, "Menu", msg.Reply{Text: "Option two.", Expect: "Menu"})
		}},
		{"status_completed", 5, nil, golden.Builtin},
	}
	a := New(Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := request(t, golden.Read(t, c.name+".form"), c.turn, c.settings)
			in, err := a.Parse(req)
			if err != nil {
				t.Fatal(err)
			}
			ev := in.Events[0]
			resp, err := a.Render(req, []*msg.TurnResult{c.answer(ev)})
			if err != nil {
				t.Fatal(err)
			}
			if err := wellFormed(resp.Body); err != nil {
				t.Fatalf("TwiML is not well-formed XML: %v\n%s", err, resp.Body)
			}
			out := golden.Render(ev, resp)
			out = append(out, "-- raw --\n"...)
			out = append(append(out, ev.Raw...), '\n')
			golden.Check(t, c.name, out)
		})
	}
}

func wellFormed(b []byte) error {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := d.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestPublishedGatherSignature: the published Gather vector verifies as the
// request of turn 1 of a number whose webhook is testWebhook.
func TestPublishedGatherSignature(t *testing.T) {
	a := New(Config{})
	req := request(t, golden.Read(t, "gather_speech.form"), 1, nil)
	if got := req.Header.Get(twilio.SignatureHeader); got != gatherSignature {
		t.Fatalf("test request signature %s, want the published %s", got, gatherSignature)
	}
	if _, err := a.Parse(req); err != nil {
		t.Fatal(err)
	}
}

func TestSignature(t *testing.T) {
	a := New(Config{})
	body := golden.Read(t, "gather_speech.form")
	tests := []struct {
		name   string
		modify func(r *channels.Request)
		ok     bool
	}{
		{"valid", nil, true},
		{"missing", func(r *channels.Request) { r.Header.Del(twilio.SignatureHeader) }, false},
		{"wrong", func(r *channels.Request) { r.Header.Set(twilio.SignatureHeader, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") }, false},
		{"other token", func(r *channels.Request) {
			r.Settings = channels.Settings{SettingAuthToken: "54321", SettingWebhookURL: testWebhook}
		}, false},
		{"replayed at another turn", func(r *channels.Request) { r.URL.RawQuery = "turn=2" }, false},
		{"replayed as the first request", func(r *channels.Request) { r.URL.RawQuery = "" }, false},
		{"body changed", func(r *channels.Request) {
			r.Body = []byte(strings.Replace(string(r.Body), "opening+hours", "closing+hours", 1))
		}, false},
		{"parameter added", func(r *channels.Request) { r.Body = append(r.Body, "&Extra=1"...) }, false},
		{"signed with the default port", func(r *channels.Request) {
			form, _ := url.ParseQuery(string(r.Body))
			r.Header.Set(twilio.SignatureHeader, twilio.Signature(testToken, "https://example.com:443/twilio/voice/gather?turn=1", form))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t, body, 1, nil)
			if tt.modify != nil {
				tt.modify(req)
			}
			_, err := a.Parse(req)
			var ce *channels.Error
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tt.ok && (!errors.As(err, &ce) || ce.Status != http.StatusUnauthorized):
				t.Fatalf("Parse = %v, want a 401", err)
			}
		})
	}
}

// TestSignatureWithFragment: a webhook URL with connection overrides
// (#rc=...) verifies whether Twilio signed the fragment or not.
func TestSignatureWithFragment(t *testing.T) {
	settings := channels.Settings{SettingAuthToken: testToken, SettingWebhookURL: "https://example.com/voice?x=1#rc=2&rt=8000"}
	body := golden.Read(t, "handler_timeout.form")
	form, _ := url.ParseQuery(string(body))
	a := New(Config{})
	for _, signed := range []string{"https://example.com/voice?x=1&turn=3#rc=2&rt=8000", "https://example.com/voice?x=1&turn=3"} {
		req := request(t, body, 3, settings)
		req.Header.Set(twilio.SignatureHeader, twilio.Signature(testToken, signed, form))
		if _, err := a.Parse(req); err != nil {
			t.Errorf("signed over %s: %v", signed, err)
		}
	}
	if got := actionURL(settings[SettingWebhookURL], 4, ""); got != "https://example.com/voice?x=1&turn=4#rc=2&rt=8000" {
		t.Errorf("actionURL = %s", got)
	}
}

// TestSignedRequestsValidateWithTwilioSDK: what the tests sign, Twilio's own
// validator accepts.
func TestSignedRequestsValidateWithTwilioSDK(t *testing.T) {
	v := twclient.NewRequestValidator(testToken)
	for turn, name := range []string{"incoming_call", "gather_speech", "gather_goodbye"} {
		req := request(t, golden.Read(t, name+".form"), turn, nil)
		form, _ := url.ParseQuery(string(req.Body))
		flat := map[string]string{}
		for k := range form {
			flat[k] = form.Get(k)
		}
		if !v.Validate(actionURL(testWebhook, turn, ""), flat, req.Header.Get(twilio.SignatureHeader)) {
			t.Errorf("%s: twilio-go refuses the signature", name)
		}
	}
}

// TestTwiMLMatchesTwilioSDK renders a listening answer and an ending one, and
// compares them with what Twilio's Go library builds for the same verbs.
func TestTwiMLMatchesTwilioSDK(t *testing.T) {
	a := New(Config{})
	settings := channels.Settings{SettingAuthToken: testToken, SettingWebhookURL: testWebhook, SettingLanguage: "en-GB", SettingVoice: "alice"}
	req := request(t, golden.Read(t, "gather_speech.form"), 1, settings)
	in, err := a.Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	ev := in.Events[0]
	listen, _ := a.Render(req, []*msg.TurnResult{golden.Handled(ev, "Hours",
		msg.Reply{Text: "We open at 11.", Reprompt: "Still there?", Options: []string{"menu", "hours"}})})
	want, err := twiml.Voice([]twiml.Element{
		twiml.VoiceGather{Input: "speech", Action: testWebhook + "?turn=2", Method: "POST", SpeechTimeout: "auto", Language: "en-GB", Hints: "menu, hours",
			InnerElements: []twiml.Element{twiml.VoiceSay{Message: "We open at 11.", Voice: "alice", Language: "en-GB"}}},
		twiml.VoiceGather{Input: "speech", Action: testWebhook + "?turn=2", Method: "POST", SpeechTimeout: "auto", Language: "en-GB", Hints: "menu, hours",
			InnerElements: []twiml.Element{twiml.VoiceSay{Message: "Still there?", Voice: "alice", Language: "en-GB"}}},
		twiml.VoiceHangup{},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameXML(t, listen.Body, want)

	end, _ := a.Render(req, []*msg.TurnResult{golden.Handled(ev, "Bye", msg.Reply{Text: "Bye!", EndConversation: true})})
	want, _ = twiml.Voice([]twiml.Element{twiml.VoiceSay{Message: "Bye!", Voice: "alice", Language: "en-GB"}, twiml.VoiceHangup{}})
	sameXML(t, end.Body, want)
}

// sameXML compares two documents as XML: elements, attributes (in any
// order) and text.
func sameXML(t *testing.T, got []byte, want string) {
	t.Helper()
	g, w := xmlTree(t, string(got)), xmlTree(t, want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("TwiML differs from twilio-go's:\n got %s\nwant %s", got, want)
	}
}

func xmlTree(t *testing.T, doc string) []string {
	t.Helper()
	var out []string
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%v in %s", err, doc)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			attrs := map[string]string{}
			for _, at := range tk.Attr {
				attrs[at.Name.Local] = at.Value
			}
			out = append(out, "<"+tk.Name.Local+" "+fmtMap(attrs))
		case xml.EndElement:
			out = append(out, "</"+tk.Name.Local)
		case xml.CharData:
			if s := strings.TrimSpace(string(tk)); s != "" {
				out = append(out, s)
			}
		}
	}
}

func fmtMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + " ")
	}
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestParseRefuses(t *testing.T) {
	a := New(Config{})
	body := golden.Read(t, "gather_speech.form")
	req := request(t, body, 1, nil)
	req.Method = http.MethodGet
	if _, err := a.Parse(req); err == nil {
		t.Error("GET accepted")
	}
	req = request(t, body, 1, nil)
	req.URL.RawQuery = "turn=abc"
	if _, err := a.Parse(req); err == nil {
		t.Error("bad turn accepted")
	}
	noCall := request(t, []byte("From=%2B1&SpeechResult=hi"), 1, nil)
	if _, err := a.Parse(noCall); err == nil {
		t.Error("request without CallSid accepted")
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	good := []channels.Settings{
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "https://bot.example.com/hooks/b/twilio-voice"},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "https://bot.example.com/hooks/b/twilio-voice?x=1#rc=2",
			SettingVoice: "Polly.Joanna", SettingLanguage: "en-GB"},
	}
	for _, s := range good {
		if err := a.ValidateSettings(s); err != nil {
			t.Errorf("ValidateSettings(%v) = %v", s, err)
		}
	}
	bad := []channels.Settings{
		{SettingWebhookURL: "https://bot.example.com/x"},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef"},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "/hooks/b/twilio-voice"},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "https://x.example.com/h?turn=1"},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "https://x.example.com/h", SettingVoice: `a"b`},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "https://x.example.com/h", SettingLanguage: "en US"},
		{SettingAuthToken: "0123456789abcdef0123456789abcdef", SettingWebhookURL: "https://x.example.com/h", "token": "x"},
	}
	for _, s := range bad {
		if err := a.ValidateSettings(s); err == nil {
			t.Errorf("ValidateSettings(%v) accepted", s)
		}
	}
	if got := a.SecretSettings(); !reflect.DeepEqual(got, []string{SettingAuthToken}) {
		t.Errorf("SecretSettings = %v", got)
	}
}

func TestRenderError(t *testing.T) {
	a := New(Config{})
	req := request(t, golden.Read(t, "gather_speech.form"), 1, nil)
	resp := a.RenderError(req, errors.New("store down"))
	if resp.Status != http.StatusOK || !strings.Contains(string(resp.Body), "<Say>Sorry, I can&apos;t answer right now") ||
		!strings.Contains(string(resp.Body), "?turn=2") || wellFormed(resp.Body) != nil {
		t.Errorf("RenderError = %d %s", resp.Status, resp.Body)
	}
	req = request(t, golden.Read(t, "status_completed.form"), 5, nil)
	if resp := a.RenderError(req, errors.New("x")); !strings.HasSuffix(string(resp.Body), "<Response/>") {
		t.Errorf("RenderError on a finished call = %s", resp.Body)
	}
	if a.Budget() != DefaultBudget {
		t.Error("Budget")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"incoming_call", "gather_speech", "status_completed"} {
		f.Add(golden.Read(f, name+".form"), "turn=1")
	}
	a := New(Config{})
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			form = url.Values{}
		}
		u := &url.URL{Path: "/hooks/b/twilio-voice", RawQuery: query}
		turn, terr := turnOf(&channels.Request{URL: u})
		h := http.Header{}
		if terr == nil {
			h.Set(twilio.SignatureHeader, twilio.Signature(testToken, actionURL(testWebhook, turn, ""), form))
		}
		req := &channels.Request{Bot: "b", Method: http.MethodPost, URL: u, Header: h, Body: body, Now: testNow,
			Settings: channels.Settings{SettingAuthToken: testToken, SettingWebhookURL: testWebhook}}
		in, err := a.Parse(req)
		if err != nil {
			if ce := (*channels.Error)(nil); !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *channels.Error", err)
			}
			return
		}
		ev := in.Events[0]
		resp, err := a.Render(req, []*msg.TurnResult{golden.Handled(ev, "x", msg.Reply{Text: ev.Text, Options: []string{ev.Text}})})
		if err != nil || wellFormed(resp.Body) != nil {
			t.Fatalf("Render(%q) = %s, %v", ev.Text, resp.Body, err)
		}
	})
}
