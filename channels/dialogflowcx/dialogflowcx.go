package dialogflowcx

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
const Name = "dialogflow-cx"

// DefaultBudget is how long a turn may take: a CX webhook's default timeout
// is 5 seconds, less half a second for the network.
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
// [channels.Budgeter] and [channels.ErrorRenderer] for Dialogflow CX.
type Adapter struct {
	voice.WebhookAuth // basic auth or a header secret
	channels.Deadline
}

// New returns the Dialogflow CX adapter.
func New(cfg Config) *Adapter {
	return &Adapter{WebhookAuth: voice.WebhookAuth{Channel: Name}, Deadline: channels.NewDeadline(cfg.Budget, DefaultBudget)}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// WebhookRequest is the part of a CX webhook request Parley reads.
type WebhookRequest struct {
	DetectIntentResponseID string `json:"detectIntentResponseId"`
	LanguageCode           string `json:"languageCode"`
	FulfillmentInfo        struct {
		Tag string `json:"tag"`
	} `json:"fulfillmentInfo"`
	IntentInfo *struct {
		LastMatchedIntent string `json:"lastMatchedIntent"`
		DisplayName       string `json:"displayName"`
		Parameters        map[string]struct {
			OriginalValue json.RawMessage `json:"originalValue"`
			ResolvedValue json.RawMessage `json:"resolvedValue"`
		} `json:"parameters"`
		Confidence float64 `json:"confidence"`
	} `json:"intentInfo"`
	PageInfo struct {
		CurrentPage string `json:"currentPage"`
	} `json:"pageInfo"`
	SessionInfo struct {
		Session    string                     `json:"session"`
		Parameters map[string]json.RawMessage `json:"parameters"`
	} `json:"sessionInfo"`
	Text       string `json:"text"`
	Transcript string `json:"transcript"`
	DTMFDigits string `json:"dtmfDigits"`
	Payload    struct {
		Telephony struct {
			CallerID string `json:"caller_id"`
		} `json:"telephony"`
	} `json:"payload"`
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the dialogflow-cx channel takes POST"}
	}
	if err := voice.CheckAuth(Name, req.Settings, req.Header); err != nil {
		return nil, err
	}
	var w WebhookRequest
	if err := json.Unmarshal(req.Body, &w); err != nil {
		return nil, channels.BadRequest("body is not a Dialogflow CX webhook request: %v", err)
	}
	conv := lastSegment(w.SessionInfo.Session)
	text := firstNonEmpty(w.Text, w.Transcript, w.DTMFDigits)
	switch {
	case conv == "" || len(w.SessionInfo.Session) > maxID:
		return nil, channels.BadRequest("sessionInfo.session is missing")
	case len(w.DetectIntentResponseID) > maxID || len(w.FulfillmentInfo.Tag) > maxID:
		return nil, channels.BadRequest("detectIntentResponseId or tag is too long")
	case len(text) > maxText || !utf8.ValidString(text):
		return nil, channels.BadRequest("text is longer than %d bytes or not UTF-8", maxText)
	}
	user := w.Payload.Telephony.CallerID
	if user == "" {
		user = conv
	}
	ev := &msg.Event{
		Bot:          req.Bot,
		Channel:      Name,
		User:         user,
		Conversation: conv,
		Text:         text,
		Locale:       w.LanguageCode,
		Voice:        true,
		Timestamp:    req.Now,
		Raw:          json.RawMessage(req.Body),
	}
	if w.DetectIntentResponseID != "" {
		// One detect-intent response can call several webhooks, one per tag.
		ev.ID = w.DetectIntentResponseID + ":" + w.FulfillmentInfo.Tag
	}
	slots := voice.SlotValues(w.SessionInfo.Parameters)
	for name := range slots {
		if strings.HasPrefix(name, "parley_") { // Parley's own routing state, mirrored
			delete(slots, name)
		}
	}
	if in := w.IntentInfo; in != nil {
		for name, p := range in.Parameters {
			if v, ok := voice.SlotString(p.ResolvedValue); ok {
				slots[name] = v
			} else if v, ok := voice.SlotString(p.OriginalValue); ok {
				slots[name] = v
			}
		}
	}
	if len(slots) > 0 {
		ev.Slots = slots
	}
	if payload, ok := rich.Resolve(text, offered(&w)); ok {
		ev.Postback = payload
	}
	channels.NumberedAnswer(ev) // without the parameter, the session's choices resolve a number
	switch {
	case w.FulfillmentInfo.Tag != "":
		ev.Intent = voice.IntentName(w.FulfillmentInfo.Tag)
		ev.Confidence = 1
	case w.IntentInfo != nil && w.IntentInfo.DisplayName == "Default Welcome Intent":
		ev.Intent, ev.Confidence = intents.WelcomeIntent, 1
	case w.IntentInfo != nil && w.IntentInfo.DisplayName != "":
		ev.Intent = voice.IntentName(w.IntentInfo.DisplayName)
		ev.Confidence = w.IntentInfo.Confidence
	}
	return &channels.Inbound{Events: []*msg.Event{ev}}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// lastSegment is the session id at the end of a session path.
func lastSegment(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

// WebhookResponse is a CX webhook response.
type WebhookResponse struct {
	FulfillmentResponse *FulfillmentResponse `json:"fulfillmentResponse,omitempty"`
	SessionInfo         *SessionInfo         `json:"sessionInfo,omitempty"`
	TargetPage          string               `json:"targetPage,omitempty"`
}

// FulfillmentResponse holds the messages to say.
type FulfillmentResponse struct {
	Messages []Message `json:"messages"`
}

// Message is one response message: text, SSML, or a custom payload (the
// rich content of Dialogflow CX Messenger).
type Message struct {
	Text            *Text            `json:"text,omitempty"`
	OutputAudioText *OutputAudioText `json:"outputAudioText,omitempty"`
	Payload         *Payload         `json:"payload,omitempty"`
}

// Text is a text message.
type Text struct {
	Text []string `json:"text"`
}

// OutputAudioText is SSML for speech synthesis.
type OutputAudioText struct {
	SSML string `json:"ssml"`
}

// SessionInfo sets session parameters; a nil value deletes one.
type SessionInfo struct {
	Parameters map[string]any `json:"parameters"`
}

// Render implements [channels.Adapter]: the answer's speech, the replies'
// rich content, the choices they offer (a session parameter), and the
// channel data "dialogflow-cx" merged into the response.
func (a *Adapter) Render(req *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	var w WebhookRequest
	_ = json.Unmarshal(req.Body, &w) // Parse accepted it
	res := results[0]
	out := answer(&w, voice.NewAnswer(res))
	addRich(&out, res)
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

// RenderError implements [channels.ErrorRenderer]: the apology as a text message.
func (a *Adapter) RenderError(req *channels.Request, err error) *channels.Response {
	resp, _ := respond(WebhookResponse{FulfillmentResponse: messages(voice.Apology())})
	return resp
}

func messages(ans voice.Answer) *FulfillmentResponse {
	if ans.Speech.IsZero() {
		return nil
	}
	f := &FulfillmentResponse{Messages: []Message{{Text: &Text{Text: []string{ans.Speech.Text}}}}}
	if ans.HasSSML {
		f.Messages = append(f.Messages, Message{OutputAudioText: &OutputAudioText{SSML: ans.Speech.SSML}})
	}
	return f
}

func answer(w *WebhookRequest, ans voice.Answer) WebhookResponse {
	out := WebhookResponse{FulfillmentResponse: messages(ans)}
	if ans.Failed {
		return out
	}
	params := map[string]any{"parley_intent": nil, "parley_expect": nil, choicesParam: nil}
	if !ans.End {
		if ans.Intent != "" {
			params["parley_intent"] = ans.Intent
		}
		if ans.Expect != "" {
			params["parley_expect"] = ans.Expect
		}
	}
	out.SessionInfo = &SessionInfo{Parameters: params}
	if ans.End {
		if flow, _, ok := strings.Cut(w.PageInfo.CurrentPage, "/pages/"); ok && strings.Contains(flow, "/flows/") {
			out.TargetPage = flow + "/pages/END_SESSION"
		}
	}
	return out
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
