package teams

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/channels"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Scope is the scope of Parley's tokens for the Bot Connector API.
const Scope = "https://api.botframework.com/.default"

// Token cache bounds.
const (
	// tokenMargin is how long before its expiry a token is replaced.
	tokenMargin = 5 * time.Minute
	// maxTokens bounds the cached tokens (one per bot's credentials).
	maxTokens = 10000
)

// tokenCache holds one token per set of credentials (token URL, app id
// and password), fetched with the client-credentials grant, kept until
// shortly before it expires. Each set fetches one token at a time; the
// sends that need it meanwhile wait for that one.
type tokenCache struct {
	client   *http.Client
	tokenURL string // with {tenant}
	now      func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]*tokenEntry
}

type tokenEntry struct {
	mu     sync.Mutex // held while fetching
	token  string
	expiry time.Time
}

func newTokenCache(client *http.Client, tokenURL string, now func() time.Time) *tokenCache {
	return &tokenCache{client: client, tokenURL: tokenURL, now: now, entries: map[[sha256.Size]byte]*tokenEntry{}}
}

// endpoint is the token URL for the bot's settings.
func (c *tokenCache) endpoint(s channels.Settings) string {
	tenant := s[SettingTenantID]
	if tenant == "" {
		tenant = multiTenant
	}
	return strings.ReplaceAll(c.tokenURL, "{tenant}", tenant)
}

func (c *tokenCache) entry(endpoint string, s channels.Settings) *tokenEntry {
	// The key never holds the password itself.
	key := sha256.Sum256([]byte(endpoint + "\x00" + s[SettingAppID] + "\x00" + s[SettingAppPassword]))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		if len(c.entries) >= maxTokens {
			clear(c.entries) // the tokens are fetched again as needed
		}
		e = &tokenEntry{}
		c.entries[key] = e
	}
	return e
}

// Token returns a token for the bot's credentials, from the cache or
// fetched. A failure is a *channels.SendError.
func (c *tokenCache) Token(ctx context.Context, s channels.Settings) (string, error) {
	endpoint := c.endpoint(s)
	e := c.entry(endpoint, s)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && c.now().Before(e.expiry.Add(-tokenMargin)) {
		return e.token, nil
	}
	cc := clientcredentials.Config{
		ClientID:     s[SettingAppID],
		ClientSecret: s[SettingAppPassword],
		TokenURL:     endpoint,
		Scopes:       []string{Scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	start := c.now()
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.client))
	if err != nil {
		return "", tokenError(err)
	}
	if tok.AccessToken == "" || !strings.EqualFold(tok.Type(), "Bearer") {
		return "", &channels.SendError{Err: errors.New("the token endpoint answered no bearer token")}
	}
	ttl := time.Hour // what Entra gives when it does not say
	if !tok.Expiry.IsZero() {
		ttl = time.Until(tok.Expiry)
	}
	e.token, e.expiry = tok.AccessToken, start.Add(ttl)
	return e.token, nil
}

// Forget drops the cached token of the bot's credentials, after the
// connector refused it.
func (c *tokenCache) Forget(s channels.Settings) {
	e := c.entry(c.endpoint(s), s)
	e.mu.Lock()
	e.token = ""
	e.mu.Unlock()
}

// tokenError is a failed token request as a SendError: the endpoint's 429
// and 5xx, and network failures, are worth a retry; a refusal of the
// credentials is not.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		se := channels.StatusError(re.Response, fmt.Errorf("token request: HTTP %d %s", re.Response.StatusCode, re.ErrorCode))
		return se
	}
	return &channels.SendError{Retryable: true, Err: fmt.Errorf("token request: %w", err)}
}
