package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/channels"
)

// User tokens.
//
// A user token lets a browser talk to one bot as one user, without the
// channel's secret token. It is stateless and signed:
//
//	wt1.<base64url(bot "\n" user "\n" expiry in Unix seconds)>.<base64url(HMAC-SHA256)>
//
// The MAC key is HMAC-SHA256(server secret, "parley web user token\x00" +
// the channel's token): a token names its bot inside the signed part, so it
// never works on another bot, and changing the channel's token changes the
// key, which revokes every user token minted under the old one.

// Bounds of a user token's lifetime.
const (
	MinTokenTTL     = time.Minute
	MaxTokenTTL     = 24 * time.Hour
	DefaultTokenTTL = time.Hour
	// MaxUserLen bounds the user id a token names.
	MaxUserLen = 128
	// ConversationSep separates a token user's id from the rest of the names
	// of the user's further conversations ("alice/support"). User ids of
	// tokens never hold it, so no user's conversation is another's.
	ConversationSep = "/"
	tokenVersion    = "wt1"
	anonymousPrefix = "anon-"
)

// ErrBadToken is a user token that is malformed, forged, expired, or for
// another bot or channel token.
var ErrBadToken = errors.New("web: invalid or expired user token")

// Tokens mints and verifies user tokens with a server secret. Create it
// with [NewTokens]; it is safe for concurrent use.
type Tokens struct {
	secret []byte
}

// NewTokens returns the token signer of secret, which every replica must
// share; nil when secret is empty (user tokens are then refused).
func NewTokens(secret []byte) *Tokens {
	if len(secret) == 0 {
		return nil
	}
	return &Tokens{secret: append([]byte(nil), secret...)}
}

// key is the MAC key for tokens under channelToken.
func (t *Tokens) key(channelToken string) []byte {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("parley web user token\x00"))
	m.Write([]byte(channelToken))
	return m.Sum(nil)
}

func (t *Tokens) sign(channelToken, payload string) []byte {
	m := hmac.New(sha256.New, t.key(channelToken))
	m.Write([]byte(tokenVersion + "\n" + payload))
	return m.Sum(nil)
}

// Mint returns a token for user on bot, valid until expires, under the
// channel's token channelToken.
func (t *Tokens) Mint(bot, channelToken, user string, expires time.Time) string {
	payload := bot + "\n" + user + "\n" + strconv.FormatInt(expires.Unix(), 10)
	enc := base64.RawURLEncoding
	return tokenVersion + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(t.sign(channelToken, payload))
}

// Verify returns the user a token names, when it is well signed for bot
// under channelToken and not expired at now; else [ErrBadToken].
func (t *Tokens) Verify(bot, channelToken, token string, now time.Time) (user string, expires time.Time, err error) {
	if t == nil || channelToken == "" || len(token) > 1024 {
		return "", time.Time{}, ErrBadToken
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != tokenVersion {
		return "", time.Time{}, ErrBadToken
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(parts[1])
	mac, err2 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || !hmac.Equal(mac, t.sign(channelToken, string(payload))) {
		return "", time.Time{}, ErrBadToken
	}
	fields := strings.Split(string(payload), "\n")
	if len(fields) != 3 || fields[0] != bot || !ValidUser(fields[1]) {
		return "", time.Time{}, ErrBadToken
	}
	exp, err := strconv.ParseInt(fields[2], 10, 64)
	if err != nil {
		return "", time.Time{}, ErrBadToken
	}
	expires = time.Unix(exp, 0).UTC()
	if !now.Before(expires) {
		return "", time.Time{}, ErrBadToken
	}
	return fields[1], expires, nil
}

// ValidUser reports whether id may be a token's user: 1 to [MaxUserLen]
// characters of letters, digits and "._@+-" (never [ConversationSep]).
func ValidUser(id string) bool {
	if id == "" || len(id) > MaxUserLen {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("._@+-", r):
		default:
			return false
		}
	}
	return true
}

// OwnsConversation reports whether conversation belongs to a token's user:
// it is the user's id, or the id, [ConversationSep] and more.
func OwnsConversation(user, conversation string) bool {
	if conversation == user {
		return true
	}
	rest, ok := strings.CutPrefix(conversation, user+ConversationSep)
	return ok && rest != ""
}

// AnonymousUser returns a fresh random user id for an anonymous visitor.
func AnonymousUser() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return anonymousPrefix + hex.EncodeToString(b), nil
}

// TokenTTL reads a requested lifetime in seconds: 0 is the default, others
// must lie within [MinTokenTTL] and [MaxTokenTTL].
func TokenTTL(seconds int64) (time.Duration, error) {
	if seconds == 0 {
		return DefaultTokenTTL, nil
	}
	if seconds < int64(MinTokenTTL/time.Second) || seconds > int64(MaxTokenTTL/time.Second) {
		return 0, channels.BadRequest("\"ttl_seconds\" must be between %d and %d", int64(MinTokenTTL/time.Second),
			int64(MaxTokenTTL/time.Second))
	}
	return time.Duration(seconds) * time.Second, nil
}

// Forbidden is a request whose token may not act as the user or on the
// conversation it names.
func Forbidden(format string, args ...any) error {
	return &channels.Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}
