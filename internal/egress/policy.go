package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"code.dny.dev/ssrf"
)

// policy is one request's allow-list, in canonical form.
type policy struct {
	allow []string
	ips   []netip.Addr // addresses the allow-list names literally, unmapped
}

func newPolicy(canon []string) *policy {
	p := &policy{allow: canon}
	for _, e := range canon {
		if ip, err := netip.ParseAddr(strings.Trim(hostOf(e), "[]")); err == nil {
			p.ips = append(p.ips, ip.Unmap())
		}
	}
	return p
}

// admits reports whether the policy lets a connection go to ip: a public
// address, or one the allow-list names literally.
func (p *policy) admits(ip netip.Addr) bool {
	ip = ip.Unmap()
	return Public(ip) || slices.Contains(p.ips, ip)
}

// ConnRefusedError is the error of a request that was given a connection
// whose remote address its policy does not admit.
type ConnRefusedError struct {
	// Addr is the connection's remote address.
	Addr netip.Addr
	// Reused tells a kept-alive connection from a new one.
	Reused bool
}

func (e *ConnRefusedError) Error() string {
	return fmt.Sprintf("connection to %s refused: the address is not public and the allow-list does not name it", e.Addr)
}

// admitConn checks a connection a request was given, new or kept alive,
// against the request's policy.
func (p *policy) admitConn(conn net.Conn, reused bool) error {
	var ip netip.Addr
	switch a := conn.RemoteAddr().(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return &ConnRefusedError{Reused: reused}
		}
		ip = ap.Addr()
	}
	if !p.admits(ip) {
		return &ConnRefusedError{Addr: ip.Unmap(), Reused: reused}
	}
	return nil
}

// CheckURL reports whether rawURL may be requested under the allow-list
// allow, with the error a handler's request would fail with. It looks at
// the URL only: the address checks of a real request (see the package
// documentation) come when its host is resolved. Hosts that answer
// requests without sending them, such as parley test's recorded
// responses, use it to refuse what production would refuse.
func CheckURL(allow []string, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("invalid url")
	}
	_, err = check(allow, u)
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
	if port != "80" && port != "443" {
		return "", fmt.Errorf("host %s port %s is not allow-listed (an entry without a port allows 80 and 443 only)", host, port)
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
// without brackets) on port. An entry with a port admits that port only;
// one without admits ports 80 and 443, the web's, and no other: naming a
// host is not meant to open its every service (SSH, databases, admin
// consoles) to handlers.
func Match(entry, host, port string) bool {
	entry = strings.ToLower(strings.TrimSpace(entry))
	eh, ep := entry, ""
	if h, p, err := net.SplitHostPort(entry); err == nil {
		eh, ep = h, p
	}
	eh = strings.Trim(eh, "[]")
	if ep == "" && port != "80" && port != "443" || ep != "" && ep != port {
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

// dial resolves addr itself and connects only to addresses the request's
// policy admits.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p, _ := ctx.Value(policyCtxKey{}).(*policy)
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
		if !p.admits(ip) {
			lastErr = fmt.Errorf("%s resolves to a non-public address (%s); allow-list that address to reach it", host, ip)
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

// special tells special-purpose addresses from public ones. It refuses
// every entry of IANA's IPv4 and IPv6 Special-Purpose Address Registries
// (kept in sync with them by code.dny.dev/ssrf), IPv4 multicast, and every
// IPv6 address outside global unicast (2000::/3), which covers the
// IPv4-mapped, IPv4-compatible, NAT64, site-local, unique-local, link-local
// and multicast ranges. 6to4 (2002::/16) and Teredo (2001::/32), which embed
// IPv4 addresses, are refused whole.
var special = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// Public reports whether ip is a public unicast address: not loopback,
// private, link-local, multicast, unspecified, nor in any IANA
// special-purpose range. An IPv4-mapped IPv6 address is judged as the IPv4
// address it maps.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() {
		return false
	}
	return special.SafeAddr(ip) == nil
}
