package app

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/internal/testredis"
)

// Multi-turn voice conversations through the real gateway, engine, Lua
// handlers and Redis, one per platform, with the requests as each platform
// sends them.

const testSkillID = "amzn1.ask.skill.00000000-1111-2222-3333-444444444444"

// slotPizza asks for the size slot and then for confirmation, the way a
// handler uses a platform's own dialog management (Alexa, Lex). It counts the
// turns in its session to show that state carries across them.
const slotPizza = `
function handle(event, session)
  session.turns = (session.turns or 0) + 1
  local size = event.slots.size
  if not size then
    return {text = "Which size would you like?", reprompt = "Small, medium or large?", expect = "size"}
  end
  local req = json.decode(event.raw)
  local status
  if req.request then status = req.request.intent.confirmationStatus else status = req.sessionState.intent.confirmationState end
  if status == "CONFIRMED" or status == "Confirmed" then
    return {text = "Your " .. size .. " pizza is on its way after " .. session.turns .. " turns. Goodbye!", end_conversation = true}
  end
  return {ssml = "<speak>A <emphasis>" .. size .. "</emphasis> pizza. Shall I order it?</speak>",
          text = "A " .. size .. " pizza. Shall I order it?", options = {"yes", "no"}, expect = "OrderPizza"}
end`

// hook posts a webhook as a platform would.
func hook(t *testing.T, target string, header http.Header, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return out
}

// connect connects a channel with settings to an existing bot.
func (ta *testApp) connect(t *testing.T, bot, channel string, settings map[string]string) {
	t.Helper()
	do(t, "PUT", ta.URL+"/v1/bots/"+bot+"/channels/"+channel, adminKey, settings).must(t, http.StatusOK)
}

// path digs into a decoded JSON answer: path(r.Body, "response", "outputSpeech", "ssml").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch key := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[key]
		case int:
			a, _ := v.([]any)
			if key >= len(a) {
				return nil
			}
			v = a[key]
		}
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

// alexaRequest is an Alexa request envelope of the current time.
func alexaRequest(session string, isNew bool, request string) []byte {
	return []byte(fmt.Sprintf(`{"version":"1.0","session":{"new":%t,"sessionId":%q,"application":{"applicationId":%q},"attributes":{},"user":{"userId":"amzn1.ask.account.E2E"}},"context":{"System":{"application":{"applicationId":%q},"user":{"userId":"amzn1.ask.account.E2E"},"device":{"deviceId":"amzn1.ask.device.E2E","supportedInterfaces":{}},"apiEndpoint":"https://api.amazonalexa.com"}},"request":%s}`,
		isNew, session, testSkillID, testSkillID, request))
}

var alexaID int

func alexaIntent(dialogState, intent string) string {
	alexaID++
	state := ""
	if dialogState != "" {
		state = fmt.Sprintf(`"dialogState":%q,`, dialogState)
	}
	return fmt.Sprintf(`{"type":"IntentRequest","requestId":"amzn1.echo-api.request.e2e-%d","timestamp":%q,"locale":"en-US",%s"intent":%s}`,
		alexaID, time.Now().UTC().Format(time.RFC3339), state, intent)
}

func alexaTyped(typ, extra string) string {
	alexaID++
	return fmt.Sprintf(`{"type":%q,"requestId":"amzn1.echo-api.request.e2e-%d","timestamp":%q,"locale":"en-US"%s}`,
		typ, alexaID, time.Now().UTC().Format(time.RFC3339), extra)
}

func TestVoiceAlexaConversation(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "pizza", nil, map[string]string{
		"welcome":    `function handle(e, s) s.turns = 1 return {text = "Welcome to Pizza Bot. What would you like?", reprompt = "You can order a pizza."} end`,
		"OrderPizza": slotPizza,
	})
	// Signature checks need Amazon's certificate; the verification suite of
	// the alexa package covers them with a local CA.
	ta.connect(t, "pizza", "alexa", map[string]string{"skill_id": testSkillID, "verify_signature": "false"})
	url := ta.URL + "/hooks/pizza/alexa"
	json := http.Header{"Content-Type": {"application/json"}}
	const session = "amzn1.echo-api.session.e2e-1"

	r := hook(t, url, json, alexaRequest(session, true, alexaTyped("LaunchRequest", ""))).must(t, http.StatusOK)
	if got := str(path(r.Body, "response", "outputSpeech", "ssml")); got != "<speak>Welcome to Pizza Bot. What would you like?</speak>" ||
		path(r.Body, "response", "shouldEndSession") != false || str(path(r.Body, "response", "reprompt", "outputSpeech", "ssml")) == "" {
		t.Fatalf("launch: %s", r.Raw)
	}

	noSize := `{"name":"OrderPizza","confirmationStatus":"NONE","slots":{"size":{"name":"size","confirmationStatus":"NONE"}}}`
	r = hook(t, url, json, alexaRequest(session, false, alexaIntent("STARTED", noSize))).must(t, http.StatusOK)
	if path(r.Body, "response", "directives", 0, "type") != "Dialog.ElicitSlot" || path(r.Body, "response", "directives", 0, "slotToElicit") != "size" ||
		str(path(r.Body, "response", "outputSpeech", "ssml")) != "<speak>Which size would you like?</speak>" {
		t.Fatalf("elicit slot: %s", r.Raw)
	}

	withSize := func(status string) string {
		return `{"name":"OrderPizza","confirmationStatus":"` + status + `","slots":{"size":{"name":"size","value":"big","confirmationStatus":"NONE","resolutions":{"resolutionsPerAuthority":[{"authority":"amzn1.er-authority.echo-sdk.x.Size","status":{"code":"ER_SUCCESS_MATCH"},"values":[{"value":{"name":"large","id":"L"}}]}]}}}}`
	}
	r = hook(t, url, json, alexaRequest(session, false, alexaIntent("IN_PROGRESS", withSize("NONE")))).must(t, http.StatusOK)
	if path(r.Body, "response", "directives", 0, "type") != "Dialog.ConfirmIntent" ||
		str(path(r.Body, "response", "outputSpeech", "ssml")) != "<speak>A <emphasis>large</emphasis> pizza. Shall I order it?</speak>" ||
		str(path(r.Body, "response", "card", "content")) != "A large pizza. Shall I order it?" {
		t.Fatalf("confirm intent: %s", r.Raw)
	}

	r = hook(t, url, json, alexaRequest(session, false, alexaIntent("IN_PROGRESS", withSize("CONFIRMED")))).must(t, http.StatusOK)
	if got := str(path(r.Body, "response", "outputSpeech", "ssml")); got != "<speak>Your large pizza is on its way after 4 turns. Goodbye!</speak>" ||
		path(r.Body, "response", "shouldEndSession") != true {
		t.Fatalf("fulfilled: %s", r.Raw)
	}
	conv := do(t, "GET", ta.URL+"/v1/bots/pizza/conversations/alexa/"+session, adminKey, nil).must(t, http.StatusOK)
	if conv.Body["active"] != false {
		t.Errorf("the conversation is still active after it ended: %s", conv.Raw)
	}

	r = hook(t, url, json, alexaRequest(session, false, alexaTyped("SessionEndedRequest", `,"reason":"USER_INITIATED"`))).must(t, http.StatusOK)
	if strings.TrimSpace(r.Raw) != `{"version":"1.0","response":{}}` {
		t.Fatalf("session ended: %s", r.Raw)
	}
}

// TestVoiceStopLeavesAQuestion: "stop" in the middle of a question the bot
// asked ends the conversation, even though the bot has no stop handler and
// expects an answer.
func TestVoiceStopLeavesAQuestion(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "pizza", nil, map[string]string{
		"OrderPizza": `function handle() return {text = "Which size?", expect = "ChooseSize"} end`,
		"ChooseSize": `function handle(e) return "Size " .. e.text end`,
		"fallback":   `function handle() return "fallback" end`,
	})
	ta.connect(t, "pizza", "alexa", map[string]string{"skill_id": testSkillID, "verify_signature": "false"})
	url := ta.URL + "/hooks/pizza/alexa"
	const session = "amzn1.echo-api.session.e2e-stop"
	hook(t, url, nil, alexaRequest(session, true, alexaIntent("", `{"name":"OrderPizza","confirmationStatus":"NONE"}`))).must(t, http.StatusOK)
	r := hook(t, url, nil, alexaRequest(session, false, alexaIntent("", `{"name":"AMAZON.StopIntent","confirmationStatus":"NONE"}`))).must(t, http.StatusOK)
	if str(path(r.Body, "response", "outputSpeech", "ssml")) != "<speak>Goodbye.</speak>" || path(r.Body, "response", "shouldEndSession") != true {
		t.Fatalf("stop during a question: %s", r.Raw)
	}
}

// twilioCall is one phone call to a bot: each request is signed for the URL
// Twilio would call, and the next URL is read from the TwiML answer.
type twilioCall struct {
	t     *testing.T
	token string
	next  string
	form  url.Values
}

func (c *twilioCall) say(speech string) (response, twiml) {
	c.t.Helper()
	form := url.Values{}
	for k, v := range c.form {
		form[k] = v
	}
	if speech != "" {
		form.Set("SpeechResult", speech)
		form.Set("Confidence", "0.93")
		form.Set("CallStatus", "in-progress")
	}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	h.Set(twilio.SignatureHeader, twilio.Signature(c.token, c.next, form))
	r := hook(c.t, c.next, h, []byte(form.Encode())).must(c.t, http.StatusOK)
	var doc twiml
	if err := xml.Unmarshal([]byte(r.Raw), &doc); err != nil {
		c.t.Fatalf("answer is not TwiML: %v\n%s", err, r.Raw)
	}
	if len(doc.Gathers) > 0 {
		c.next = doc.Gathers[0].Action
	}
	return r, doc
}

type twiml struct {
	Gathers []struct {
		Action   string `xml:"action,attr"`
		Input    string `xml:"input,attr"`
		Language string `xml:"language,attr"`
		Hints    string `xml:"hints,attr"`
		Say      struct {
			Voice string `xml:"voice,attr"`
			Text  string `xml:",innerxml"`
		} `xml:"Say"`
	} `xml:"Gather"`
	Says   []string  `xml:"Say"`
	Hangup *struct{} `xml:"Hangup"`
}

func TestVoiceTwilioConversation(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "phone", nil, map[string]string{
		"OrderPizza": `function handle(e, s) s.ordering = true
		  return {text = "What size would you like?", reprompt = "Small, medium or large?", options = {"small", "medium", "large"}, expect = "ChooseSize"} end`,
		"ChooseSize": `function handle(e, s)
		  return {text = "A " .. e.text:lower() .. " pizza & a smile, coming up. Goodbye!", end_conversation = s.ordering == true} end`,
	})
	do(t, "PUT", ta.URL+"/v1/bots/phone/nlu", adminKey, map[string]any{
		"intents": map[string][]string{"OrderPizza": {"I want a pizza", "order a pizza"}},
	}).must(t, http.StatusOK)
	const token = "0123456789abcdef0123456789abcdef"
	webhook := ta.URL + "/hooks/phone/twilio-voice"
	ta.connect(t, "phone", "twilio-voice", map[string]string{"auth_token": token, "webhook_url": webhook,
		"voice": "Polly.Amy", "language": "en-GB"})

	call := &twilioCall{t: t, token: token, next: webhook, form: url.Values{
		"CallSid": {"CA0000000000000000000000000000e2e1"}, "AccountSid": {"AC00000000000000000000000000000000"},
		"From": {"+441234567890"}, "To": {"+15005550006"}, "CallStatus": {"ringing"}, "Direction": {"inbound"}}}

	_, doc := call.say("")
	if len(doc.Gathers) != 1 || doc.Gathers[0].Input != "speech" || doc.Gathers[0].Say.Text != "Hello! How can I help you?" ||
		doc.Gathers[0].Say.Voice != "Polly.Amy" || doc.Gathers[0].Language != "en-GB" || !strings.HasSuffix(call.next, "?turn=1") {
		t.Fatalf("incoming call: %+v", doc)
	}
	_, doc = call.say("I want a pizza")
	if len(doc.Gathers) != 2 || doc.Gathers[0].Say.Text != "What size would you like?" || doc.Gathers[1].Say.Text != "Small, medium or large?" ||
		doc.Gathers[0].Hints != "small, medium, large" || !strings.HasSuffix(call.next, "?turn=2") || doc.Hangup == nil {
		t.Fatalf("order: %+v", doc)
	}
	r, doc := call.say("Large")
	if len(doc.Gathers) != 0 || len(doc.Says) != 1 || doc.Hangup == nil ||
		!strings.Contains(r.Raw, "<Say voice=\"Polly.Amy\" language=\"en-GB\">A large pizza &amp; a smile, coming up. Goodbye!</Say><Hangup/>") {
		t.Fatalf("hang up: %s", r.Raw)
	}

	// A request Twilio did not sign is refused.
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, twilio.SignatureHeader: {"bm9wZQ=="}}
	hook(t, webhook, h, []byte(call.form.Encode())).must(t, http.StatusUnauthorized)
}

func basicAuth(user, pass string) http.Header {
	return http.Header{"Content-Type": {"application/json"},
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

func TestVoiceDialogflowConversation(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "df", nil, map[string]string{
		"welcome":     `function handle(e, s) s.caller = e.user return "Hi! Pizza or pasta?" end`,
		"Order_Pizza": `function handle(e, s) s.size = e.slots.size return {text = "A " .. e.slots.size .. " pizza. Thin or thick crust?", expect = "ChooseCrust"} end`,
		"ChooseCrust": `function handle(e, s) return {text = "A " .. s.size .. " " .. e.text .. " pizza for " .. s.caller .. ". Bye!", end_conversation = true} end`,
	})
	ta.connect(t, "df", "dialogflow", map[string]string{"username": "dialogflow", "password": "fulfillment-secret"})
	url := ta.URL + "/hooks/df/dialogflow"
	auth := basicAuth("dialogflow", "fulfillment-secret")
	req := func(id, text, action, intent string, params string) []byte {
		return []byte(`{"responseId":"` + id + `","session":"projects/pizza/agent/sessions/call-e2e","queryResult":{"queryText":"` + text +
			`","action":"` + action + `","parameters":` + params + `,"intent":{"name":"projects/pizza/agent/intents/x","displayName":"` + intent +
			`"},"intentDetectionConfidence":0.9,"languageCode":"en"},"originalDetectIntentRequest":{"source":"GOOGLE_TELEPHONY","payload":{"telephony":{"caller_id":"+14155550100"}}}}`)
	}
	r := hook(t, url, auth, req("r1", "hello", "input.welcome", "Default Welcome Intent", "{}")).must(t, http.StatusOK)
	if r.Body["fulfillmentText"] != "Hi! Pizza or pasta?" {
		t.Fatalf("welcome: %s", r.Raw)
	}
	r = hook(t, url, auth, req("r2", "a large pizza", "", "Order Pizza", `{"size":"large","crust":""}`)).must(t, http.StatusOK)
	if r.Body["fulfillmentText"] != "A large pizza. Thin or thick crust?" {
		t.Fatalf("order: %s", r.Raw)
	}
	r = hook(t, url, auth, req("r3", "thin", "input.unknown", "Default Fallback Intent", "{}")).must(t, http.StatusOK)
	if r.Body["fulfillmentText"] != "A large thin pizza for +14155550100. Bye!" {
		t.Fatalf("crust: %s", r.Raw)
	}
	// A retry of the last request is answered the same, without running it again.
	r = hook(t, url, auth, req("r3", "thin", "input.unknown", "Default Fallback Intent", "{}")).must(t, http.StatusOK)
	if r.Body["fulfillmentText"] != "A large thin pizza for +14155550100. Bye!" {
		t.Fatalf("retry: %s", r.Raw)
	}
	hook(t, url, basicAuth("dialogflow", "wrong"), req("r4", "x", "", "Order Pizza", "{}")).must(t, http.StatusUnauthorized)
}

func TestVoiceDialogflowCXConversation(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "cx", nil, map[string]string{
		"order-status":  `function handle(e, s) s.order = e.slots.order_id return {text = "Order " .. e.slots.order_id .. " ships tomorrow. Anything else?", expect = "anything-else"} end`,
		"anything-else": `function handle(e, s) return {ssml = "<speak>Goodbye <break time='200ms'/> and thanks.</speak>", text = "Goodbye and thanks.", end_conversation = true} end`,
	})
	ta.connect(t, "cx", "dialogflow-cx", map[string]string{"header_name": "X-Parley-Secret", "header_value": "cx-webhook-secret"})
	url := ta.URL + "/hooks/cx/dialogflow-cx"
	h := http.Header{"Content-Type": {"application/json"}, "X-Parley-Secret": {"cx-webhook-secret"}}
	req := func(id, tag, text, params string) []byte {
		return []byte(`{"detectIntentResponseId":"` + id + `","languageCode":"en","fulfillmentInfo":{"tag":"` + tag +
			`"},"pageInfo":{"currentPage":"projects/p/locations/global/agents/a/flows/f1/pages/START_PAGE"},"sessionInfo":{"session":"projects/p/locations/global/agents/a/sessions/e2e","parameters":` +
			params + `},"text":"` + text + `"}`)
	}
	r := hook(t, url, h, req("d1", "order-status", "where is order 12345", `{"order_id":"12345"}`)).must(t, http.StatusOK)
	if str(path(r.Body, "fulfillmentResponse", "messages", 0, "text", "text", 0)) != "Order 12345 ships tomorrow. Anything else?" ||
		path(r.Body, "sessionInfo", "parameters", "parley_expect") != "anything-else" {
		t.Fatalf("order status: %s", r.Raw)
	}
	// The flow's fallback route calls the webhook without a tag of its own
	// handler; the expected intent answers.
	r = hook(t, url, h, req("d2", "no-match", "no thanks", `{"order_id":"12345","parley_expect":"anything-else"}`)).must(t, http.StatusOK)
	if str(path(r.Body, "fulfillmentResponse", "messages", 1, "outputAudioText", "ssml")) != "<speak>Goodbye <break time='200ms'/> and thanks.</speak>" ||
		str(r.Body["targetPage"]) != "projects/p/locations/global/agents/a/flows/f1/pages/END_SESSION" {
		t.Fatalf("goodbye: %s", r.Raw)
	}
}

func lexEvent(source, transcript, intent, slots, confirmation, requestID string) []byte {
	return []byte(`{"messageVersion":"1.0","invocationSource":"` + source + `","inputMode":"Speech","responseContentType":"audio/pcm","sessionId":"lex-e2e","inputTranscript":"` + transcript +
		`","bot":{"id":"B","name":"PizzaBot","aliasId":"A","aliasName":"live","localeId":"en_US","version":"1"},"interpretations":[{"intent":{"name":"` + intent +
		`","slots":` + slots + `,"state":"InProgress","confirmationState":"` + confirmation + `"},"nluConfidence":0.88}],"sessionState":{"sessionAttributes":{"store":"downtown"},"intent":{"name":"` +
		intent + `","slots":` + slots + `,"state":"InProgress","confirmationState":"` + confirmation + `"},"originatingRequestId":"` + requestID + `"}}`)
}

func TestVoiceLexConversation(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "lexbot", nil, map[string]string{"OrderPizza": slotPizza})
	ta.connect(t, "lexbot", "lex", map[string]string{"username": "forwarder", "password": "lex-forward-secret"})
	url := ta.URL + "/hooks/lexbot/lex"
	auth := basicAuth("forwarder", "lex-forward-secret")
	noSize := `{"size":null}`
	large := `{"size":{"shape":"Scalar","value":{"originalValue":"big","interpretedValue":"large","resolvedValues":["large"]}}}`

	r := hook(t, url, auth, lexEvent("DialogCodeHook", "I want a pizza", "OrderPizza", noSize, "None", "q1")).must(t, http.StatusOK)
	if path(r.Body, "sessionState", "dialogAction", "type") != "ElicitSlot" || path(r.Body, "sessionState", "dialogAction", "slotToElicit") != "size" ||
		str(path(r.Body, "messages", 0, "content")) != "Which size would you like?" || path(r.Body, "sessionState", "sessionAttributes", "store") != "downtown" {
		t.Fatalf("elicit slot: %s", r.Raw)
	}
	r = hook(t, url, auth, lexEvent("DialogCodeHook", "a big one", "OrderPizza", large, "None", "q2")).must(t, http.StatusOK)
	if path(r.Body, "sessionState", "dialogAction", "type") != "ConfirmIntent" || path(r.Body, "messages", 0, "contentType") != "SSML" {
		t.Fatalf("confirm intent: %s", r.Raw)
	}
	r = hook(t, url, auth, lexEvent("FulfillmentCodeHook", "yes", "OrderPizza", large, "Confirmed", "q3")).must(t, http.StatusOK)
	if path(r.Body, "sessionState", "dialogAction", "type") != "Close" || path(r.Body, "sessionState", "intent", "state") != "Fulfilled" ||
		str(path(r.Body, "messages", 0, "content")) != "Your large pizza is on its way after 3 turns. Goodbye!" {
		t.Fatalf("fulfil: %s", r.Raw)
	}
}

// TestVoiceFailuresAreSpoken: a handler that fails, times out or returns
// broken SSML is answered in the platform's format with HTTP 200.
func TestVoiceFailuresAreSpoken(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "fragile", map[string]any{"timeout_ms": 200, "error_reply": "Sorry, the kitchen is on fire."}, map[string]string{
		"Broken":  `function handle() error("boom") end`,
		"Slow":    `function handle() while true do end end`,
		"BadSSML": `function handle() return {text = "Plain words.", ssml = "<speak><blink>words</speak>"} end`,
	})
	ta.connect(t, "fragile", "alexa", map[string]string{"skill_id": testSkillID, "verify_signature": "false"})
	ta.connect(t, "fragile", "lex", map[string]string{"header_name": "X-Lex-Secret", "header_value": "lex-header-secret"})
	alexa := ta.URL + "/hooks/fragile/alexa"
	for i, intent := range []string{"Broken", "Slow"} {
		r := hook(t, alexa, nil, alexaRequest(fmt.Sprintf("amzn1.echo-api.session.fail-%d", i), true,
			alexaIntent("", `{"name":"`+intent+`","confirmationStatus":"NONE"}`))).must(t, http.StatusOK)
		if str(path(r.Body, "response", "outputSpeech", "ssml")) != "<speak>Sorry, the kitchen is on fire.</speak>" {
			t.Errorf("%s on alexa: %s", intent, r.Raw)
		}
	}
	r := hook(t, alexa, nil, alexaRequest("amzn1.echo-api.session.fail-ssml", true,
		alexaIntent("", `{"name":"BadSSML","confirmationStatus":"NONE"}`))).must(t, http.StatusOK)
	if str(path(r.Body, "response", "outputSpeech", "ssml")) != "<speak>Plain words.</speak>" {
		t.Errorf("invalid SSML reached the platform: %s", r.Raw)
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Lex-Secret": {"lex-header-secret"}}
	r = hook(t, ta.URL+"/hooks/fragile/lex", h, lexEvent("FulfillmentCodeHook", "go", "Slow", "{}", "None", "z1")).must(t, http.StatusOK)
	if path(r.Body, "sessionState", "dialogAction", "type") != "Close" || path(r.Body, "sessionState", "intent", "state") != "Failed" ||
		str(path(r.Body, "messages", 0, "content")) != "Sorry, the kitchen is on fire." {
		t.Errorf("timeout on lex: %s", r.Raw)
	}
}

// TestVoiceHandlerClippedToBudget: a bot allowing its handler 30 s on a
// platform that waits 5 s (Dialogflow ES) still answers in time, with the
// bot's error reply.
func TestVoiceHandlerClippedToBudget(t *testing.T) {
	ta := startRedisApp(t)
	ta.setupBot(t, "slow", map[string]any{"timeout_ms": 30000}, map[string]string{
		"Slow": `function handle() while true do end end`,
	})
	ta.connect(t, "slow", "dialogflow", map[string]string{"header_name": "X-Secret", "header_value": "dialogflow-secret"})
	h := http.Header{"Content-Type": {"application/json"}, "X-Secret": {"dialogflow-secret"}}
	body := []byte(`{"responseId":"s1","session":"projects/p/agent/sessions/slow","queryResult":{"queryText":"go","intent":{"displayName":"Slow"},"languageCode":"en"}}`)
	start := time.Now()
	r := hook(t, ta.URL+"/hooks/slow/dialogflow", h, body).must(t, http.StatusOK)
	took := time.Since(start)
	if took >= 5*time.Second || took < 3*time.Second {
		t.Errorf("answered after %v; want within Dialogflow's 5 s, after most of the budget", took)
	}
	if r.Body["fulfillmentText"] != "Sorry, something went wrong. Please try again." {
		t.Errorf("clipped turn: %s", r.Raw)
	}
}

// TestVoiceApologyWhenStoreIsDown: when the turn cannot run at all, the
// caller hears an apology instead of an HTTP error.
func TestVoiceApologyWhenStoreIsDown(t *testing.T) {
	srv := testredis.StartServer(t)
	ta := startApp(t, appOptions{redisURL: srv.URL(), prefix: "parley:"})
	ta.setupBot(t, "b", nil, map[string]string{"Hi": `function handle() return "hi" end`})
	ta.connect(t, "b", "alexa", map[string]string{"skill_id": testSkillID, "verify_signature": "false"})
	url := ta.URL + "/hooks/b/alexa"
	hook(t, url, nil, alexaRequest("amzn1.echo-api.session.down", true, alexaIntent("", `{"name":"Hi"}`))).must(t, http.StatusOK)
	srv.Stop()
	r := hook(t, url, nil, alexaRequest("amzn1.echo-api.session.down", false, alexaIntent("", `{"name":"Hi"}`))).must(t, http.StatusOK)
	if !strings.Contains(str(path(r.Body, "response", "outputSpeech", "ssml")), "try again") {
		t.Errorf("store down: %s", r.Raw)
	}
	srv.Start()
}

// TestVoiceChannelsArePureProtocol: the voice adapters know no Redis, Lua,
// gin or gateway, like every channel. Of the internal packages they may use
// only the XML escaper, a standard-library leaf.
func TestVoiceChannelsArePureProtocol(t *testing.T) {
	const mod = "github.com/parleyhq/parley/"
	bad := []string{"github.com/gin-gonic/", "github.com/redis/", "github.com/yuin/", mod + "gateway", mod + "sessions",
		mod + "engine", mod + "sandbox", mod + "bots", mod + "internal/"}
	for _, pkg := range []string{"channels/voice", "channels/twilio", "channels/alexa", "channels/twiliovoice",
		"channels/dialogflow", "channels/dialogflowcx", "channels/lex"} {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(dep, b) && dep != mod+"internal/xmlx" {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
