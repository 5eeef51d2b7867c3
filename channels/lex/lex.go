package lex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "lex"

// DefaultBudget is how long a turn may take: a Lambda function's default
// timeout is 3 seconds, less half a second for the forwarding call.
const DefaultBudget = 2500 * time.Millisecond

// Limits on request fields and messages.
const (
	maxID      = 512
	maxText    = 4096
	maxMessage = 1000 // Lex V2 message content
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Budget bounds a whole turn; zero means DefaultBudget.
	Budget time.Duration
}

// Adapter implements [channels.Adapter], [channels.Configurer],
// [channels.Budgeter] and [channels.ErrorRenderer] for Lex V2.
type Adapter struct {
	voice.WebhookAuth // basic auth or a header secret
	channels.Deadline
}

// New returns the Lex V2 adapter.
func New(cfg Config) *Adapter {
	return &Adapter{WebhookAuth: voice.WebhookAuth{Channel: Name}, Deadline: channels.NewDeadline(cfg.Budget, DefaultBudget)}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// Event is the part of a Lex V2 code hook event Parley reads.
type Event struct {
	MessageVersion   string `json:"messageVersion"`
	InvocationSource string `json:"invocationSource"`
	InputMode        string `json:"inputMode"`
	// ResponseContentType is what the client takes: text, or audio for a
	// voice client.
	ResponseContentType string `json:"responseContentType"`
	SessionID           string `json:"sessionId"`
	InputTranscript     string `json:"inputTranscript"`
	InvocationLabel     string `json:"invocationLabel"`
	Bot                 struct {
		Name     string `json:"name"`
		LocaleID string `json:"localeId"`
	} `json:"bot"`
	Interpretations []struct {
		Intent struct {
			Name string `json:"name"`
		} `json:"intent"`
		NLUConfidence json.RawMessage `json:"nluConfidence"`
	} `json:"interpretations"`
	SessionState struct {
		SessionAttributes    map[string]string `json:"sessionAttributes"`
		Intent               json.RawMessage   `json:"intent"`
		OriginatingRequestID string            `json:"originatingRequestId"`
	} `json:"sessionState"`
}

// Intent is a Lex V2 intent.
type Intent struct {
	Name              string           `json:"name"`
	State             string           `json:"state"`
	ConfirmationState string           `json:"confirmationState"`
	Slots             map[string]*Slot `json:"slots"`
}

// Slot is a Lex V2 slot; null when not filled.
type Slot struct {
	Shape  string     `json:"shape"`
	Value  *SlotValue `json:"value"`
	Values []*Slot    `json:"values"`
}

// SlotValue is what the user said and what Lex made of it.
type SlotValue struct {
	OriginalValue    string   `json:"originalValue"`
	InterpretedValue string   `json:"interpretedValue"`
	ResolvedValues   []string `json:"resolvedValues"`
}

// interpreted is the slot's value and what the user said, lists joined.
func (s *Slot) interpreted() (value, spoken string) {
	if s == nil {
		return "", ""
	}
	if len(s.Values) > 0 {
		var vs, ss []string
		for _, v := range s.Values {
			if iv, sv := v.interpreted(); iv != "" {
				vs, ss = append(vs, iv), append(ss, sv)
			}
		}
		return strings.Join(vs, ", "), strings.Join(ss, ", ")
	}
	if s.Value == nil {
		return "", ""
	}
	value, spoken = s.Value.InterpretedValue, s.Value.OriginalValue
	if value == "" {
		value = spoken
	}
	if spoken == "" {
		spoken = value
	}
	return value, spoken
}

// decode reads an event and its session intent.
func decode(body []byte) (*Event, *Intent, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, nil, err
	}
	var in Intent
	if len(e.SessionState.Intent) > 0 && string(e.SessionState.Intent) != "null" {
		if err := json.Unmarshal(e.SessionState.Intent, &in); err != nil {
			return nil, nil, err
		}
	}
	return &e, &in, nil
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the lex channel takes POST"}
	}
	if err := voice.CheckAuth(Name, req.Settings, req.Header); err != nil {
		return nil, err
	}
	e, in, err := decode(req.Body)
	if err != nil {
		return nil, channels.BadRequest("body is not a Lex V2 event: %v", err)
	}
	switch {
	case e.SessionID == "" || len(e.SessionID) > maxID:
		return nil, channels.BadRequest("sessionId is missing")
	case len(e.InputTranscript) > maxText || !utf8.ValidString(e.InputTranscript):
		return nil, channels.BadRequest("inputTranscript is longer than %d bytes or not UTF-8", maxText)
	case len(e.SessionState.OriginatingRequestID) > maxID || len(e.InvocationLabel) > maxID:
		return nil, channels.BadRequest("originatingRequestId or invocationLabel is too long")
	}
	ev := &msg.Event{
		Bot:          req.Bot,
		Channel:      Name,
		User:         e.SessionID,
		Conversation: e.SessionID,
		Text:         e.InputTranscript,
		Locale:       strings.ReplaceAll(e.Bot.LocaleID, "_", "-"),
		Voice:        true,
		Timestamp:    req.Now,
		Raw:          json.RawMessage(req.Body),
	}
	if id := e.SessionState.OriginatingRequestID; id != "" {
		// One user request can invoke the dialog and the fulfillment hooks.
		ev.ID = strings.Join([]string{id, e.InvocationSource, e.InvocationLabel, in.Name, in.State}, ":")
	}
	var text string
	ev.Intent, text = voice.AmazonIntent(in.Name)
	if ev.Text == "" {
		ev.Text = text
	}
	if ev.Intent != "" {
		ev.Confidence = confidence(e, in.Name)
	}
	if payload, ok := rich.Resolve(e.InputTranscript, rich.DecodeChoices(e.SessionState.SessionAttributes[choicesAttribute])); ok {
		ev.Postback = payload
	}
	channels.NumberedAnswer(ev) // without the attribute, the session's choices resolve a number
	slots := make(map[string]string)
	for name, s := range in.Slots {
		value, spoken := s.interpreted()
		if value == "" {
			continue
		}
		slots[name] = value
		if spoken != value {
			slots[name+".spoken"] = spoken
		}
	}
	if len(slots) > 0 {
		ev.Slots = slots
	}
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

// confidence is the NLU confidence of the interpretation of intent: a
// number, or an object with a score.
func confidence(e *Event, intent string) float64 {
	for _, it := range e.Interpretations {
		if it.Intent.Name != intent || len(it.NLUConfidence) == 0 {
			continue
		}
		var f float64
		if json.Unmarshal(it.NLUConfidence, &f) == nil {
			return f
		}
		var s struct {
			Score float64 `json:"score"`
		}
		if json.Unmarshal(it.NLUConfidence, &s) == nil {
			return s.Score
		}
	}
	return 1
}

// Response is a Lex V2 code hook response.
type Response struct {
	SessionState ResponseState `json:"sessionState"`
	Messages     []Message     `json:"messages,omitempty"`
}

// ResponseState is the session state Lex continues with.
type ResponseState struct {
	DialogAction      DialogAction      `json:"dialogAction"`
	Intent            json.RawMessage   `json:"intent,omitempty"`
	SessionAttributes map[string]string `json:"sessionAttributes,omitempty"`
}

// DialogAction is what Lex does next.
type DialogAction struct {
	Type         string `json:"type"`
	SlotToElicit string `json:"slotToElicit,omitempty"`
}

// Message is a message Lex says or shows: text, SSML, or a response card.
type Message struct {
	ContentType       string             `json:"contentType"`
	Content           string             `json:"content,omitempty"`
	ImageResponseCard *ImageResponseCard `json:"imageResponseCard,omitempty"`
}

// Render implements [channels.Adapter]: the dialog step and the answer's
// speech, the replies' response cards (text clients) or spoken choices
// (voice clients), and the channel data "lex" merged into the response.
func (a *Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	e, in, err := decode(req.Body)
	if err != nil { // Parse accepted it; cannot happen
		e, in = &Event{}, &Intent{}
	}
	res := results[0]
	r := answer(e, in, voice.NewAnswer(res))
	addRich(&r, e, res)
	resp, err := respond(r)
	if err != nil {
		return nil, err
	}
	for _, rep := range res.Replies {
		if patch := rep.ChannelData[ChannelDataKind]; len(patch) > 0 {
			body, err := rich.MergePatch(resp.Body, patch)
			if err != nil {
				return nil, fmt.Errorf("channel data %q: %w", ChannelDataKind, err)
			}
			resp.Body = body
		}
	}
	return resp, nil
}

// RenderError implements [channels.ErrorRenderer]: the intent fails with the
// apology.
func (a *Adapter) RenderError(req *channels.Request, err error) *channels.Response {
	e, in, derr := decode(req.Body)
	if derr != nil {
		e, in = &Event{}, &Intent{}
	}
	resp, _ := respond(answer(e, in, voice.Apology()))
	return resp
}

// Intent states Parley sets.
const (
	stateFulfilled  = "Fulfilled"
	stateFailed     = "Failed"
	stateInProgress = "InProgress"
)

func answer(e *Event, in *Intent, ans voice.Answer) Response {
	slots := make([]string, 0, len(in.Slots))
	for name := range in.Slots {
		slots = append(slots, name)
	}
	sort.Strings(slots)
	step, slot := ans.Next(voice.Dialog{Intent: in.Name, Slots: slots, Managed: e.InvocationSource == "DialogCodeHook"})

	var r Response
	st := &r.SessionState
	switch step {
	case voice.Close:
		st.DialogAction.Type = "Close"
		st.Intent = withState(e.SessionState.Intent, stateFulfilled)
	case voice.Fail:
		st.DialogAction.Type = "Close"
		st.Intent = withState(e.SessionState.Intent, stateFailed)
	case voice.ElicitSlot:
		st.DialogAction = DialogAction{Type: "ElicitSlot", SlotToElicit: slot}
		st.Intent = withState(e.SessionState.Intent, stateInProgress)
	case voice.ConfirmIntent:
		st.DialogAction.Type = "ConfirmIntent"
		st.Intent = withState(e.SessionState.Intent, stateInProgress)
	case voice.Delegate:
		st.DialogAction.Type = "Delegate"
		st.Intent = e.SessionState.Intent
	default:
		st.DialogAction.Type = "ElicitIntent"
	}
	if st.DialogAction.Type == "Close" && len(st.Intent) == 0 {
		// Close needs an intent in a final state; a session without one
		// (an error before any intent) closes Lex's fallback intent.
		state := stateFulfilled
		if step == voice.Fail {
			state = stateFailed
		}
		st.Intent, _ = json.Marshal(map[string]string{"name": "FallbackIntent", "state": state})
	}
	st.SessionAttributes = attributes(e.SessionState.SessionAttributes, ans)
	if step != voice.Delegate {
		r.Messages = messages(ans.Speech, ans.HasSSML)
	}
	return r
}

// withState is the session's intent (as Lex sent it, slots and all) in a new
// state; nil when the session has no named intent.
func withState(raw json.RawMessage, state string) json.RawMessage {
	var m map[string]json.RawMessage
	var named struct {
		Name string `json:"name"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil || json.Unmarshal(raw, &named) != nil || named.Name == "" {
		return nil
	}
	m["state"], _ = json.Marshal(state)
	out, _ := json.Marshal(m)
	return out
}

// attributes keeps the session's attributes and mirrors Parley's routing
// state.
func attributes(in map[string]string, ans voice.Answer) map[string]string {
	out := make(map[string]string, len(in)+2)
	for k, v := range in {
		out[k] = v
	}
	delete(out, "parley_intent")
	delete(out, "parley_expect")
	delete(out, choicesAttribute)
	if !ans.End && !ans.Failed {
		if ans.Intent != "" {
			out["parley_intent"] = ans.Intent
		}
		if ans.Expect != "" {
			out["parley_expect"] = ans.Expect
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// messages is the speech as Lex messages: SSML when the handler wrote it and
// it fits, else plain text in pieces Lex accepts.
func messages(sp voice.Speech, hasSSML bool) []Message {
	if sp.IsZero() {
		return nil
	}
	if hasSSML && len(sp.SSML) <= maxMessage {
		return []Message{{ContentType: "SSML", Content: sp.SSML}}
	}
	var out []Message
	for rest := sp.Text; rest != ""; {
		part := voice.Truncate(rest, maxMessage)
		if part == "" { // a single word longer than a message
			part = rest[:maxMessage]
			for !utf8.ValidString(part) {
				part = part[:len(part)-1]
			}
		}
		out = append(out, Message{ContentType: "PlainText", Content: part})
		rest = strings.TrimSpace(rest[len(part):])
	}
	return out
}

func respond(r Response) (*channels.Response, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json; charset=utf-8",
		Body: bytes.TrimRight(buf.Bytes(), "\n")}, nil
}
