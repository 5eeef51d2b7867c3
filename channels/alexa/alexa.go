package alexa

import (
	gojson "github.com/goccy/go-json"

	"cmp"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "alexa"

// Settings.
const (
	SettingSkillID         = "skill_id"
	SettingVerifySignature = "verify_signature"
	SettingCardTitle       = "card_title"
)

// DefaultBudget is how long a turn may take: Alexa waits about 8 seconds,
// less one for the network.
const DefaultBudget = 7 * time.Second

// Limits on request fields.
const (
	maxID       = 512
	maxCardText = 8000
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// FetchCertificate downloads the PEM certificate chain at a
	// SignatureCertChainUrl that passed [CertURL]. Nil: an HTTP GET with a
	// 5-second timeout, no redirects and at most 64 KiB.
	FetchCertificate func(url string) ([]byte, error)
	// Roots are the trusted root certificates; nil means the system's.
	Roots *x509.CertPool
	// Budget bounds a whole turn; zero means DefaultBudget.
	Budget time.Duration
	// Logger receives a warning for requests whose signature was not
	// verified (verify_signature=false): the first of a bot's, then at most
	// one a minute with the number of such requests since the last; nil
	// discards them.
	Logger *slog.Logger
	// ProgressiveAfter is how long a turn runs before the first sentence
	// of a streamed reply is said early (see progressive.go); zero means
	// DefaultProgressiveAfter.
	ProgressiveAfter time.Duration
	// ProgressiveEndpoint, when set, receives progressive responses
	// instead of the requests' apiEndpoint (tests).
	ProgressiveEndpoint string
	// Client sends progressive responses (default: a 10s-timeout client).
	Client *http.Client
}

// Adapter implements [channels.Adapter], [channels.Configurer],
// [channels.Budgeter] and [channels.ErrorRenderer] for Alexa custom skills.
type Adapter struct {
	certs       *certCache
	budget      time.Duration
	log         *slog.Logger
	progressive progressiveConfig

	unverifiedMu sync.Mutex
	unverified   map[string]*unverified // by bot
}

// unverified counts a bot's requests accepted without a signature check.
type unverified struct {
	warned time.Time // when the last warning was logged
	since  int       // requests since then
}

// unverifiedWarnEvery is how often a bot's unverified requests are warned
// about, at most.
const unverifiedWarnEvery = time.Minute

// New returns the Alexa adapter.
func New(cfg Config) *Adapter {
	if cfg.FetchCertificate == nil {
		cfg.FetchCertificate = fetchHTTP(defaultClient())
	}
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Adapter{
		certs: &certCache{fetch: cfg.FetchCertificate, roots: cfg.Roots, maxFetches: maxInflightFetches,
			entries: make(map[string]*certEntry)},
		budget: cfg.Budget,
		log:    cfg.Logger,
		progressive: progressiveConfig{after: cmp.Or(cfg.ProgressiveAfter, DefaultProgressiveAfter),
			endpoint: cfg.ProgressiveEndpoint, client: channels.SendClient(cfg.Client)},
		unverified: make(map[string]*unverified),
	}
}

// warnUnverified logs that a request of bot was not verified: the first,
// then at most one warning a minute, with the number of such requests
// since the last one, so that a busy skill does not flood the log.
func (a *Adapter) warnUnverified(bot string, now time.Time) {
	a.unverifiedMu.Lock()
	u := a.unverified[bot]
	if u == nil {
		u = &unverified{}
		a.unverified[bot] = u
	}
	u.since++
	n := u.since
	due := u.warned.IsZero() || now.Sub(u.warned) >= unverifiedWarnEvery
	if due {
		u.warned, u.since = now, 0
	}
	a.unverifiedMu.Unlock()
	if due {
		a.log.Warn("ALEXA REQUEST SIGNATURE NOT VERIFIED: verify_signature is false for this bot; "+
			"anyone can call this skill endpoint. Use it only for local testing.", "bot", bot,
			"unverified_requests", n, "warning_every", unverifiedWarnEvery.String())
	}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// Budget implements [channels.Budgeter].
func (a *Adapter) Budget() time.Duration { return a.budget }

// SecretSettings implements [channels.Configurer]: the skill id is public.
func (*Adapter) SecretSettings() []string { return nil }

// SettingKinds implements [channels.Typed]: verify_signature is a boolean.
func (*Adapter) SettingKinds() map[string]channels.Kind {
	return map[string]channels.Kind{SettingVerifySignature: channels.KindBool}
}

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingSkillID, SettingVerifySignature, SettingCardTitle); err != nil {
		return err
	}
	id := s[SettingSkillID]
	if !strings.HasPrefix(id, "amzn1.") || len(id) > maxID || strings.ContainsAny(id, " \t\r\n") {
		return channels.BadRequest("the alexa channel needs \"skill_id\", the skill's id (amzn1.ask.skill....)")
	}
	if v, ok := s[SettingVerifySignature]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return channels.BadRequest("\"verify_signature\" is true or false")
		}
	}
	if len(s[SettingCardTitle]) > 200 {
		return channels.BadRequest("\"card_title\" is at most 200 characters")
	}
	return nil
}

// verifySignature reports whether the bot wants signatures verified (the default).
func verifySignature(s channels.Settings) bool {
	v, err := strconv.ParseBool(s[SettingVerifySignature])
	return err != nil || v
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the alexa channel takes POST"}
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	// The cheap checks come first: the headers, the body's timestamp and
	// skill id. Only a request that passes them may make the adapter fetch
	// a certificate. While the signature is unchecked, every refusal is a
	// 401, so that a bad request tells an outsider nothing more.
	verify := verifySignature(req.Settings)
	refuse := channels.BadRequest
	var certURL string
	var sig []byte
	if verify {
		refuse = channels.Unauthorized
		var err error
		if certURL, sig, err = signatureHeaders(req.Header); err != nil {
			return nil, channels.Unauthorized("alexa request verification failed: %v", err)
		}
	} else {
		a.warnUnverified(req.Bot, now)
	}
	p, err := decode(req.Body)
	if err != nil {
		return nil, refuse("body is not an Alexa request: %v", err)
	}
	env := &p.env
	r := &env.Request
	ts, ok := r.timestamp()
	if !ok {
		return nil, refuse("request.timestamp is missing or malformed")
	}
	maxAge := MaxRequestAge
	if strings.HasPrefix(r.Type, "AlexaSkillEvent.") {
		maxAge = MaxEventAge
	}
	if d := now.Sub(ts); d > maxAge || d < -maxAge {
		return nil, channels.Unauthorized("alexa request timestamp %s is more than %s away from now", ts.UTC().Format(time.RFC3339), maxAge)
	}
	if !skillMatches(env, req.Settings[SettingSkillID]) {
		return nil, channels.Unauthorized("alexa request is for another skill than this bot's skill_id")
	}
	if verify {
		if err := a.certs.verifySignature(certURL, sig, req.Body, now); err != nil {
			return nil, channels.Unauthorized("alexa request verification failed: %v", err)
		}
	}

	ev, err := event(req, p, ts)
	if err != nil {
		return nil, err
	}
	req.Parsed = p
	if ev == nil { // a request type that is not a conversation turn
		return &channels.Inbound{Response: emptyResponse()}, nil
	}
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

// skillMatches checks every application id the request carries.
func skillMatches(env *envelope, skillID string) bool {
	if skillID == "" {
		return false
	}
	ids := []string{env.Context.System.Application.ApplicationID}
	if env.Session != nil {
		ids = append(ids, env.Session.Application.ApplicationID)
	}
	seen := false
	for _, id := range ids {
		if id == "" {
			continue
		}
		if id != skillID {
			return false
		}
		seen = true
	}
	return seen
}

// event normalizes a verified request; nil for request types that are not
// turns of a conversation.
func event(req *channels.Request, p *parsed, ts time.Time) (*msg.Event, error) {
	env := &p.env
	r := &env.Request
	ev := &msg.Event{
		ID:        r.RequestID,
		Bot:       req.Bot,
		Channel:   Name,
		Locale:    r.Locale,
		Voice:     true,
		Timestamp: ts.UTC(),
		Raw:       json.RawMessage(req.Body),
	}
	switch r.Type {
	case "LaunchRequest":
		ev.Intent = intents.WelcomeIntent
	case "IntentRequest":
		if p.intent == nil || p.intent.Name == "" {
			return nil, channels.BadRequest("IntentRequest without an intent")
		}
		in := p.intent
		ev.Intent, ev.Text = voice.AmazonIntent(in.Name)
		if ev.Intent != "" {
			ev.Confidence = 1
		}
		if slots := in.slotValues(); len(slots) > 0 {
			ev.Slots = slots
		}
	case "SessionEndedRequest":
		ev.Intent = intents.SessionEndedIntent
	default:
		return nil, nil
	}
	if env.Session == nil || env.Session.SessionID == "" || len(env.Session.SessionID) > maxID {
		return nil, channels.BadRequest("%s without a session", r.Type)
	}
	if ev.ID == "" || len(ev.ID) > maxID {
		return nil, channels.BadRequest("request.requestId is missing")
	}
	ev.Conversation = env.Session.SessionID
	ev.User = env.Context.System.User.UserID
	if ev.User == "" {
		ev.User = env.Session.User.UserID
	}
	if ev.User == "" {
		ev.User = ev.Conversation
	}
	return ev, nil
}

// Response is Alexa's response envelope.
type Response struct {
	Version           string            `json:"version"`
	SessionAttributes map[string]string `json:"sessionAttributes,omitempty"`
	Response          ResponseBody      `json:"response"`
}

// ResponseBody is the "response" object of a [Response].
type ResponseBody struct {
	OutputSpeech     *OutputSpeech `json:"outputSpeech,omitempty"`
	Card             *Card         `json:"card,omitempty"`
	Reprompt         *Reprompt     `json:"reprompt,omitempty"`
	Directives       []Directive   `json:"directives,omitempty"`
	ShouldEndSession *bool         `json:"shouldEndSession,omitempty"`
	// Extra is the handler's channel_data.alexa, a JSON object merged into
	// the response object (e.g. APL directives), see MarshalJSON.
	Extra json.RawMessage `json:"-"`
}

// OutputSpeech is speech in SSML.
type OutputSpeech struct {
	Type string `json:"type"`
	SSML string `json:"ssml"`
}

// Card is a card shown in the Alexa app and on screens: Simple (title and
// content) or Standard (title, text and an image).
type Card struct {
	Type    string     `json:"type"`
	Title   string     `json:"title"`
	Content string     `json:"content,omitempty"`
	Text    string     `json:"text,omitempty"`
	Image   *CardImage `json:"image,omitempty"`
}

// Reprompt is said when the user stays silent.
type Reprompt struct {
	OutputSpeech OutputSpeech `json:"outputSpeech"`
}

// Directive is a Dialog directive.
type Directive struct {
	Type          string          `json:"type"`
	SlotToElicit  string          `json:"slotToElicit,omitempty"`
	UpdatedIntent json.RawMessage `json:"updatedIntent,omitempty"`
}

func speech(sp voice.Speech) *OutputSpeech {
	return &OutputSpeech{Type: "SSML", SSML: sp.SSML}
}

// Render implements [channels.Adapter].
func (a *Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	p := parsedOf(req)
	if p.env.Request.Type == "SessionEndedRequest" {
		return emptyResponse(), nil
	}
	ans := voice.NewAnswer(results[0])
	// Buttons, cards and media: said where a voice user needs them, and
	// shown on the card (see rich.go).
	ans.Speech = withRichSpeech(ans.Speech, richSpeech(results[0].Replies))
	out := a.answer(req, p, ans)
	richCard(&out.Response, cardTitle(req), results[0].Replies)
	for _, r := range results[0].Replies {
		if raw, ok := r.ChannelData[channelDataKind]; ok && out.Response.OutputSpeech != nil {
			out.Response.Extra = raw
			break
		}
	}
	return respond(out)
}

// cardTitle is the title of the bot's cards: the card_title setting, or
// the bot's name.
func cardTitle(req *channels.Request) string {
	if t := req.Settings[SettingCardTitle]; t != "" {
		return t
	}
	return req.Bot
}

// RenderError implements [channels.ErrorRenderer]: an apology, with the
// session left open so the user can try again.
func (a *Adapter) RenderError(req *channels.Request, err error) *channels.Response {
	p := parsedOf(req)
	if p.env.Request.Type == "SessionEndedRequest" {
		return emptyResponse()
	}
	resp, _ := respond(a.answer(req, p, voice.Apology()))
	return resp
}

// answer builds the response to an answer, choosing the dialog step.
func (a *Adapter) answer(req *channels.Request, p *parsed, ans voice.Answer) Response {
	env := &p.env
	d := voice.Dialog{}
	hasModel := false
	if in := p.intent; env.Request.Type == "IntentRequest" && in != nil {
		d.Intent = in.Name
		for name := range in.Slots {
			d.Slots = append(d.Slots, name)
		}
		sort.Strings(d.Slots)
		// dialogState is only sent for intents with a dialog model, the
		// condition for Dialog directives.
		hasModel = env.Request.DialogState != ""
		d.Managed = env.Request.DialogState == "STARTED" || env.Request.DialogState == "IN_PROGRESS"
	}
	step, slotName := ans.Next(d)
	if !hasModel && (step == voice.ElicitSlot || step == voice.ConfirmIntent) {
		step = voice.Listen
	}

	out := Response{Version: "1.0"}
	body := &out.Response
	if step == voice.Delegate {
		body.Directives = []Directive{{Type: "Dialog.Delegate"}}
		return out
	}
	if !ans.Speech.IsZero() {
		body.OutputSpeech = speech(ans.Speech)
		if text := voice.Truncate(ans.Speech.Text, maxCardText); text != "" {
			body.Card = &Card{Type: "Simple", Title: cardTitle(req), Content: text}
		}
	}
	end := step == voice.Close
	body.ShouldEndSession = &end
	if !end && !ans.Reprompt.IsZero() {
		body.Reprompt = &Reprompt{OutputSpeech: *speech(ans.Reprompt)}
	}
	switch step {
	case voice.ElicitSlot:
		body.Directives = []Directive{{Type: "Dialog.ElicitSlot", SlotToElicit: slotName, UpdatedIntent: env.Request.Intent}}
	case voice.ConfirmIntent:
		body.Directives = []Directive{{Type: "Dialog.ConfirmIntent", UpdatedIntent: env.Request.Intent}}
	}
	if !end {
		attrs := map[string]string{}
		if ans.Intent != "" {
			attrs["parley_intent"] = ans.Intent
		}
		if ans.Expect != "" {
			attrs["parley_expect"] = ans.Expect
		}
		if len(attrs) > 0 {
			out.SessionAttributes = attrs
		}
	}
	return out
}

func respond(r Response) (*channels.Response, error) {
	// goccy/go-json writes what encoding/json does, in about half the time
	// (see docs/dependencies.md); the answer is Parley's own data. Without
	// channel data to merge, the response object is written as the plain
	// struct it is: through its MarshalJSON, the library would go over that
	// method's output once more.
	type plainBody ResponseBody
	type plain struct {
		Version           string            `json:"version"`
		SessionAttributes map[string]string `json:"sessionAttributes,omitempty"`
		Response          plainBody         `json:"response"`
	}
	var v any = &r
	if len(r.Response.Extra) == 0 {
		v = &plain{Version: r.Version, SessionAttributes: r.SessionAttributes, Response: plainBody(r.Response)}
	}
	body, err := gojson.MarshalWithOption(v, gojson.DisableHTMLEscape())
	if err != nil {
		return nil, err
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json;charset=UTF-8", Body: body}, nil
}

// emptyResponse is the answer to requests that take no speech, such as
// SessionEndedRequest.
func emptyResponse() *channels.Response {
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json;charset=UTF-8",
		Body: []byte(`{"version":"1.0","response":{}}`)}
}
