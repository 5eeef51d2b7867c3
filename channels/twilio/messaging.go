package twilio

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/xmlx"
	"github.com/parleyhq/parley/msg"
)

// Name is the messaging channel's name in URLs and settings.
const Name = "twilio"

// Settings of the messaging channel.
const (
	SettingAuthToken  = "auth_token"
	SettingAccountSID = "account_sid"
	SettingWebhookURL = "webhook_url"
	// SettingFrom and SettingMessagingServiceSID say who sends the messages
	// Parley pushes (scheduled triggers): the bot's number (or
	// whatsapp:+number), or a messaging service. Replies to incoming
	// messages need neither.
	SettingFrom                = "from"
	SettingMessagingServiceSID = "messaging_service_sid"
	// SettingAPIBaseURL overrides the REST API's base URL (tests).
	SettingAPIBaseURL = "api_base_url"
)

// DefaultBudget is how long a messaging turn may take: Twilio waits 15
// seconds for the webhook's answer, less a second for the network.
const DefaultBudget = 14 * time.Second

// Limits on request fields.
const (
	maxSID         = 64
	maxAddress     = 256
	maxInboundText = 8192
	maxBody        = 1600 // characters of one message Twilio sends
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Budget bounds a whole turn; zero means DefaultBudget.
	Budget time.Duration
	// Client sends pushed messages (default: a client with a 10s timeout).
	Client *http.Client
}

// Adapter implements [channels.Adapter], [channels.Configurer],
// [channels.Budgeter], [channels.ErrorRenderer] and [channels.Sender] for
// Twilio Messaging: SMS, MMS and WhatsApp.
type Adapter struct {
	channels.Deadline
	client *http.Client
}

// New returns the Twilio Messaging adapter.
func New(cfg Config) *Adapter {
	cfg.Client = channels.SendClient(cfg.Client)
	return &Adapter{Deadline: channels.NewDeadline(cfg.Budget, DefaultBudget), client: cfg.Client}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{SettingAuthToken} }

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingAuthToken, SettingAccountSID, SettingWebhookURL, SettingFrom,
		SettingMessagingServiceSID, SettingAPIBaseURL, SettingMMS); err != nil {
		return err
	}
	if v := s[SettingMMS]; v != "" && v != "true" && v != "false" {
		return channels.BadRequest("\"mms\" is \"true\" (the number sends MMS: media are attached) or \"false\"")
	}
	if len(s[SettingAuthToken]) < 16 {
		return channels.BadRequest("the twilio channel needs the account's \"auth_token\"")
	}
	if sid := s[SettingAccountSID]; sid != "" && (!strings.HasPrefix(sid, "AC") || len(sid) != 34) {
		return channels.BadRequest("\"account_sid\" is the account's SID, AC followed by 32 characters")
	}
	if raw := s[SettingWebhookURL]; raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return channels.BadRequest("\"webhook_url\" is the absolute URL configured for the number in Twilio")
		}
	}
	return validatePush(s)
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	var form url.Values
	var signed url.Values // the parameters the signature covers
	switch req.Method {
	case http.MethodPost:
		var err error
		if form, err = url.ParseQuery(string(req.Body)); err != nil {
			// The signature covers the form: without one nothing is verified.
			return nil, channels.Unauthorized("body is not form-encoded, so its signature cannot be checked: %v", err)
		}
		signed = form
	case http.MethodGet:
		if req.URL != nil {
			form = req.URL.Query()
		}
	default:
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the twilio channel takes POST (or GET)"}
	}
	if !verified(req, signed) {
		return nil, channels.Unauthorized("missing or wrong X-Twilio-Signature for the twilio channel (is \"webhook_url\" the URL Twilio calls?)")
	}
	if sid := req.Settings[SettingAccountSID]; sid != "" && form.Get("AccountSid") != sid {
		return nil, channels.Unauthorized("the message is for another Twilio account")
	}
	ev, err := ParseForm(form)
	if err != nil {
		return nil, err
	}
	if ev == nil {
		return &channels.Inbound{Response: twimlResponse(nil)}, nil
	}
	ev.Bot, ev.Channel, ev.Timestamp = req.Bot, Name, req.Now.UTC()
	// Buttons went out as numbered lines: a typed number may pick one.
	channels.NumberedAnswer(ev)
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

// verified checks the signature over the URL Twilio called: the webhook_url
// setting, or the request's public URL as the gateway reports it. A
// connection-override fragment (#rc=...) may or may not be part of what
// Twilio signs, so both are tried.
func verified(req *channels.Request, params url.Values) bool {
	u := req.Settings[SettingWebhookURL]
	if u == "" {
		u = requestURL(req)
	} else if req.Method == http.MethodGet && req.URL != nil && req.URL.RawQuery != "" {
		base, frag, hasFrag := strings.Cut(u, "#")
		base, _, _ = strings.Cut(base, "?")
		u = base + "?" + req.URL.RawQuery
		if hasFrag {
			u += "#" + frag
		}
	}
	if u == "" {
		return false
	}
	sig, token := req.Header.Get(SignatureHeader), req.Settings[SettingAuthToken]
	if ValidSignature(token, u, params, sig) {
		return true
	}
	if base, _, ok := strings.Cut(u, "#"); ok {
		return ValidSignature(token, base, params, sig)
	}
	return false
}

// requestURL is the public URL of a request as the gateway reports it (the
// scheme and host it was called with; a trusted proxy's X-Forwarded-Proto
// and X-Forwarded-Host are applied there, and only there), with https as
// the default scheme. Empty when the host is unknown.
func requestURL(req *channels.Request) string {
	if req.URL == nil || req.URL.Host == "" {
		return ""
	}
	scheme := req.URL.Scheme
	if scheme == "" {
		scheme = "https"
	}
	return scheme + "://" + req.URL.Host + req.URL.RequestURI()
}

// ParseForm normalizes a verified inbound-message webhook into an event, or
// nil for a status callback. The event ID is the MessageSid, so a retried
// webhook is answered once; the user and the conversation are the sender
// (a phone number, or whatsapp:+number). A WhatsApp template's quick reply
// (ButtonPayload) is a button press: its payload is the postback, its
// text the event's text.
func ParseForm(form url.Values) (*msg.Event, error) {
	if st := form.Get("MessageStatus"); st != "" {
		return nil, nil // a status callback of a message the bot sent
	}
	if st := form.Get("SmsStatus"); st != "" && st != "received" {
		return nil, nil
	}
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsMessageSid")
	}
	from := form.Get("From")
	switch {
	case sid == "" || len(sid) > maxSID:
		return nil, channels.BadRequest("MessageSid is missing")
	case from == "" || len(from) > maxAddress || !utf8.ValidString(from):
		return nil, channels.BadRequest("From is missing")
	}
	text, payload := form.Get("Body"), form.Get("ButtonPayload")
	if text == "" {
		text = form.Get("ButtonText")
	}
	if len(text) > maxInboundText || !utf8.ValidString(text) {
		return nil, channels.BadRequest("Body is longer than %d bytes or not UTF-8", maxInboundText)
	}
	if len(payload) > maxInboundText || !utf8.ValidString(payload) {
		return nil, channels.BadRequest("ButtonPayload is longer than %d bytes or not UTF-8", maxInboundText)
	}
	return &msg.Event{ID: sid, User: from, Conversation: from, Text: text, Postback: payload, Raw: rawJSON(form)}, nil
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

// Render implements [channels.Adapter]: TwiML with a <Message> per reply
// (more for a long one, see [messages]); options, buttons, links and
// cards, which SMS cannot show, are written as text under it.
func (*Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	var s channels.Settings
	if req != nil {
		s = req.Settings
	}
	var out []message
	for _, r := range results {
		out = append(out, messages(s, r.Conversation, r.Replies)...)
	}
	return renderTwiML(out), nil
}

// Apology is the message sent when a turn could not run at all (the store
// is unreachable, the conversation stayed busy).
const Apology = "Sorry, I can't answer right now. Please try again in a moment."

// RenderError implements [channels.ErrorRenderer]: the apology as a message,
// since Twilio does not retry a failed webhook and the sender would
// otherwise hear nothing.
func (*Adapter) RenderError(*channels.Request, error) *channels.Response {
	return twimlResponse([]string{Apology})
}

// twimlResponse is a TwiML messaging response with a text <Message> per
// body; none gives the empty <Response/>, which sends nothing.
func twimlResponse(bodies []string) *channels.Response {
	msgs := make([]message, len(bodies))
	for i, b := range bodies {
		msgs[i] = message{Body: b}
	}
	return renderTwiML(msgs)
}

// renderTwiML is a TwiML messaging response with a <Message> per message: its
// text as the element's text, or, with media, a <Body> and a <Media> per
// URL, as twilio-go writes them.
func renderTwiML(msgs []message) *channels.Response {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	if len(msgs) == 0 {
		b.WriteString("<Response/>")
	} else {
		b.WriteString("<Response>")
		for _, m := range msgs {
			b.WriteString("<Message>")
			if len(m.Media) == 0 {
				b.WriteString(escapeText(m.Body))
			} else {
				if m.Body != "" {
					b.WriteString("<Body>" + escapeText(m.Body) + "</Body>")
				}
				for _, u := range m.Media {
					b.WriteString("<Media>" + escapeText(u) + "</Media>")
				}
			}
			b.WriteString("</Message>")
		}
		b.WriteString("</Response>")
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "text/xml; charset=utf-8", Body: []byte(b.String())}
}

// escapeText is s as XML character data: the markup characters escaped as
// twilio-go's TwiML writer does and characters XML cannot hold (controls,
// invalid UTF-8) replaced by U+FFFD.
func escapeText(s string) string { return xmlx.EscapeText(s, '\uFFFD') }
