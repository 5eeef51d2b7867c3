package meta

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/channels"
)

// SignatureHeader is the header Meta signs webhook requests with.
const SignatureHeader = "X-Hub-Signature-256"

// DefaultAPIBaseURL is the Graph API root the channels send through when
// the api_base_url setting is empty.
const DefaultAPIBaseURL = "https://graph.facebook.com/v21.0"

// Setting names shared by the Meta channels.
const (
	SettingAppSecret   = "app_secret"
	SettingVerifyToken = "verify_token"
	SettingAccessToken = "access_token"
	SettingAPIBaseURL  = "api_base_url"
)

// Signature is the X-Hub-Signature-256 value of body:
// "sha256=" + lowercase hex HMAC-SHA256(appSecret, body).
func Signature(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether header is Meta's signature of the exact
// body bytes. The comparison is constant-time; an empty secret or header is
// never valid.
func ValidSignature(appSecret string, body []byte, header string) bool {
	if appSecret == "" || header == "" {
		return false
	}
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// Handshake answers Meta's subscription check, a GET with hub.mode=subscribe,
// hub.verify_token and hub.challenge: the challenge verbatim when the token
// matches, 403 otherwise. ok is false for any other request.
func Handshake(req *channels.Request, verifyToken string) (resp *channels.Response, ok bool) {
	if req.Method != http.MethodGet {
		return nil, false
	}
	var q map[string][]string
	if req.URL != nil {
		q = req.URL.Query()
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	token := get("hub.verify_token")
	if get("hub.mode") != "subscribe" || verifyToken == "" ||
		subtle.ConstantTimeCompare([]byte(token), []byte(verifyToken)) != 1 {
		return &channels.Response{Status: http.StatusForbidden, ContentType: "text/plain; charset=utf-8",
			Body: []byte("verification failed")}, true
	}
	return &channels.Response{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8",
		Body: []byte(get("hub.challenge"))}, true
}

// Ack is the answer to a verified notification: 200 with an empty JSON object.
func Ack() *channels.Response {
	return &channels.Response{Status: http.StatusOK, ContentType: "application/json", Body: []byte("{}")}
}

// BaseURL is the api_base_url setting without a trailing slash, or
// [DefaultAPIBaseURL].
func BaseURL(s channels.Settings) string {
	if u := strings.TrimRight(s[SettingAPIBaseURL], "/"); u != "" {
		return u
	}
	return DefaultAPIBaseURL
}

// maxErrorBody bounds how much of an error answer is kept in the error.
const maxErrorBody = 512

// Post sends body as JSON to url with the bearer token and classifies a
// failure as a *channels.SendError: 429, 5xx and network errors are
// retryable (with the platform's Retry-After), other statuses are not.
func Post(ctx context.Context, client *http.Client, url, token string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return &channels.SendError{Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return &channels.SendError{Retryable: ctx.Err() == nil, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	return StatusError(resp)
}

// StatusError makes a *channels.SendError of a non-2xx answer.
func StatusError(resp *http.Response) *channels.SendError {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return channels.StatusError(resp, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg)))
}

// ErrNoRecipient is a turn result that names no one to send to.
var ErrNoRecipient = errors.New("the turn has no conversation to send to")

// Truncate cuts s to at most n runes.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
