package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/sandbox"
)

// Defaults for the zero values of [Config].
const (
	DefaultTimeout                = 10 * time.Second
	DefaultMaxRedirects           = 3
	DefaultUserAgent              = "Parley"
	DefaultMaxResponseHeaderBytes = 64 << 10
	defaultMaxResponseBytes       = 256 << 10
	// maxResponseHeaders is how many response headers a script sees
	// (the first value of each, names in sorted order).
	maxResponseHeaders = 64
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
	Resolver *net.Resolver
	// MaxResponseHeaderBytes caps a response's header block as read from
	// the network (default 64 KiB). A larger one fails the request as soon
	// as the cap is reached, before any of it reaches the script. The
	// headers a script is given also count towards the request's
	// MaxResponseBytes, with the body.
	MaxResponseHeaderBytes int
}

// Client makes allow-listed outbound requests. It implements
// [sandbox.HTTPClient].
type Client struct {
	cfg    Config
	client *http.Client
	dialer net.Dialer
}

var _ sandbox.HTTPClient = (*Client)(nil)

// policyKey carries the request's allow-list to the dialer and the
// redirect check.
type policyKey struct{}

type policy struct {
	allow []string
	ips   []netip.Addr // addresses the allow-list names literally
}

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
	c := &Client{cfg: cfg, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           c.dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: int64(cfg.MaxResponseHeaderBytes),
	}
	c.client = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("more than %d redirects", cfg.MaxRedirects)
			}
			p, _ := req.Context().Value(policyKey{}).(*policy)
			if p == nil {
				return errors.New("no policy")
			}
			if _, err := check(p.allow, req.URL); err != nil {
				return fmt.Errorf("redirect refused: %w", err)
			}
			return nil
		},
	}
	return c
}

// forbiddenHeaders are request headers scripts may not set.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Keep-Alive": true,
}

// Do makes one request under req.Allow.
func (c *Client) Do(ctx context.Context, req *sandbox.HTTPRequest) (*sandbox.HTTPResponse, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		return nil, fmt.Errorf("method %s is not supported", req.Method)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, errors.New("invalid url")
	}
	p := &policy{allow: req.Allow}
	if _, err := check(p.allow, u); err != nil {
		return nil, err
	}
	for _, e := range req.Allow {
		if ip, err := netip.ParseAddr(strings.Trim(hostOf(e), "[]")); err == nil {
			p.ips = append(p.ips, ip.Unmap())
		}
	}
	ctx = context.WithValue(ctx, policyKey{}, p)
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
	resp, err := c.client.Do(hreq)
	if err != nil {
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

// check reports whether u may be requested under allow, returning the
// matching entry.
func check(allow []string, u *url.URL) (string, error) {
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("only http and https URLs are allowed")
	}
	if u.User != nil {
		return "", errors.New("credentials in URLs are not allowed")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return "", errors.New("url has no host")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, e := range allow {
		if Match(e, host, port) {
			return e, nil
		}
	}
	if len(allow) == 0 {
		return "", errors.New("no hosts are allow-listed for this bot (setting http_allow)")
	}
	return "", fmt.Errorf("host %s is not allow-listed", host)
}

// hostOf returns an allow-list entry without its port.
func hostOf(entry string) string {
	if h, _, err := net.SplitHostPort(entry); err == nil {
		return h
	}
	return entry
}

// Match reports whether the allow-list entry admits host (lower case,
// without brackets) on port.
func Match(entry, host, port string) bool {
	entry = strings.ToLower(strings.TrimSpace(entry))
	eh, ep := entry, ""
	if h, p, err := net.SplitHostPort(entry); err == nil {
		eh, ep = h, p
	}
	eh = strings.Trim(eh, "[]")
	if ep != "" && ep != port {
		return false
	}
	if suffix, ok := strings.CutPrefix(eh, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	if a, err := netip.ParseAddr(eh); err == nil {
		b, err := netip.ParseAddr(host)
		return err == nil && a.Unmap() == b.Unmap()
	}
	return eh == host
}

// dial resolves addr itself and connects only to addresses the policy
// admits.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p, _ := ctx.Value(policyKey{}).(*policy)
	if p == nil {
		return nil, errors.New("egress: no policy")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = c.cfg.Resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, fmt.Errorf("cannot resolve %s", host)
	}
	var lastErr error
	for _, ip := range ips {
		ip = ip.Unmap()
		if !Public(ip) && !containsAddr(p.ips, ip) {
			lastErr = fmt.Errorf("%s resolves to a private address (%s); allow-list that address to reach it", host, ip)
			continue
		}
		conn, err := c.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = fmt.Errorf("cannot connect to %s", host)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("cannot resolve %s", host)
	}
	return nil, lastErr
}

func containsAddr(list []netip.Addr, ip netip.Addr) bool {
	for _, a := range list {
		if a == ip {
			return true
		}
	}
	return false
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach private IPv4
	netip.MustParsePrefix("2002::/16"),    // 6to4 likewise
}

// Public reports whether ip is a public unicast address.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
