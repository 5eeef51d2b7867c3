package teams

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the issuer of the tokens the Bot Framework connector sends.
const Issuer = "https://api.botframework.com"

// Verification limits.
const (
	// ClockSkew is how far a token's exp and nbf may be off the clock.
	ClockSkew = 5 * time.Minute
	// defaultKeyRefresh is how old the keys may grow (see Config.KeyRefresh).
	defaultKeyRefresh = 12 * time.Hour
	// minRefetch is how long after a fetch a token signed by an unknown key
	// may fetch the keys again: tokens with made-up key ids cannot make
	// Parley fetch more often than that.
	minRefetch = 5 * time.Minute
	// fetchTimeout bounds one fetch of the metadata or the keys.
	fetchTimeout = 10 * time.Second
	// maxDocBytes bounds the metadata and key set documents.
	maxDocBytes = 1 << 20
	// minKeyBits is the smallest RSA key accepted.
	minKeyBits = 2048
)

// VerifierConfig configures a [Verifier].
type VerifierConfig struct {
	// MetadataURL is the OpenID metadata naming the key set (jwks_uri).
	MetadataURL string
	// Client fetches the metadata and the keys.
	Client *http.Client
	// Refresh is how old the keys may grow before they are fetched again
	// (default 12 h).
	Refresh time.Duration
}

// Verifier checks the tokens the Bot Framework connector signs: RS256 only,
// by a key of the OpenID metadata's key set that is endorsed for the
// activity's channel, issued by [Issuer] to the bot's app id, within its
// validity (give or take [ClockSkew]), for the activity's serviceUrl.
//
// Keys are cached. They are fetched again when they are older than the
// refresh period, and when a token names a key the cache does not know,
// but then at most once in five minutes. A failed fetch keeps the keys
// known until then. A Verifier is safe for concurrent use.
type Verifier struct {
	cfg VerifierConfig

	fetchMu sync.Mutex // one fetch at a time
	mu      sync.RWMutex
	keys    map[string]signingKey // by kid
	fetched time.Time             // of the last fetch, good or not
	loaded  time.Time             // of the keys held
}

// signingKey is a key of the set and the channels it may sign for.
type signingKey struct {
	key          *rsa.PublicKey
	endorsements []string
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg VerifierConfig) *Verifier {
	if cfg.Refresh <= 0 {
		cfg.Refresh = defaultKeyRefresh
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: fetchTimeout}
	}
	return &Verifier{cfg: cfg}
}

// claims are the token's claims Parley checks.
type claims struct {
	jwt.RegisteredClaims
	// ServiceURL is the connector the token is for (Microsoft writes the
	// claim "serviceurl"; encoding/json matches it in any case).
	ServiceURL string `json:"serviceurl"`
}

// Verify checks token for an activity of channelID from serviceURL,
// addressed to the bot appID, at now.
func (v *Verifier) Verify(token, appID, channelID, serviceURL string, now time.Time) error {
	if appID == "" {
		return errors.New("the bot has no app_id")
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(appID),
		jwt.WithLeeway(ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	var c claims
	_, err := parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("the token names no key")
		}
		k, err := v.key(kid, now)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(k.endorsements, channelID) {
			return nil, fmt.Errorf("key %q is not endorsed for channel %q", kid, channelID)
		}
		return k.key, nil
	})
	if err != nil {
		return err
	}
	if c.ServiceURL != serviceURL {
		return fmt.Errorf("the token is for serviceUrl %q, the activity comes from %q", c.ServiceURL, serviceURL)
	}
	return nil
}

// key returns the key kid, fetching the key set when the cache is old or
// does not know kid (at most once per minRefetch for that).
func (v *Verifier) key(kid string, now time.Time) (signingKey, error) {
	k, ok, stale, mayFetch := v.lookup(kid, now)
	if ok && !stale {
		return k, nil
	}
	if mayFetch {
		v.refresh(kid, now)
		k, ok, _, _ = v.lookup(kid, now)
	}
	if !ok {
		return signingKey{}, fmt.Errorf("unknown signing key %q", kid)
	}
	return k, nil
}

func (v *Verifier) lookup(kid string, now time.Time) (k signingKey, ok, stale, mayFetch bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	k, ok = v.keys[kid]
	stale = v.keys == nil || now.Sub(v.loaded) >= v.cfg.Refresh || now.Before(v.loaded)
	sinceFetch := now.Sub(v.fetched)
	mayFetch = v.fetched.IsZero() || stale && sinceFetch >= time.Minute || !ok && (sinceFetch >= minRefetch || sinceFetch < 0)
	return k, ok, stale, mayFetch
}

// refresh fetches the key set, unless another call did while this one
// waited for its turn.
func (v *Verifier) refresh(kid string, now time.Time) {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	if _, ok, stale, mayFetch := v.lookup(kid, now); ok && !stale || !mayFetch {
		return
	}
	keys, err := v.fetch()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetched = now
	if err == nil {
		v.keys, v.loaded = keys, now
	}
}

// fetch reads the metadata, then the key set it names. The fetch is shared
// by every request waiting for it, so it runs on a context of its own.
func (v *Verifier) fetch() (map[string]signingKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.cfg.MetadataURL, &meta); err != nil {
		return nil, fmt.Errorf("openid metadata: %w", err)
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("openid metadata: jwks_uri %q is not an http(s) URL", meta.JWKSURI)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	keys := make(map[string]signingKey, len(set.Keys))
	for _, raw := range set.Keys {
		kid, k, err := parseJWK(raw)
		if err == nil {
			keys[kid] = k
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("key set: no usable RSA signing key")
	}
	return keys, nil
}

func (v *Verifier) getJSON(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxDocBytes {
		return fmt.Errorf("GET %s: larger than %d bytes", u, maxDocBytes)
	}
	return json.Unmarshal(body, into)
}

// jwk is an RSA key of the set, with the Bot Framework's endorsements.
type jwk struct {
	Kty          string   `json:"kty"`
	Use          string   `json:"use"`
	Kid          string   `json:"kid"`
	N            string   `json:"n"`
	E            string   `json:"e"`
	Endorsements []string `json:"endorsements"`
}

// parseJWK reads an RSA signing key (n and e) and its endorsements.
func parseJWK(raw json.RawMessage) (string, signingKey, error) {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", signingKey{}, err
	}
	if k.Kty != "RSA" || k.Kid == "" || k.Use != "" && k.Use != "sig" {
		return "", signingKey{}, errors.New("not an RSA signing key")
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return "", signingKey{}, fmt.Errorf("modulus: %w", err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return "", signingKey{}, errors.New("bad exponent")
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if pub.N.BitLen() < minKeyBits || exp < 3 || exp%2 == 0 {
		return "", signingKey{}, errors.New("weak RSA key")
	}
	return k.Kid, signingKey{key: pub, endorsements: k.Endorsements}, nil
}
