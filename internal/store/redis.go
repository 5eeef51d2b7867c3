package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redacted replaces passwords in everything the store prints.
const redacted = "xxxxx"

// target is a parsed Config.URL.
type target struct {
	simple  *redis.Options        // standalone, or nil
	cluster *redis.ClusterOptions // Redis Cluster, or nil
	// where is the address list for messages: "10.0.0.5:6379" or "a:7000,b:7001".
	where string
	// describe is what Store.Describe returns.
	describe string
	// secrets are the passwords in the URL, raw and decoded, to keep out of
	// error messages.
	secrets []string
}

// parseTarget parses a redis:// or rediss:// URL, or a comma-separated list
// of them for Redis Cluster. Errors never contain the password.
func parseTarget(raw string) (*target, error) {
	raw = strings.TrimSpace(raw)
	parts := splitAddrs(raw)
	t := &target{secrets: rawPasswords(parts[0])}
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			return nil, fmt.Errorf("invalid redis URL %q: empty address in the list", t.redact(raw))
		}
	}

	u, err := url.Parse(parts[0])
	if err != nil {
		msg := fmt.Sprintf("invalid redis URL %q", t.redact(parts[0]))
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole URL
		}
		if len(t.secrets) > 0 {
			// The parser's message may quote a piece of the password: keep
			// what comes before any quote.
			what, _, _ := strings.Cut(strings.TrimPrefix(err.Error(), "net/url: "), `"`)
			return nil, fmt.Errorf("%s: %s (percent-encode any special characters in the password)", msg, strings.TrimSpace(what))
		}
		return nil, t.wrap(msg, err)
	}
	if p, ok := u.User.Password(); ok && p != "" {
		t.secrets = append(t.secrets, p)
	}
	if u.User == nil && strings.Contains(parts[0], "@") || strings.Contains(parts[0], "#") ||
		strings.Contains(u.Host+u.Path+u.RawQuery, "@") {
		// A raw '/', '?' or '#' in the password moves the rest of it into
		// the path or fragment, or even into the host.
		hint := ""
		if strings.Count(raw, "://") > 1 {
			hint = "; in a cluster list, only the first address may carry credentials"
		}
		return nil, fmt.Errorf("invalid redis URL %q: percent-encode special characters in the password "+
			"('/' as %%2F, '?' as %%3F, '#' as %%23, '@' as %%40)%s", t.redact(parts[0]), hint)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("invalid redis URL %q: scheme must be redis:// or rediss://", t.redact(parts[0]))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid redis URL %q: no host", t.redact(parts[0]))
	}
	q := u.Query()
	clusterFlag, err := parseBoolParam(q.Get("cluster"))
	if err != nil {
		return nil, fmt.Errorf("invalid redis URL %q: cluster parameter: %w", t.redact(parts[0]), err)
	}
	q.Del("cluster")
	u.RawQuery = q.Encode()
	user := u.User.Username()
	_, hasPassword := u.User.Password()

	if len(parts) == 1 && !clusterFlag {
		opts, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, t.wrap(fmt.Sprintf("invalid redis URL %q", t.redact(parts[0])), err)
		}
		if opts.ClientName == "" {
			opts.ClientName = clientName
		}
		opts.ContextTimeoutEnabled = true
		opts.Protocol = cmp.Or(opts.Protocol, protocol)
		opts.Dialer = opaqueDialer(redis.NewDialer(opts))
		t.simple = opts
		t.where = opts.Addr
		t.describe = "redis " + redactedURL(u.Scheme, user, hasPassword, opts.Addr, "/"+strconv.Itoa(opts.DB))
		return t, nil
	}

	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("invalid redis URL %q: Redis Cluster has only database 0", t.redact(parts[0]))
	}
	u.Path = ""
	opts, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, t.wrap(fmt.Sprintf("invalid redis cluster URL %q", t.redact(parts[0])), err)
	}
	for _, p := range parts[1:] {
		addr, err := clusterAddr(u.Scheme, p)
		if err != nil {
			return nil, t.wrap(fmt.Sprintf("invalid redis cluster address %q", t.redact(p)), err)
		}
		opts.Addrs = append(opts.Addrs, addr)
	}
	if opts.ClientName == "" {
		opts.ClientName = clientName
	}
	opts.ContextTimeoutEnabled = true
	opts.Protocol = cmp.Or(opts.Protocol, protocol)
	opts.Dialer = opaqueDialer(redis.NewDialer(&redis.Options{DialTimeout: cmp.Or(opts.DialTimeout, defaultDialTimeout),
		TLSConfig: opts.TLSConfig}))
	t.cluster = opts
	t.where = strings.Join(opts.Addrs, ",")
	t.describe = "redis cluster " + redactedURL(u.Scheme, user, hasPassword, t.where, "")
	return t, nil
}

// clusterAddr parses one of the further addresses of a cluster list:
// "redis://host:port" or "host:port", without credentials or options.
func clusterAddr(scheme, p string) (string, error) {
	if !strings.Contains(p, "://") {
		p = scheme + "://" + p
	}
	u, err := url.Parse(p)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return "", uerr.Err
		}
		return "", err
	}
	switch {
	case u.Scheme != scheme:
		return "", fmt.Errorf("every address must use %s://", scheme)
	case u.User != nil:
		return "", errors.New("give credentials on the first address only")
	case u.RawQuery != "" || strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0":
		return "", errors.New("give options on the first address only")
	case u.Hostname() == "":
		return "", errors.New("no host")
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

func parseBoolParam(s string) (bool, error) {
	switch s {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

// redactedURL rebuilds a URL for display with the password replaced.
func redactedURL(scheme, user string, hasPassword bool, hosts, path string) string {
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	switch {
	case hasPassword:
		b.WriteString(url.PathEscape(user) + ":" + redacted + "@")
	case user != "":
		b.WriteString(url.PathEscape(user) + "@")
	}
	b.WriteString(hosts)
	b.WriteString(path)
	return b.String()
}

// splitAddrs splits a comma-separated address list. Only the first address
// may carry credentials, and a password may contain commas, so commas
// before the last '@' don't split.
func splitAddrs(raw string) []string {
	head := ""
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		head, raw = raw[:at+1], raw[at+1:]
	}
	parts := strings.Split(raw, ",")
	parts[0] = head + parts[0]
	return parts
}

// rawPasswords finds what may be a password in a URL, even one that does
// not parse: everything between the first ':' (after the scheme's "://",
// if the URL starts with one) and the last '@', as written,
// percent-decoded, quoted, and in the pieces a broken URL may be split into.
// Finding too much only redacts too much.
func rawPasswords(raw string) []string {
	var out []string
	add := func(s string) {
		at := strings.LastIndex(s, "@")
		if at < 0 {
			return
		}
		_, pw, ok := strings.Cut(s[:at], ":")
		if !ok || pw == "" {
			return
		}
		out = append(out, pw)
		if dec, err := url.PathUnescape(pw); err == nil && dec != pw && dec != "" {
			out = append(out, dec)
		}
		// A password with a raw '/', '?', '#' or '@' breaks the URL apart,
		// and error messages may quote a piece of it.
		for _, piece := range strings.FieldsFunc(pw, func(r rune) bool { return strings.ContainsRune("/?#@:&=,;", r) }) {
			if len(piece) >= 3 && piece != pw {
				out = append(out, piece)
			}
		}
	}
	if i := strings.Index(raw, ":"); i >= 0 && strings.HasPrefix(raw[i:], "://") {
		add(raw[i+3:])
	} else {
		add(raw) // no scheme, or a password before it
	}
	for _, s := range out {
		if q := strconv.Quote(s); q[1:len(q)-1] != s {
			out = append(out, q[1:len(q)-1]) // as a %q in an error shows it
		}
	}
	return out
}

// redact replaces the passwords in s.
func (t *target) redact(s string) string {
	for _, p := range t.secrets {
		s = strings.ReplaceAll(s, p, redacted)
	}
	return s
}

// wrap prefixes err with msg (which must already be free of passwords). If
// err's text contains a password, the result carries the redacted text
// only and does not wrap err.
func (t *target) wrap(msg string, err error) error {
	text := err.Error()
	if clean := t.redact(text); clean != text {
		return fmt.Errorf("%s: %s", msg, clean)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// defaultDialTimeout is go-redis's own default, for the cluster's dialer.
const defaultDialTimeout = 5 * time.Second

// opaqueDialer wraps every connection dial makes in an opaqueConn.
func opaqueDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return opaqueConn{c}, nil
	}
}

// opaqueConn is a connection to Redis without its file descriptor (no
// SyscallConn method). go-redis peeks at the socket of such a connection
// (a recvfrom system call) each time it takes it from its pool, to see
// whether the server closed it; it skips that check for connections that
// hide their descriptor, as it always does for TLS connections. That is two
// system calls less per turn; a connection the server closed while it was
// idle fails its next command instead, which go-redis retries on a new
// connection.
type opaqueConn struct{ net.Conn }

// newClient builds the go-redis client for t.
func (t *target) newClient() redis.UniversalClient {
	if t.cluster != nil {
		return redis.NewClusterClient(t.cluster)
	}
	return redis.NewClient(t.simple)
}

// openRedis connects to a real Redis and checks that it answers.
func openRedis(ctx context.Context, cfg Config) (*Store, error) {
	t, err := parseTarget(cfg.URL)
	if err != nil {
		return nil, err
	}
	client := t.newClient()
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	err = client.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		_ = client.Close()
		return nil, t.pingError(ctx, err, cfg.ConnectTimeout)
	}
	cfg.Logger.Debug("connected to redis", "redis", t.describe)
	return &Store{client: client, describe: t.describe, done: make(chan struct{})}, nil
}

// pingError explains why the start-up ping failed.
func (t *target) pingError(ctx context.Context, err error, timeout time.Duration) error {
	what := "redis at " + t.where
	if t.cluster != nil {
		what = "redis cluster at " + t.where
	}
	var rerr redis.Error
	var nerr net.Error
	switch {
	case ctx.Err() != nil:
		return t.wrap("connecting to "+what+" was cancelled", err)
	case errors.As(err, &rerr):
		return t.wrap(what+" refused the connection", err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return t.wrap(fmt.Sprintf("%s is unreachable: no answer within %s", what, timeout), err)
	default:
		return t.wrap(what+" is unreachable", err)
	}
}
