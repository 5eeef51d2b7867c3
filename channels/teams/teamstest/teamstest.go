// Package teamstest is a fake Bot Framework for the tests of the Teams
// channel: an authority that serves OpenID metadata and a key set with
// endorsements, signs connector tokens with locally minted RSA keys and
// issues client-credentials tokens, and a connector that receives the
// bot's activities and checks their bearer tokens.
package teamstest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the Bot Framework's token issuer.
const Issuer = "https://api.botframework.com"

// Key is a signing key of the authority's key set.
type Key struct {
	ID           string
	Private      *rsa.PrivateKey
	Endorsements []string
}

// Authority is a fake of login.botframework.com (metadata and keys) and of
// the Entra token endpoint. Its fields may be changed between requests
// through its methods.
type Authority struct {
	*httptest.Server
	t testing.TB

	mu            sync.Mutex
	keys          []Key
	keyFetches    int
	tokenRequests int
	tokens        map[string]string // issued token -> client id
	expiresIn     int
	tokenStatus   int
}

// NewAuthority starts an authority with one key ("key-1", endorsed for
// msteams), closed when the test ends.
func NewAuthority(t testing.TB) *Authority {
	a := &Authority{t: t, tokens: map[string]string{}, expiresIn: 3600}
	a.keys = []Key{NewKey(t, "key-1", "msteams")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/.well-known/openidconfiguration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"issuer": Issuer, "jwks_uri": a.URL + "/v1/.well-known/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /v1/.well-known/keys", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		a.keyFetches++
		var set []map[string]any
		for _, k := range a.keys {
			set = append(set, map[string]any{"kty": "RSA", "use": "sig", "kid": k.ID,
				"n":            base64.RawURLEncoding.EncodeToString(k.Private.N.Bytes()),
				"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Private.E)).Bytes()),
				"endorsements": k.Endorsements})
		}
		a.mu.Unlock()
		writeJSON(w, map[string]any{"keys": set})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		a.mu.Lock()
		defer a.mu.Unlock()
		a.tokenRequests++
		if a.tokenStatus != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.tokenStatus)
			_, _ = io.WriteString(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		if form.Get("grant_type") != "client_credentials" || form.Get("scope") != "https://api.botframework.com/.default" ||
			form.Get("client_id") == "" || form.Get("client_secret") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		tok := "access-" + r.PathValue("tenant") + "-" + strconv.Itoa(a.tokenRequests)
		a.tokens[tok] = form.Get("client_id")
		writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": a.expiresIn, "ext_expires_in": a.expiresIn, "access_token": tok})
	})
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

// NewKey mints an RSA key endorsed for channels.
func NewKey(t testing.TB, id string, endorsements ...string) Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Private: k, Endorsements: endorsements}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// MetadataURL is the OpenID metadata's URL.
func (a *Authority) MetadataURL() string { return a.URL + "/v1/.well-known/openidconfiguration" }

// TokenURL is the token endpoint, with {tenant} for the bot's tenant.
func (a *Authority) TokenURL() string { return a.URL + "/{tenant}/oauth2/v2.0/token" }

// SetKeys replaces the key set.
func (a *Authority) SetKeys(keys ...Key) {
	a.mu.Lock()
	a.keys = keys
	a.mu.Unlock()
}

// Key returns the key set's first key.
func (a *Authority) Key() Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys[0]
}

// KeyFetches counts the fetches of the key set.
func (a *Authority) KeyFetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keyFetches
}

// TokenRequests counts the token requests.
func (a *Authority) TokenRequests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokenRequests
}

// SetExpiresIn sets the lifetime of the tokens issued next, in seconds.
func (a *Authority) SetExpiresIn(s int) {
	a.mu.Lock()
	a.expiresIn = s
	a.mu.Unlock()
}

// SetTokenStatus makes the token endpoint answer with status (0: issue).
func (a *Authority) SetTokenStatus(status int) {
	a.mu.Lock()
	a.tokenStatus = status
	a.mu.Unlock()
}

// Issued reports the client id a token was issued to.
func (a *Authority) Issued(token string) (clientID string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	clientID, ok = a.tokens[token]
	return clientID, ok
}

// Claims are the claims of a connector token. The audience is one string,
// as the connector writes it (golang-jwt would write a list).
type Claims struct {
	Issuer     string
	Audience   string
	IssuedAt   *jwt.NumericDate
	NotBefore  *jwt.NumericDate
	ExpiresAt  *jwt.NumericDate
	ServiceURL string
}

// ConnectorClaims are the claims the connector puts in a token for the bot
// appID and an activity from serviceURL, valid for an hour from now.
func ConnectorClaims(appID, serviceURL string, now time.Time) Claims {
	return Claims{
		Issuer:     Issuer,
		Audience:   appID,
		IssuedAt:   jwt.NewNumericDate(now.Add(-time.Minute)),
		NotBefore:  jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt:  jwt.NewNumericDate(now.Add(time.Hour)),
		ServiceURL: serviceURL,
	}
}

// Map is c as the token's claims; unset ones are left out.
func (c Claims) Map() jwt.MapClaims {
	m := jwt.MapClaims{"iss": c.Issuer, "aud": c.Audience, "serviceurl": c.ServiceURL}
	for k, v := range map[string]*jwt.NumericDate{"iat": c.IssuedAt, "nbf": c.NotBefore, "exp": c.ExpiresAt} {
		if v != nil {
			m[k] = v.Unix()
		}
	}
	return m
}

// Sign signs claims with key k (RS256), naming it in the header.
func Sign(t testing.TB, k Key, c Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c.Map())
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Token is a valid connector token for the bot appID and an activity from
// serviceURL, signed with the authority's first key.
func (a *Authority) Token(appID, serviceURL string) string {
	return Sign(a.t, a.Key(), ConnectorClaims(appID, serviceURL, time.Now()))
}

// Connector is a fake Bot Connector: it records the activities posted to
// it and refuses those without a token the authority issued.
type Connector struct {
	*httptest.Server
	auth *Authority

	mu     sync.Mutex
	posts  []Post
	status int
	header http.Header
}

// Post is one activity the connector received.
type Post struct {
	Path     string
	ClientID string // of the bearer token
	Activity map[string]any
	Body     []byte
}

// NewConnector starts a connector, closed when the test ends.
func NewConnector(t testing.TB, auth *Authority) *Connector {
	c := &Connector{auth: auth, header: http.Header{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tok, ok := cutBearer(r.Header.Get("Authorization"))
		client, issued := auth.Issued(tok)
		if !ok || !issued {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c.mu.Lock()
		status := c.status
		for k, v := range c.header {
			w.Header()[k] = v
		}
		var act map[string]any
		if r.Method == http.MethodPost && status == 0 && json.Unmarshal(body, &act) == nil {
			c.posts = append(c.posts, Post{Path: r.URL.EscapedPath(), ClientID: client, Activity: act, Body: body})
		}
		c.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, map[string]string{"id": fmt.Sprintf("sent-%d", time.Now().UnixNano())})
	}))
	t.Cleanup(c.Close)
	return c
}

func cutBearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || h[:len(p)] != p {
		return "", false
	}
	return h[len(p):], true
}

// Fail makes the connector answer with status and header (0: accept).
func (c *Connector) Fail(status int, header http.Header) {
	c.mu.Lock()
	c.status, c.header = status, header.Clone()
	if c.header == nil {
		c.header = http.Header{}
	}
	c.mu.Unlock()
}

// Posts returns the activities received.
func (c *Connector) Posts() []Post {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Post(nil), c.posts...)
}

// Wait waits until n activities arrived and returns them.
func (c *Connector) Wait(t testing.TB, n int) []Post {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if p := c.Posts(); len(p) >= n {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connector got %d activities, want %d", len(c.Posts()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
