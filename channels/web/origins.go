package web

import (
	"net/url"
	"strings"

	"github.com/parleyhq/parley/channels"
)

// maxOrigins bounds the allowed_origins setting.
const maxOrigins = 32

// ParseOrigins reads the allowed_origins setting: exact origins
// (scheme://host[:port], http or https, no path, query, user or wildcard),
// separated by commas. It returns them normalized as browsers send them in
// the Origin header: lowercase, without a default port.
func ParseOrigins(setting string) ([]string, error) {
	if strings.TrimSpace(setting) == "" {
		return nil, nil
	}
	parts := strings.Split(setting, ",")
	if len(parts) > maxOrigins {
		return nil, channels.BadRequest("\"allowed_origins\" holds at most %d origins", maxOrigins)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		o, ok := normalizeOrigin(strings.TrimSpace(p))
		if !ok {
			return nil, channels.BadRequest("\"allowed_origins\": %q is not an origin such as https://shop.example.com "+
				"(scheme, host and optional port; no path, no wildcard)", channels.Quote([]byte(strings.TrimSpace(p))))
		}
		out = append(out, o)
	}
	return out, nil
}

// normalizeOrigin checks one origin and writes it as a browser does.
func normalizeOrigin(s string) (string, bool) {
	if s == "" || strings.ContainsAny(s, "*\\ ") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
		u.ForceQuery || u.Host == "" || u.Hostname() == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") { // IPv6
		host = "[" + host + "]"
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, true
	}
	return scheme + "://" + host, true
}

// OriginAllowed reports whether a browser's Origin header names one of the
// channel's allowed origins. An empty or malformed origin never is.
func OriginAllowed(s channels.Settings, origin string) bool {
	if origin == "" {
		return false
	}
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	allowed, err := ParseOrigins(s["allowed_origins"])
	if err != nil {
		return false
	}
	for _, a := range allowed {
		if a == o {
			return true
		}
	}
	return false
}

// AllowsAnonymous reports whether the channel lets browsers of its allowed
// origins open anonymous sessions.
func AllowsAnonymous(s channels.Settings) bool { return s["allow_anonymous"] == "true" }
