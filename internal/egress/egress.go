package egress

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/tracing"
	"github.com/parleyhq/parley/sandbox"
)

// Defaults for the zero values of [Config].
const (
	DefaultTimeout                = 10 * time.Second
	DefaultMaxRedirects           = 3
	DefaultUserAgent              = "Parley"
	DefaultMaxResponseHeaderBytes = 64 << 10
	DefaultMaxPools               = 256
	DefaultIdleTimeout            = 60 * time.Second
	defaultMaxResponseBytes       = 256 << 10
	// maxResponseHeaders is how many response headers a script sees
	// (the first value of each, names in sorted order).
	maxResponseHeaders = 64
	// maxIdleConnsPerPool and maxIdleConnsPerHost bound the idle
	// connections one pool keeps.
	maxIdleConnsPerPool = 8
	maxIdleConnsPerHost = 4
)

// Config configures a [Client]. Zero values mean the defaults.
type Config struct {
	// Timeout bounds one request, redirects included (default 10s); the
	// caller's deadline usually ends it first.
	Timeout time.Duration
	// MaxRedirects is how many redirects a request follows (default 3).
	MaxRedirects int
	// UserAgent is sent with every request (default "Parley").
	UserAgent string
	// Resolver resolves host names (default net.DefaultResolver).
	Resolver Resolver
	// MaxResponseHeaderBytes caps a response's header block as read from
	// the network (default 64 KiB). A larger one fails the request as soon
	// as the cap is reached, before any of it reaches the script. The
	// headers a script is given also count towards the request's
	// MaxResponseBytes, with the body.
	MaxResponseHeaderBytes int
	// MaxPools caps the connection pools kept, one for each bot and
	// allow-list (default 256). When another is needed, the least recently
	// used one is dropped and its connections closed. Each pool keeps at
	// most 8 idle connections, so at most 8*MaxPools stay open while idle.
	MaxPools int
	// IdleTimeout is how long an idle connection is kept open, and how long
	// a pool no request used is kept (default 60s).
	IdleTimeout time.Duration
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Client makes allow-listed outbound requests. It implements
// [sandbox.HTTPClient].
type Client struct {
	cfg    Config
	dialer net.Dialer

	mu    sync.Mutex
	pools map[poolKey]*list.Element // of *pool
	lru   list.List                 // most recently used first
}

var _ sandbox.HTTPClient = (*Client)(nil)

// poolKey names the pool of a bot and an allow-list: connections are never
// shared between two bots, nor between two allow-lists of one bot.
type poolKey struct {
	bot   string
	allow [sha256.Size]byte // of the canonical allow-list
}

// pool is the connections of one bot under one allow-list.
type pool struct {
	key       poolKey
	client    *http.Client
	transport *http.Transport
	lastUsed  time.Time
}

// policyCtxKey carries the request's policy to the dialer, the redirect
// check and the connection check.
type policyCtxKey struct{}

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = DefaultMaxRedirects
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.MaxResponseHeaderBytes <= 0 {
		cfg.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if cfg.MaxPools <= 0 {
		cfg.MaxPools = DefaultMaxPools
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	return &Client{
		cfg:    cfg,
		dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		pools:  make(map[poolKey]*list.Element),
	}
}

// newPool returns a pool with its own transport.
func (c *Client) newPool(key poolKey) *pool {
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            c.dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConnsPerPool,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        c.cfg.IdleTimeout,
		TLSHandshakeTimeout:    5 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: int64(c.cfg.MaxResponseHeaderBytes),
	}
	return &pool{key: key, transport: t,
		client: &http.Client{Transport: tracing.Transport(t), Timeout: c.cfg.Timeout, CheckRedirect: c.checkRedirect}}
}

// keyOf returns the pool key of bot and allow, and allow in canonical form:
// entries trimmed, lower-cased, sorted, without duplicates.
func keyOf(bot string, allow []string) (poolKey, []string) {
	canon := make([]string, len(allow))
	n := 0
	for i, e := range allow {
		canon[i] = strings.ToLower(strings.TrimSpace(e))
		n += len(canon[i]) + binary.MaxVarintLen64
	}
	slices.Sort(canon)
	canon = slices.Compact(canon)
	buf := make([]byte, 0, n)
	for _, e := range canon {
		buf = binary.AppendUvarint(buf, uint64(len(e)))
		buf = append(buf, e...)
	}
	return poolKey{bot: bot, allow: sha256.Sum256(buf)}, canon
}

// pool returns the pool of bot under allow, making it if need be, and the
// request's policy. Pools unused for IdleTimeout, and the least recently
// used ones beyond MaxPools, are dropped.
func (c *Client) pool(bot string, allow []string) (*pool, *policy) {
	key, canon := keyOf(bot, allow)
	pol := newPolicy(canon)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Back(); e != nil; {
		p := e.Value.(*pool)
		if now.Sub(p.lastUsed) < c.cfg.IdleTimeout {
			break
		}
		prev := e.Prev()
		c.drop(e)
		e = prev
	}
	if e, ok := c.pools[key]; ok {
		p := e.Value.(*pool)
		p.lastUsed = now
		c.lru.MoveToFront(e)
		return p, pol
	}
	for c.lru.Len() >= c.cfg.MaxPools {
		c.drop(c.lru.Back())
	}
	p := c.newPool(key)
	p.lastUsed = now
	c.pools[key] = c.lru.PushFront(p)
	return p, pol
}

// drop forgets a pool and closes its idle connections; the connections of
// requests still running on it are closed when they become idle. c.mu is
// held.
func (c *Client) drop(e *list.Element) {
	p := c.lru.Remove(e).(*pool)
	delete(c.pools, p.key)
	p.transport.CloseIdleConnections()
}

// Close closes the idle connections of every pool.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.drop(c.lru.Back())
	}
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.cfg.MaxRedirects {
		return fmt.Errorf("more than %d redirects", c.cfg.MaxRedirects)
	}
	p, _ := req.Context().Value(policyCtxKey{}).(*policy)
	if p == nil {
		return errors.New("no policy")
	}
	if _, err := check(p.allow, req.URL); err != nil {
		return fmt.Errorf("redirect refused: %w", err)
	}
	return nil
}

// forbiddenHeaders are request headers scripts may not set.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Keep-Alive": true,
}

// Do makes one request under req.Allow, on connections of req.Bot's pool
// for that allow-list.
func (c *Client) Do(ctx context.Context, req *sandbox.HTTPRequest) (*sandbox.HTTPResponse, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		return nil, fmt.Errorf("method %s is not supported", req.Method)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, errors.New("invalid url")
	}
	if _, err := check(req.Allow, u); err != nil {
		return nil, err
	}
	// The policy is the request's own, made from req.Allow, whatever pool
	// the request is given.
	pl, pol := c.pool(req.Bot, req.Allow)
	// Every connection a request gets, new or kept alive, is checked
	// against the request's own policy; a refused one is closed before
	// the request is written to it, and the request ends.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx = context.WithValue(ctx, policyCtxKey{}, pol)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if err := pol.admitConn(info.Conn, info.Reused); err != nil {
			cancel(err)
			info.Conn.Close()
		}
	}})
	var body io.Reader
	if req.Body != nil {
		body = strings.NewReader(string(req.Body))
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, errors.New("invalid request")
	}
	for k, v := range req.Header {
		k = http.CanonicalHeaderKey(k)
		if forbiddenHeaders[k] {
			return nil, fmt.Errorf("header %s cannot be set", k)
		}
		hreq.Header.Set(k, v)
	}
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := pl.client.Do(hreq)
	if err != nil {
		if refused := (*ConnRefusedError)(nil); errors.As(context.Cause(ctx), &refused) {
			return nil, refused
		}
		return nil, c.requestError(err)
	}
	defer resp.Body.Close()
	limit := req.MaxResponseBytes
	if limit <= 0 {
		limit = defaultMaxResponseBytes
	}
	out := &sandbox.HTTPResponse{Status: resp.StatusCode, Header: make(map[string]string, min(len(resp.Header), maxResponseHeaders))}
	size := scriptHeaders(out.Header, resp.Header)
	if size > limit {
		return nil, fmt.Errorf("response is larger than %d bytes (headers alone are %d)", limit, size)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit-size)+1))
	if err != nil {
		return nil, c.requestError(err)
	}
	if size+len(raw) > limit {
		return nil, fmt.Errorf("response is larger than %d bytes (headers included)", limit)
	}
	out.Body = raw
	return out, nil
}

// scriptHeaders fills dst with the headers a script sees: at most
// maxResponseHeaders names in sorted order, lower-cased, the first value of
// each. It returns their size in bytes (names and values).
func scriptHeaders(dst map[string]string, h http.Header) int {
	names := make([]string, 0, len(h))
	for k, v := range h {
		if len(v) > 0 {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	size := 0
	for _, k := range names[:min(len(names), maxResponseHeaders)] {
		v := h[k][0]
		dst[strings.ToLower(k)] = v
		size += len(k) + len(v)
	}
	return size
}

// requestError strips net/http's "Get \"url\": " wrapping, names an
// oversized header block, and keeps context errors recognizable.
func (c *Client) requestError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	// net/http has no sentinel for these: HTTP/1 and HTTP/2 wording.
	if msg := err.Error(); strings.Contains(msg, "response headers exceeded") ||
		strings.Contains(msg, "header list larger than") {
		return fmt.Errorf("response headers are larger than %d bytes", c.cfg.MaxResponseHeaderBytes)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return context.DeadlineExceeded
	}
	return err
}
