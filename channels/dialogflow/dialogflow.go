package dialogflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "dialogflow"

// DefaultBudget is how long a turn may take: Dialogflow ES waits 5 seconds
// for its webhook, less half a second for the network.
const DefaultBudget = 4500 * time.Millisecond

// Limits on request fields.
const (
	maxID   = 512
	maxText = 4096
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Budget bounds a whole turn; zero means DefaultBudget.
	Budget time.Duration
}

// Adapter implements [channels.Adapter], [channels.Configurer],
// [channels.Budgeter] and [channels.ErrorRenderer] for Dialogflow ES.
type Adapter struct {
	voice.WebhookAuth // basic auth or a header secret
	channels.Deadline
}

// New returns the Dialogflow ES adapter.
func New(cfg Config) *Adapter {
	return &Adapter{WebhookAuth: voice.WebhookAuth{Channel: Name}, Deadline: channels.NewDeadline(cfg.Budget, DefaultBudget)}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// WebhookRequest is the part of Dialogflow ES's webhook request Parley reads.
type WebhookRequest struct {
	ResponseID  string `json:"responseId"`
	Session     string `json:"session"`
	QueryResult struct {
		QueryText    string                     `json:"queryText"`
		Action       string                     `json:"action"`
		Parameters   map[string]json.RawMessage `json:"parameters"`
		LanguageCode string                     `json:"languageCode"`
		Intent       struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
			IsFallback  bool   `json:"isFallback"`
		} `json:"intent"`
		IntentDetectionConfidence float64           `json:"intentDetectionConfidence"`
		OutputContexts            []json.RawMessage `json:"outputContexts"`
	} `json:"queryResult"`
	OriginalDetectIntentRequest struct {
		Source  string `json:"source"`
		Payload struct {
			Telephony struct {
				CallerID string `json:"caller_id"`
			} `json:"telephony"`
		} `json:"payload"`
	} `json:"originalDetectIntentRequest"`
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the dialogflow channel takes POST"}
	}
	if err := voice.CheckAuth(Name, req.Settings, req.Header); err != nil {
		return nil, err
	}
	var w WebhookRequest
	if err := json.Unmarshal(req.Body, &w); err != nil {
		return nil, channels.BadRequest("body is not a Dialogflow webhook request: %v", err)
	}
	conv := lastSegment(w.Session)
	switch q := &w.QueryResult; {
	case conv == "" || len(w.Session) > maxID:
		return nil, channels.BadRequest("session is missing")
	case len(w.ResponseID) > maxID:
		return nil, channels.BadRequest("responseId is too long")
	case len(q.QueryText) > maxText || !utf8.ValidString(q.QueryText):
		return nil, channels.BadRequest("queryText is longer than %d bytes or not UTF-8", maxText)
	}
	q := &w.QueryResult
	user := w.OriginalDetectIntentRequest.Payload.Telephony.CallerID
	if user == "" {
		user = conv
	}
	ev := &msg.Event{
		ID:           w.ResponseID,
		Bot:          req.Bot,
		Channel:      Name,
		User:         user,
		Conversation: conv,
		Text:         q.QueryText,
		Intent:       intentName(q.Action, q.Intent.DisplayName, q.Intent.IsFallback),
		Locale:       q.LanguageCode,
		Voice:        true,
		Timestamp:    req.Now,
		Raw:          json.RawMessage(req.Body),
	}
	if ev.Intent != "" {
		ev.Confidence = q.IntentDetectionConfidence
	}
	if slots := voice.SlotValues(q.Parameters); len(slots) > 0 {
		ev.Slots = slots
	}
	if payload, ok := rich.Resolve(q.QueryText, offered(&w)); ok {
		ev.Postback = payload
	}
	channels.NumberedAnswer(ev) // without the context, the session's choices resolve a number
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

// intentName maps Dialogflow's matched intent to the event's intent.
func intentName(action, display string, fallback bool) string {
	switch {
	case action == "input.welcome" || display == "Default Welcome Intent":
		return intents.WelcomeIntent
	case fallback || action == "input.unknown" || display == "Default Fallback Intent":
		return ""
	}
	return voice.IntentName(display)
}

// lastSegment is the session id at the end of a session path
// ("projects/p/agent/sessions/<id>", or with environments and users).
func lastSegment(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

// WebhookResponse is Dialogflow ES's webhook response.
type WebhookResponse struct {
	FulfillmentText     string            `json:"fulfillmentText,omitempty"`
	FulfillmentMessages []Message         `json:"fulfillmentMessages,omitempty"`
	OutputContexts      []json.RawMessage `json:"outputContexts,omitempty"`
}

// Message is one fulfillment message (Intent.Message): text, speech for
// the phone gateway, an image, quick replies or a card, for every platform
// or for the one named.
type Message struct {
	Platform                  string        `json:"platform,omitempty"`
	Text                      *Text         `json:"text,omitempty"`
	TelephonySynthesizeSpeech *Synthesize   `json:"telephonySynthesizeSpeech,omitempty"`
	Image                     *Image        `json:"image,omitempty"`
	QuickReplies              *QuickReplies `json:"quickReplies,omitempty"`
	Card                      *Card         `json:"card,omitempty"`
}

// Text is a text message.
type Text struct {
	Text []string `json:"text"`
}

// Synthesize is speech for the phone gateway.
type Synthesize struct {
	SSML string `json:"ssml"`
}

// Render implements [channels.Adapter]: the answer's speech, the replies'
// rich messages, the choices they offer (in an output context), and the
// channel data "dialogflow" merged into the response.
func (a *Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	var w WebhookRequest
	_ = json.Unmarshal(req.Body, &w) // Parse accepted it
	res := results[0]
	out := answer(voice.NewAnswer(res))
	addRich(&out, &w, res.Replies)
	resp, err := respond(out)
	if err != nil {
		return nil, err
	}
	for _, r := range res.Replies {
		if patch := r.ChannelData[ChannelDataKind]; len(patch) > 0 {
			body, err := rich.MergePatch(resp.Body, patch)
			if err != nil {
				return nil, fmt.Errorf("channel data %q: %w", ChannelDataKind, err)
			}
			resp.Body = body
		}
	}
	return resp, nil
}

// RenderError implements [channels.ErrorRenderer]: the apology as the
// fulfillment text.
func (a *Adapter) RenderError(req *channels.Request, err error) *channels.Response {
	resp, _ := respond(answer(voice.Apology()))
	return resp
}

func answer(ans voice.Answer) WebhookResponse {
	var w WebhookResponse
	if ans.Speech.IsZero() {
		return w
	}
	w.FulfillmentText = ans.Speech.Text
	w.FulfillmentMessages = []Message{{Text: &Text{Text: []string{ans.Speech.Text}}}}
	if ans.HasSSML {
		w.FulfillmentMessages = append(w.FulfillmentMessages,
			Message{Platform: "TELEPHONY", TelephonySynthesizeSpeech: &Synthesize{SSML: ans.Speech.SSML}})
	}
	return w
}

func respond(v any) (*channels.Response, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json; charset=utf-8",
		Body: bytes.TrimRight(buf.Bytes(), "\n")}, nil
}
