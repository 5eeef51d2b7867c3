package teams

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Name is the channel's name in URLs and settings.
const Name = "teams"

// Settings, as the Azure portal and the Teams Developer Portal name them.
const (
	// SettingAppID is the bot's Microsoft App ID: the audience of the
	// connector's tokens and the client id of Parley's own.
	SettingAppID = "app_id"
	// SettingAppPassword is the bot's client secret.
	SettingAppPassword = "app_password"
	// SettingTenantID is the bot's Entra tenant, for a single-tenant app:
	// its outbound tokens come from that tenant.
	SettingTenantID = "tenant_id"
)

// Server-wide defaults (see [Config]).
const (
	// DefaultOpenIDMetadataURL is the Bot Framework's OpenID metadata, which
	// names the keys that sign the connector's tokens.
	DefaultOpenIDMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	// DefaultTokenURL is the Entra token endpoint; {tenant} is the bot's
	// tenant_id, or botframework.com for a multi-tenant app.
	DefaultTokenURL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
	// DefaultServiceURL is where messages go that answer no activity
	// (schedules, pushes): the Teams connector of the public cloud.
	DefaultServiceURL = "https://smba.trafficmanager.net/teams/"
	// multiTenant stands in for {tenant} without a tenant_id.
	multiTenant = "botframework.com"
)

// Config configures an [Adapter]. Zero fields take their defaults.
type Config struct {
	// Client fetches keys and tokens and sends replies (default: a client
	// with a 10 s timeout).
	Client *http.Client
	// OpenIDMetadataURL is the Bot Framework's OpenID metadata (default
	// [DefaultOpenIDMetadataURL]). It is server configuration, never a
	// bot's setting: the keys it names are trusted for every bot.
	OpenIDMetadataURL string
	// TokenURL is the token endpoint, with {tenant} standing for the bot's
	// tenant (default [DefaultTokenURL]).
	TokenURL string
	// ServiceURL is where pushes go, which answer no activity (default
	// [DefaultServiceURL]).
	ServiceURL string
	// KeyRefresh is how old the signing keys may grow before they are
	// fetched again (default 12 h; Microsoft asks for at least once a day).
	KeyRefresh time.Duration
	// Clock tells the time of the token cache (default time.Now).
	Clock func() time.Time
}

// Adapter implements [channels.Adapter], [channels.Configurer] and
// [channels.Sender] for Microsoft Teams (the Bot Framework protocol).
type Adapter struct {
	client     *http.Client
	verifier   *Verifier
	tokens     *tokenCache
	serviceURL string
}

var (
	_ channels.Adapter    = (*Adapter)(nil)
	_ channels.Configurer = (*Adapter)(nil)
	_ channels.Sender     = (*Adapter)(nil)
)

// New returns the Teams adapter.
func New(cfg Config) *Adapter {
	client := channels.SendClient(cfg.Client)
	if cfg.OpenIDMetadataURL == "" {
		cfg.OpenIDMetadataURL = DefaultOpenIDMetadataURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.ServiceURL == "" {
		cfg.ServiceURL = DefaultServiceURL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Adapter{
		client:     client,
		verifier:   NewVerifier(VerifierConfig{MetadataURL: cfg.OpenIDMetadataURL, Client: client, Refresh: cfg.KeyRefresh}),
		tokens:     newTokenCache(client, cfg.TokenURL, cfg.Clock),
		serviceURL: cfg.ServiceURL,
	}
}

// Name implements [channels.Adapter].
func (*Adapter) Name() string { return Name }

// SecretSettings implements [channels.Configurer].
func (*Adapter) SecretSettings() []string { return []string{SettingAppPassword} }

var (
	// appIDPattern is a Microsoft App ID: a GUID.
	appIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// tenantPattern is a tenant's GUID or one of its domain names; it goes
	// into the token URL's path.
	tenantPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

// ValidateSettings implements [channels.Configurer].
func (*Adapter) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(Name, s, SettingAppID, SettingAppPassword, SettingTenantID); err != nil {
		return err
	}
	if !appIDPattern.MatchString(s[SettingAppID]) {
		return channels.BadRequest("the teams channel needs \"app_id\", the bot's Microsoft App ID (a GUID)")
	}
	if len(s[SettingAppPassword]) < channels.MinSecretLen {
		return channels.BadRequest("the teams channel needs \"app_password\", the bot's client secret (at least %d characters)", channels.MinSecretLen)
	}
	if t := s[SettingTenantID]; t != "" && !tenantPattern.MatchString(t) {
		return channels.BadRequest("\"tenant_id\" must be the tenant's id (a GUID) or domain name")
	}
	return nil
}

// ack is the empty 200 the connector expects.
var ack = &channels.Response{Status: http.StatusOK}

// Parse implements [channels.Adapter]: it verifies the connector's token
// (see [Verifier]) and turns message activities into events processed
// asynchronously. Other activities are acknowledged and ignored.
func (a *Adapter) Parse(req *channels.Request) (*channels.Inbound, error) {
	if req.Method != http.MethodPost {
		return nil, &channels.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the Bot Framework posts its activities"}
	}
	token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, channels.Unauthorized("missing Bot Framework bearer token")
	}
	act, err := DecodeActivity(req.Body)
	if err != nil {
		return nil, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := a.verifier.Verify(token, req.Settings[SettingAppID], act.ChannelID, act.ServiceURL, now); err != nil {
		return nil, channels.Unauthorized("Bot Framework token refused: %v", err)
	}
	if !ServiceURLAllowed(act.ServiceURL) {
		return nil, channels.Unauthorized("the activity's serviceUrl is not an https URL")
	}
	in := Normalize(act, req.Body)
	for _, ev := range in.Events {
		ev.Bot, ev.Channel = req.Bot, Name
		if ev.Timestamp.IsZero() {
			ev.Timestamp = now.UTC()
		}
	}
	return in, nil
}

// Render implements [channels.Adapter]: the activity is only acknowledged;
// replies go through [Adapter.Send].
func (*Adapter) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return ack, nil
}

// Activity is the part of an inbound Bot Framework activity Parley reads.
type Activity struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Timestamp    string          `json:"timestamp"`
	ServiceURL   string          `json:"serviceUrl"`
	ChannelID    string          `json:"channelId"`
	From         Account         `json:"from"`
	Conversation Conversation    `json:"conversation"`
	Recipient    Account         `json:"recipient"`
	Text         string          `json:"text"`
	Locale       string          `json:"locale"`
	ReplyToID    string          `json:"replyToId"`
	Entities     []Entity        `json:"entities"`
	Value        json.RawMessage `json:"value"`
}

// Account is a user or bot account of an activity.
type Account struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	AADObjectID string `json:"aadObjectId,omitempty"`
	Role        string `json:"role,omitempty"`
}

// Conversation is an activity's conversation.
type Conversation struct {
	ID               string `json:"id"`
	ConversationType string `json:"conversationType,omitempty"`
	IsGroup          bool   `json:"isGroup,omitempty"`
	TenantID         string `json:"tenantId,omitempty"`
}

// Entity is an entity of an activity; Parley reads mentions.
type Entity struct {
	Type      string   `json:"type"`
	Text      string   `json:"text"`
	Mentioned *Account `json:"mentioned"`
}

// DecodeActivity reads an activity's JSON. A body that is no activity is a
// 400 [channels.Error].
func DecodeActivity(body []byte) (*Activity, error) {
	var act Activity
	if err := json.Unmarshal(body, &act); err != nil {
		return nil, channels.BadRequest("body is not a Bot Framework activity: %v", err)
	}
	if act.Type == "" || act.ChannelID == "" || act.ServiceURL == "" {
		return nil, channels.BadRequest("a Bot Framework activity needs type, channelId and serviceUrl")
	}
	return &act, nil
}

// Limits on what an activity may carry into a turn.
const (
	maxIDLen       = 1024     // activity and conversation ids
	maxPostbackLen = 16 << 10 // an Action.Submit value as a postback
	maxMentions    = 8        // the bot's mentions removed from a text
)

// Normalize makes events of a verified activity: a message with text is a
// text event, a message with a value (an Adaptive Card's Action.Submit, a
// messageBack) a button press; everything else is acknowledged and
// ignored. body is the activity as received, kept as the event's Raw.
func Normalize(act *Activity, body []byte) *channels.Inbound {
	ignored := &channels.Inbound{Response: ack}
	if act.Type != "message" || act.ID == "" || act.Conversation.ID == "" || act.From.ID == "" ||
		len(act.ID) > maxIDLen || len(act.Conversation.ID) > maxIDLen {
		return ignored
	}
	if act.From.ID == act.Recipient.ID || act.From.Role == "bot" {
		return ignored // the bot's own messages, and other bots'
	}
	user := act.From.AADObjectID
	if user == "" {
		user = act.From.ID
	}
	ev := &msg.Event{ID: act.Conversation.ID + "|" + act.ID, User: user, Conversation: act.Conversation.ID,
		Text: strings.TrimSpace(stripMention(act.Text, act.Entities, act.Recipient.ID)), Locale: act.Locale,
		Raw: json.RawMessage(body)}
	if t, err := time.Parse(time.RFC3339Nano, act.Timestamp); err == nil {
		ev.Timestamp = t.UTC()
	}
	if !pressed(ev, act.Value) {
		if ev.Text == "" {
			return ignored // an attachment without text, say
		}
		// A card too heavy for Teams is sent as text, its buttons as
		// numbered lines: a bare number answers them.
		channels.NumberedAnswer(ev)
	}
	return &channels.Inbound{Events: []*msg.Event{ev}, Response: ack, Async: true}
}

// stripMention removes the bot's own mentions ("<at>Parley</at>") from a
// message's text: in channels and group chats the bot hears only what
// mentions it.
func stripMention(text string, entities []Entity, bot string) string {
	if bot == "" {
		return text
	}
	stripped := 0
	for _, e := range entities {
		if e.Type == "mention" && e.Mentioned != nil && e.Mentioned.ID == bot && e.Text != "" {
			text = strings.ReplaceAll(text, e.Text, "")
			if stripped++; stripped == maxMentions {
				break // each pass reads the whole text
			}
		}
	}
	return text
}

// Keys of the data of the Action.Submit buttons Parley renders.
const (
	dataValue = "parley"       // channels.OptionValue or channels.PayloadValue
	dataTitle = "parley_title" // the button's title
)

// pressed reads an activity's value onto ev: Parley's own buttons carry
// the value channels.Pressed reads, with the button's title; any other
// value (a handler's own card, a messageBack) is the postback as is, a
// string as its text, anything else as compact JSON. ok is false when the
// activity has no value, or one too long to be a postback.
func pressed(ev *msg.Event, raw json.RawMessage) (ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	var own map[string]json.RawMessage
	if json.Unmarshal(raw, &own) == nil {
		var value, title string
		if json.Unmarshal(own[dataValue], &value) == nil && value != "" {
			_ = json.Unmarshal(own[dataTitle], &title)
			channels.Pressed(ev, value, title)
			return true
		}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" || len(s) > maxPostbackLen {
			return false
		}
		ev.Postback = s
		return true
	}
	var compact bytes.Buffer
	if json.Compact(&compact, raw) != nil || compact.Len() > maxPostbackLen {
		return false
	}
	ev.Postback = compact.String()
	return true
}

// ServiceURLAllowed reports whether the connector's serviceUrl may receive
// Parley's bearer tokens: an https URL, or http on the loopback interface
// (a local connector, in tests).
func ServiceURLAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return false
}
