package voice

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/channels"
)

// Settings of the webhook channels without a signature of their own
// (Dialogflow ES and CX, Lex): the platform is configured to send either HTTP
// basic auth or a custom header with a secret value, and Parley checks it.
const (
	SettingUsername    = "username"
	SettingPassword    = "password"
	SettingHeaderName  = "header_name"
	SettingHeaderValue = "header_value"
)

// AuthSecrets are the authentication settings never echoed back.
var AuthSecrets = []string{SettingPassword, SettingHeaderValue}

// minSecret is the shortest password or header value accepted.
const minSecret = channels.MinSecretLen

// WebhookAuth implements the settings half of [channels.Configurer] for the
// channels authenticated by basic auth or a header secret: embed it in the
// adapter.
type WebhookAuth struct {
	// Channel names the channel in error messages.
	Channel string
}

// SecretSettings implements [channels.Configurer].
func (WebhookAuth) SecretSettings() []string { return AuthSecrets }

// ValidateSettings implements [channels.Configurer]: the authentication
// settings and nothing else.
func (w WebhookAuth) ValidateSettings(s channels.Settings) error {
	if err := channels.CheckSettingNames(w.Channel, s, SettingUsername, SettingPassword,
		SettingHeaderName, SettingHeaderValue); err != nil {
		return err
	}
	return ValidateAuth(w.Channel, s)
}

// ValidateAuth checks that s configures exactly one way to authenticate the
// platform: "username" and "password" (basic auth), or "header_name" and
// "header_value"; secrets have at least 12 characters.
func ValidateAuth(channel string, s channels.Settings) error {
	basic := s[SettingUsername] != "" || s[SettingPassword] != ""
	header := s[SettingHeaderName] != "" || s[SettingHeaderValue] != ""
	switch {
	case basic && header:
		return channels.BadRequest("the %s channel takes either username/password or header_name/header_value, not both", channel)
	case basic:
		if s[SettingUsername] == "" || strings.ContainsAny(s[SettingUsername], ":\r\n") {
			return channels.BadRequest("the %s channel needs a \"username\" without ':'", channel)
		}
		if len(s[SettingPassword]) < minSecret {
			return channels.BadRequest("the %s channel needs a \"password\" of at least %d characters", channel, minSecret)
		}
	case header:
		if !validHeaderName(s[SettingHeaderName]) {
			return channels.BadRequest("the %s channel needs a valid \"header_name\" (letters, digits and -)", channel)
		}
		if len(s[SettingHeaderValue]) < minSecret || strings.ContainsAny(s[SettingHeaderValue], "\r\n") {
			return channels.BadRequest("the %s channel needs a \"header_value\" of at least %d characters on one line", channel, minSecret)
		}
	default:
		return channels.BadRequest("the %s channel needs \"username\" and \"password\" (basic auth) or \"header_name\" and \"header_value\"", channel)
	}
	return nil
}

// validHeaderName accepts RFC 9110 token characters.
func validHeaderName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// CheckAuth verifies a request's credentials against settings validated by
// [ValidateAuth], in constant time. Failure is a 401 [channels.Error].
func CheckAuth(channel string, s channels.Settings, h http.Header) error {
	if name := s[SettingHeaderName]; name != "" {
		want := s[SettingHeaderValue]
		got := h.Values(name)
		if want == "" || len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) != 1 {
			return channels.Unauthorized("missing or wrong %s header for the %s channel", name, channel)
		}
		return nil
	}
	user, pass, ok := basicAuth(h.Get("Authorization"))
	wantUser, wantPass := s[SettingUsername], s[SettingPassword]
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(wantUser))
	passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass))
	if !ok || wantUser == "" || wantPass == "" || userOK&passOK != 1 {
		return channels.Unauthorized("missing or wrong basic auth credentials for the %s channel", channel)
	}
	return nil
}

func basicAuth(header string) (user, pass string, ok bool) {
	scheme, cred, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok
}
