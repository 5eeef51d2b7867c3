package discord

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/edwards25519"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "discord"

// Headers Discord signs requests with.
const (
	SignatureHeader = "X-Signature-Ed25519"
	TimestampHeader = "X-Signature-Timestamp"
)

// Settings. The bot token and the API's address are only needed to push
// messages (see [Adapter.Send]).
const (
	SettingPublicKey     = "public_key"
	SettingApplicationID = "application_id"
	SettingBotToken      = "bot_token"
	SettingAPIBaseURL    = "api_base_url"
)

// DefaultBudget is how long a turn may take: Discord waits 3 seconds for
// the interaction response, less half a second for the network.
const DefaultBudget = 2500 * time.Millisecond

// DefaultMaxSkew is how far a request's signed timestamp may be from the
// clock; a replayed request outside it is refused.
const DefaultMaxSkew = 5 * time.Minute

// Interaction types.
const (
	typePing         = 1
	typeCommand      = 2
	typeComponent    = 3
	typeAutocomplete = 4
	typeModalSubmit  = 5
)

// Interaction response types.
const (
	responsePong          = 1
	responseMessage       = 4
	responseDeferUpdate   = 6
	responseAutocomplete  = 8
	flagEphemeral         = 64
	componentActionRow    = 1
	componentButton       = 2
	buttonPrimary         = 1
	maxContent            = 2000
	maxButtonsPerRow      = 5
	maxRows               = 5
	maxLabel              = 80
	maxCustomID           = 100
	maxID                 = 64
	maxInboundText        = 8192
	maxOptions            = 25
	ephemeralNoReply      = "\u2713" // a check mark: the command ran without a reply
	errorApology          = "Sorry, something went wrong. Please try again."
	commandOptionSubGroup = 2
	commandOptionSub      = 1
)

// Config configures an [Adapter]. The zero value is the production default.
type Config struct {
	// Budget bounds a whole turn; zero means DefaultBudget.
	Budget time.Duration
	// MaxSkew bounds the distance between the signed timestamp and the
	// request's clock; zero means DefaultMaxSkew, negative turns the check off.
	MaxSkew time.Duration
	// Client sends pushed messages (default: a client with a 10s timeout).
	Client *http.Client
}

// Adapter implements [channels.Adapter], [channels.Configurer],
// [channels.Budgeter], [channels.ErrorRenderer] and [channels.Sender] for
// Discord.
type Adapter struct {
	budget, skew time.Duration
	client       *http.Client
}

// New returns the Discord adapter.
func New(cfg Config) *Adapter {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	cfg.Client = channels.SendClient(cfg.Client)
	return &Adapter{budget: cfg.Budget, skew: cfg.MaxSkew, client: cfg.Client}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// Budget implements [channels.Budgeter].
func (a *Adapter) Budget() time.Duration { return a.budget }

// SecretSettings implements [channels.Configurer]: the bot token (the
// public key is public).
func (*Adapter) SecretSettings() []string { return []string{SettingBotToken} }

// SettingKinds implements [channels.Typed]: the application id is a number.
func (*Adapter) SettingKinds() map[string]channels.Kind {
	return map[string]channels.Kind{SettingApplicationID: channels.KindNumber, SettingDeferReplies: channels.KindBool}
}

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingPublicKey, SettingApplicationID, SettingBotToken, SettingAPIBaseURL,
		SettingDeferReplies); err != nil {
		return err
	}
	if err := validatePush(s); err != nil {
		return err
	}
	if _, err := publicKey(s[SettingPublicKey]); err != nil {
		return channels.BadRequest("the discord channel needs %q: the application's public key, 64 hex digits (%v)", SettingPublicKey, err)
	}
	if id := s[SettingApplicationID]; id != "" {
		if _, err := strconv.ParseUint(id, 10, 64); err != nil {
			return channels.BadRequest("%q is the application's numeric id", SettingApplicationID)
		}
	}
	return nil
}

// publicKey decodes a hex Ed25519 public key, refusing the points of small
// order (the identity among them): under such a key a signature can be
// made for any message without a private key.
func publicKey(h string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not a hex Ed25519 public key")
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("not an Ed25519 public key: %w", err)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("the public key is a point of small order, which verifies forged signatures")
	}
	return ed25519.PublicKey(b), nil
}

// ValidSignature reports whether signature (hex) is the Ed25519 signature of
// timestamp followed by body under the public key (hex).
func ValidSignature(publicKeyHex, timestamp string, body []byte, signature string) bool {
	key, err := publicKey(publicKeyHex)
	if err != nil || timestamp == "" {
		return false
	}
	sig, err := hex.DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	msg := make([]byte, 0, len(timestamp)+len(body))
	msg = append(append(msg, timestamp...), body...)
	return ed25519.Verify(key, msg, sig)
}

// verified checks the signature and, unless turned off, the timestamp's skew.
func (a *Adapter) verified(req *channels.Request) bool {
	ts := req.Header.Get(TimestampHeader)
	if !ValidSignature(req.Settings[SettingPublicKey], ts, req.Body, req.Header.Get(SignatureHeader)) {
		return false
	}
	if a.skew < 0 {
		return true
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := req.Now.Sub(time.Unix(sec, 0))
	return d <= a.skew && d >= -a.skew
}

// Parse implements [channels.Adapter].
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "the discord channel takes POST"}
	}
	if !a.verified(req) {
		return nil, channels.Unauthorized("invalid request signature")
	}
	in, err := ParseInteraction(req.Body)
	if err != nil {
		return nil, err
	}
	if app := req.Settings[SettingApplicationID]; app != "" && in.applicationID != "" && in.applicationID != app {
		return nil, channels.Unauthorized("the interaction is for another application")
	}
	if in.Event != nil {
		in.Event.Bot, in.Event.Channel = req.Bot, Name
		if deferReplies(req.Settings) {
			return deferred(in.Event), nil
		}
		return &channels.Inbound{Events: []*msg.Event{in.Event}}, nil
	}
	return &channels.Inbound{Response: in.Response}, nil
}

// Parsed is an interaction as Parley understands it: an event to run, or an
// immediate response (PONG, an empty autocomplete, a silent acknowledgement).
type Parsed struct {
	Event         *msg.Event
	Response      *channels.Response
	applicationID string
}

type interaction struct {
	ID            string `json:"id"`
	ApplicationID string `json:"application_id"`
	Type          int    `json:"type"`
	ChannelID     string `json:"channel_id"`
	GuildID       string `json:"guild_id"`
	Locale        string `json:"locale"`
	Member        *struct {
		User *user `json:"user"`
	} `json:"member"`
	User    *user `json:"user"`
	Message *struct {
		Components []Component `json:"components"`
	} `json:"message"`
	Data struct {
		Name          string   `json:"name"`
		Options       []option `json:"options"`
		CustomID      string   `json:"custom_id"`
		ComponentType int      `json:"component_type"`
		Values        []string `json:"values"`
	} `json:"data"`
}

type user struct {
	ID  string `json:"id"`
	Bot bool   `json:"bot"`
}

type option struct {
	Name    string          `json:"name"`
	Type    int             `json:"type"`
	Value   json.RawMessage `json:"value"`
	Options []option        `json:"options"`
}

// ParseInteraction normalizes a verified interaction body.
func ParseInteraction(body []byte) (*Parsed, error) {
	var in interaction
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, channels.BadRequest("body is not a Discord interaction: %v", err)
	}
	p := &Parsed{applicationID: in.ApplicationID}
	switch in.Type {
	case typePing:
		p.Response = jsonResponse(map[string]int{"type": responsePong})
		return p, nil
	case typeAutocomplete:
		p.Response = jsonResponse(map[string]any{"type": responseAutocomplete, "data": map[string]any{"choices": []any{}}})
		return p, nil
	case typeCommand, typeComponent:
	default: // modal submits and types Parley does not send
		p.Response = jsonResponse(map[string]int{"type": responseDeferUpdate})
		return p, nil
	}
	if in.ID == "" || len(in.ID) > maxID || len(in.ChannelID) > maxID {
		return nil, channels.BadRequest("the interaction has no id")
	}
	u := in.User
	if in.Member != nil && in.Member.User != nil {
		u = in.Member.User
	}
	if u == nil || u.ID == "" || len(u.ID) > maxID || u.Bot {
		p.Response = jsonResponse(map[string]int{"type": responseDeferUpdate})
		return p, nil
	}
	conv := in.ChannelID
	if conv == "" {
		conv = "dm:" + u.ID
	}
	ev := &msg.Event{ID: in.ID, User: u.ID, Conversation: conv, Locale: in.Locale, Raw: body}
	if t, err := snowflakeTime(in.ID); err == nil {
		ev.Timestamp = t
	}
	if in.Type == typeCommand {
		ev.Intent, ev.Confidence = in.Data.Name, 1
		ev.Slots = map[string]string{}
		words := []string{"/" + in.Data.Name}
		flatten(in.Data.Options, ev.Slots, &words, 0)
		ev.Text = strings.Join(words, " ")
		if len(ev.Slots) == 0 {
			ev.Slots = nil
		}
	} else if len(in.Data.Values) > 0 {
		ev.Text = strings.Join(in.Data.Values, ", ")
	} else if in.Data.CustomID != "" {
		// A button: an option is its text, a payload (or a reference to a
		// long one) a press, with the button's label as text.
		var rows []Component
		if in.Message != nil {
			rows = in.Message.Components
		}
		channels.Pressed(ev, in.Data.CustomID, buttonLabel(rows, in.Data.CustomID))
	}
	if ev.Intent == "" && ev.Text == "" && ev.Postback == "" && ev.Choice == "" ||
		len(ev.Text) > maxInboundText || !utf8.ValidString(ev.Text) || len(ev.Postback) > maxInboundText {
		return nil, channels.BadRequest("the interaction has no command, button or value")
	}
	p.Event = ev
	return p, nil
}

// flatten adds command options to slots, and subcommand names and option
// values to words.
func flatten(opts []option, slots map[string]string, words *[]string, depth int) {
	if depth > 3 {
		return
	}
	for _, o := range opts {
		if len(slots) >= maxOptions {
			return
		}
		if o.Type == commandOptionSub || o.Type == commandOptionSubGroup {
			*words = append(*words, o.Name)
			flatten(o.Options, slots, words, depth+1)
			continue
		}
		v := optionValue(o.Value)
		slots[o.Name] = v
		*words = append(*words, o.Name+":"+v)
	}
}

func optionValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // numbers and booleans as written
}

// snowflakeTime is the creation time encoded in a Discord id.
func snowflakeTime(id string) (time.Time, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	const discordEpoch = 1420070400000
	return time.UnixMilli(int64(n>>22) + discordEpoch).UTC(), nil
}

func jsonResponse(v any) *channels.Response {
	b, _ := json.Marshal(v)
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json", Body: b}
}

// Response is an interaction response.
type Response struct {
	Type int           `json:"type"`
	Data *ResponseData `json:"data,omitempty"`
}

// ResponseData is the message of an interaction response.
type ResponseData struct {
	Content    string      `json:"content"`
	Flags      int         `json:"flags,omitempty"`
	Embeds     []Embed     `json:"embeds,omitempty"`
	Components []Component `json:"components,omitempty"`
	// extra is the handler's channel_data.discord, merged into the
	// message's JSON where it is written.
	extra json.RawMessage
}

// Component is an action row or a button (with a custom_id, or a link
// button with a url).
type Component struct {
	Type       int         `json:"type"`
	Style      int         `json:"style,omitempty"`
	Label      string      `json:"label,omitempty"`
	CustomID   string      `json:"custom_id,omitempty"`
	URL        string      `json:"url,omitempty"`
	Components []Component `json:"components,omitempty"`
}

// NewResponse renders a turn's replies as one interaction response: the
// texts joined by blank lines, options and buttons as buttons (up to 25,
// five to a row; links as link buttons), cards and images as embeds (up to
// 10), and what does not fit as lines under the text (see message). A turn
// with nothing to say answers with a private check mark.
func NewResponse(res *msg.TurnResult) Response {
	var m message
	for _, r := range res.Replies {
		m.add(r)
	}
	d := m.data()
	if d.Content == "" && len(d.Components) == 0 && len(d.Embeds) == 0 {
		d.Content, d.Flags = ephemeralNoReply, flagEphemeral
	}
	return Response{Type: responseMessage, Data: d}
}

// Render implements [channels.Adapter].
func (*Adapter) Render(_ *channels.Request, results []*msg.TurnResult) (*channels.Response, error) {
	if len(results) == 0 {
		return jsonResponse(map[string]int{"type": responseDeferUpdate}), nil
	}
	r := NewResponse(results[0])
	data, err := json.Marshal(r.Data)
	if err != nil {
		return nil, err
	}
	return jsonResponse(struct {
		Type int             `json:"type"`
		Data json.RawMessage `json:"data"`
	}{r.Type, channels.MergeJSON(data, r.Data.extra)}), nil
}

// RenderError implements [channels.ErrorRenderer]: a private apology, since
// Discord shows "interaction failed" for anything else.
func (*Adapter) RenderError(*channels.Request, error) *channels.Response {
	return jsonResponse(Response{Type: responseMessage, Data: &ResponseData{Content: errorApology, Flags: flagEphemeral}})
}
