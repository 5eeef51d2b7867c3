package twiliovoice

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "twilio-voice"

// Settings.
const (
	SettingAuthToken  = "auth_token"
	SettingWebhookURL = "webhook_url"
	SettingVoice      = "voice"
	SettingLanguage   = "language"
)

// DefaultLanguage is the speech recognition and synthesis language when the
// channel does not set one.
const DefaultLanguage = "en-US"

// DefaultBudget is how long a turn may take: Twilio waits 15 seconds for the
// webhook's answer, less a second for the network.
const DefaultBudget = 14 * time.Second

// turnParam is the query parameter that counts the turns of a call.
const turnParam = "turn"

// choicesParam is the query parameter of a Gather's action URL that carries
// the choices it offered (base64url JSON), so that the caller's digit or
// words come back as the button's payload. Twilio signs the URL, so it
// comes back unchanged or not at all.
const choicesParam = "choices"

// maxChoicesParam bounds the encoded choices carried in an action URL;
// more are offered by title only, without numbers or postbacks.
const maxChoicesParam = 2000

// Limits on request fields.
const (
	maxSID    = 64
	maxText   = 4096
	maxTurn   = 1_000_000
	maxHints  = 1000
	maxVoice  = 64
	maxLocale = 35
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Budget bounds a whole turn; zero means DefaultBudget.
	Budget time.Duration
}

// Adapter implements [channels.Adapter], [channels.Configurer],
// [channels.Budgeter] and [channels.ErrorRenderer] for Twilio Voice.
type Adapter struct {
	channels.Deadline
}

// New returns the Twilio Voice adapter.
func New(cfg Config) *Adapter {
	return &Adapter{Deadline: channels.NewDeadline(cfg.Budget, DefaultBudget)}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{SettingAuthToken} }

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingAuthToken, SettingWebhookURL, SettingVoice, SettingLanguage); err != nil {
		return err
	}
	if len(s[SettingAuthToken]) < 16 {
		return channels.BadRequest("the twilio-voice channel needs the account's \"auth_token\"")
	}
	u, err := url.Parse(s[SettingWebhookURL])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return channels.BadRequest("the twilio-voice channel needs \"webhook_url\": the absolute URL configured for the number in Twilio")
	}
	for _, p := range []string{turnParam, choicesParam} {
		if u.Query().Has(p) {
			return channels.BadRequest("\"webhook_url\" must not have a %q query parameter; Parley adds it", p)
		}
	}
	if v := s[SettingVoice]; len(v) > maxVoice || strings.ContainsAny(v, "<>&\"' ") {
		return channels.BadRequest("\"voice\" is a Twilio voice name such as \"Polly.Joanna\"")
	}
	if l := s[SettingLanguage]; l != "" && !validLocale(l) {
		return channels.BadRequest("\"language\" is a language tag such as \"en-US\"")
	}
	return nil
}

func validLocale(l string) bool {
	if len(l) < 2 || len(l) > maxLocale {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// ended are the call statuses of a call that is over (status callbacks).
var ended = map[string]bool{"completed": true, "busy": true, "failed": true, "no-answer": true, "canceled": true}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the twilio-voice channel takes POST; set the number's webhook to HTTP POST"}
	}
	// Until the signature is checked, every refusal is a 401: the signature
	// covers the turn counter and the form.
	turn, err := turnOf(req)
	if err != nil {
		return nil, channels.Unauthorized("the request cannot be verified: %v", err)
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return nil, channels.Unauthorized("body is not form-encoded, so its signature cannot be checked: %v", err)
	}
	carried := choicesOf(req)
	if !verified(req, form, turn, carried) {
		return nil, channels.Unauthorized("missing or wrong X-Twilio-Signature for the twilio-voice channel")
	}
	call := form.Get("CallSid")
	if call == "" || len(call) > maxSID {
		return nil, channels.BadRequest("CallSid is missing")
	}
	user := firstOf(form, "From", "Caller")
	if user == "" {
		user = call
	}
	ev := &msg.Event{
		ID:           call + ":" + strconv.Itoa(turn),
		Bot:          req.Bot,
		Channel:      Name,
		User:         user,
		Conversation: call,
		Locale:       firstOf(form, "Language"),
		Voice:        true,
		Timestamp:    req.Now,
	}
	if ev.Locale == "" || !validLocale(ev.Locale) {
		ev.Locale = language(req.Settings)
	}
	switch speech := form.Get("SpeechResult"); {
	case ended[form.Get("CallStatus")]:
		ev.ID, ev.Intent = call+":ended", intents.SessionEndedIntent
	case speech != "":
		ev.Text = speech
		if c, err := strconv.ParseFloat(form.Get("Confidence"), 64); err == nil && c >= 0 && c <= 1 {
			ev.Confidence = c
		}
	case form.Get("Digits") != "":
		ev.Text = form.Get("Digits")
	case turn == 0:
		ev.Intent = intents.WelcomeIntent
	}
	if payload, ok := rich.Resolve(ev.Text, decodeChoices(carried)); ok {
		ev.Postback = payload
	}
	channels.NumberedAnswer(ev) // keys without carried choices: the session's resolve them
	if len(ev.Text) > maxText || !utf8.ValidString(ev.Text) {
		return nil, channels.BadRequest("SpeechResult is longer than %d bytes or not UTF-8", maxText)
	}
	ev.Raw = rawJSON(form)
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

// turnOf reads the turn counter of a Gather action URL; 0 for the call's
// first request.
func turnOf(req *channels.Request) (int, error) {
	if req.URL == nil {
		return 0, nil
	}
	q := req.URL.Query()
	if !q.Has(turnParam) {
		return 0, nil
	}
	n, err := strconv.Atoi(q.Get(turnParam))
	if err != nil || n < 1 || n > maxTurn {
		return 0, channels.BadRequest("bad %q parameter", turnParam)
	}
	return n, nil
}

// verified checks the signature over the URL Twilio requested: the
// configured webhook URL, with the turn counter (and the choices) Parley
// added to it. A connection-override fragment (#rc=...) may or may not be
// part of what Twilio signs, so both are tried.
func verified(req *channels.Request, form url.Values, turn int, choices string) bool {
	sig := req.Header.Get(twilio.SignatureHeader)
	token := req.Settings[SettingAuthToken]
	u := actionURL(req.Settings[SettingWebhookURL], turn, choices)
	if twilio.ValidSignature(token, u, form, sig) {
		return true
	}
	if base, _, ok := strings.Cut(u, "#"); ok {
		return twilio.ValidSignature(token, base, form, sig)
	}
	return false
}

// actionURL is the webhook URL of a turn: the configured URL for the first,
// with ?turn=N (and &choices=..., when the Gather offered choices) before
// any fragment for the others.
func actionURL(webhook string, turn int, choices string) string {
	if turn == 0 {
		return webhook
	}
	base, frag, hasFrag := strings.Cut(webhook, "#")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	u := base + sep + turnParam + "=" + strconv.Itoa(turn)
	if choices != "" {
		u += "&" + choicesParam + "=" + choices
	}
	if hasFrag {
		u += "#" + frag
	}
	return u
}

func firstOf(form url.Values, names ...string) string {
	for _, n := range names {
		if v := form.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func language(s channels.Settings) string {
	if l := s[SettingLanguage]; l != "" {
		return l
	}
	return DefaultLanguage
}

// rawJSON is the form as a JSON object (the first value of each name), so
// that handlers can json.decode(event.raw) as on every other channel.
func rawJSON(form url.Values) json.RawMessage {
	flat := make(map[string]string, len(form))
	for k, v := range form {
		if len(v) > 0 && utf8.ValidString(k) && utf8.ValidString(v[0]) {
			flat[k] = v[0]
		}
	}
	raw, _ := json.Marshal(flat)
	return raw
}

// Render implements [channels.Adapter].
func (a *Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	r := results[0]
	if r.Event != nil && r.Event.Intent == intents.SessionEndedIntent {
		return twimlResponse(""), nil // the call is over; nothing is said
	}
	turn, _ := turnOf(req)
	return twimlResponse(render(req.Settings, turn+1, voice.NewAnswer(r), offer(r.Replies))), nil
}

// RenderError implements [channels.ErrorRenderer]: the caller hears an
// apology and may say it again.
func (a *Adapter) RenderError(req *channels.Request, err error) *channels.Response {
	if form, perr := url.ParseQuery(string(req.Body)); perr == nil && ended[form.Get("CallStatus")] {
		return twimlResponse("")
	}
	turn, _ := turnOf(req)
	return twimlResponse(render(req.Settings, turn+1, voice.Apology(), offering{}))
}

// render is the TwiML verbs of an answer, with what it offers.
func render(s channels.Settings, next int, ans voice.Answer, o offering) string {
	var b strings.Builder
	say := func(sp voice.Speech) {
		b.WriteString("<Say")
		attr(&b, "voice", s[SettingVoice])
		attr(&b, "language", s[SettingLanguage])
		b.WriteString(">")
		b.WriteString(sayContent(s[SettingVoice], sp))
		b.WriteString("</Say>")
	}
	if ans.End {
		if !ans.Speech.IsZero() {
			say(ans.Speech)
		}
		o.play(&b)
		b.WriteString("<Hangup/>")
		return b.String()
	}
	first := true
	gather := func(sp voice.Speech) {
		b.WriteString(`<Gather input="`)
		if len(o.choices) > 0 {
			b.WriteString(`dtmf speech"`)
			if o.param != "" && len(o.choices) <= 9 {
				b.WriteString(` numDigits="1"`) // a key answers at once
			}
		} else {
			b.WriteString(`speech"`)
		}
		attr(&b, "action", actionURL(s[SettingWebhookURL], next, o.param))
		b.WriteString(` method="POST" speechTimeout="auto"`)
		attr(&b, "language", language(s))
		attr(&b, "hints", hints(append(o.titles(), ans.Options...)))
		b.WriteString(">")
		if !sp.IsZero() {
			say(sp)
		}
		if first {
			for _, c := range o.cards {
				say(c)
			}
			o.play(&b)
			first = false
		}
		if !o.prompt.IsZero() {
			say(o.prompt)
		}
		b.WriteString("</Gather>")
	}
	gather(ans.Speech)
	if !ans.Reprompt.IsZero() {
		gather(ans.Reprompt)
	}
	b.WriteString("<Hangup/>")
	return b.String()
}

// sayContent is what goes inside <Say>: the SSML for voices that speak it
// (Amazon Polly and Google), else the plain text.
func sayContent(voiceName string, sp voice.Speech) string {
	if strings.HasPrefix(voiceName, "Polly.") || strings.HasPrefix(voiceName, "Google.") {
		return voice.Inner(sp.SSML)
	}
	return voice.EscapeText(sp.Text)
}

func attr(b *strings.Builder, name, value string) {
	if value == "" {
		return
	}
	b.WriteString(" ")
	b.WriteString(name)
	b.WriteString(`="`)
	b.WriteString(voice.EscapeText(value))
	b.WriteString(`"`)
}

// hints turns quick-reply options into speech recognition hints.
func hints(options []string) string {
	var out []string
	n := 0
	for _, o := range options {
		o = strings.Join(strings.Fields(strings.ReplaceAll(o, ",", " ")), " ")
		if o == "" || n+len(o) > maxHints {
			continue
		}
		out = append(out, o)
		n += len(o) + 2
	}
	return strings.Join(out, ", ")
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>`

func twimlResponse(verbs string) *channels.Response {
	body := xmlHeader + "<Response/>"
	if verbs != "" {
		body = xmlHeader + "<Response>" + verbs + "</Response>"
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "text/xml; charset=utf-8", Body: []byte(body)}
}
