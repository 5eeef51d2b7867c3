package meta

import (
	"net/url"
	"slices"

	"github.com/parleyhq/parley/channels"
)

// CheckSettings checks a Meta channel's settings: app_secret, verify_token
// and access_token are required, and so are the names in extra;
// api_base_url, when set, is an absolute http(s) URL; no other name is
// allowed.
func CheckSettings(channel string, s channels.Settings, extra []string) error {
	required := append([]string{SettingAppSecret, SettingVerifyToken, SettingAccessToken}, extra...)
	if err := channels.CheckSettingNames(channel, s, append(slices.Clone(required), SettingAPIBaseURL)...); err != nil {
		return err
	}
	for _, k := range required {
		if s[k] == "" {
			return channels.BadRequest("the %s channel needs %q", channel, k)
		}
	}
	return CheckBaseURL(s[SettingAPIBaseURL])
}

// CheckBaseURL accepts "" or an absolute http(s) URL without credentials.
func CheckBaseURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return channels.BadRequest("%q is an absolute http(s) URL without query or credentials", SettingAPIBaseURL)
	}
	return nil
}
