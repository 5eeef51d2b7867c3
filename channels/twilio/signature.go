package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/url"
	"sort"
	"strings"
)

// SignatureHeader is the header Twilio signs webhook requests with.
const SignatureHeader = "X-Twilio-Signature"

// Signature computes the signature of a form-encoded webhook request:
// base64(HMAC-SHA1(authToken, url + name1 + value1 + name2 + value2 ...)),
// with the POST parameters sorted by name (byte order), the values of a
// repeated name sorted too, nothing between them. url is the full URL as
// Twilio requested it, query included; for GET requests params is empty.
func Signature(authToken, url string, params url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(url))
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		values := append([]string(nil), params[name]...)
		sort.Strings(values)
		for _, v := range values {
			mac.Write([]byte(name))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether signature is Twilio's for a form request to
// rawURL with params. Twilio may or may not have included the port, so the
// URL is tried with its port removed and with the scheme's default port
// added. The comparison is constant-time; an empty token or signature is
// never valid.
func ValidSignature(authToken, rawURL string, params url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	ok := false
	for _, u := range portVariants(rawURL) {
		if hmac.Equal([]byte(Signature(authToken, u, params)), []byte(signature)) {
			ok = true
		}
	}
	return ok
}

// ValidBodySignature reports whether signature is Twilio's for a request with
// a JSON body: the URL carries the body's hex SHA-256 as the bodySHA256
// query parameter, which must match body, and the signature covers the URL
// alone.
func ValidBodySignature(authToken, rawURL string, body []byte, signature string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	want := u.Query().Get("bodySHA256")
	sum := sha256.Sum256(body)
	if want == "" || subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return false
	}
	return ValidSignature(authToken, rawURL, nil, signature)
}

// portVariants is rawURL as given, without its port and with the default port.
func portVariants(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return []string{rawURL}
	}
	host, port := u.Hostname(), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	without := *u
	without.Host = host
	with := *u
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			with.Host = net.JoinHostPort(u.Hostname(), "443")
		case "http":
			with.Host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	out := []string{rawURL}
	for _, v := range []string{without.String(), with.String()} {
		if v != out[len(out)-1] && v != rawURL {
			out = append(out, v)
		}
	}
	return out
}
