package egress

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"

	"github.com/parleyhq/parley/internal/tracing"
)

// Scope is what a request made with [Client.Open] may reach.
type Scope struct {
	// Bot is the bot the request is made for; its connections are its own.
	Bot string
	// Allow is the bot's allow-list (http_allow): URLs on its hosts may be
	// requested, and the only non-public addresses reachable are those it
	// names literally.
	Allow []string
	// Hosts are further allow-list entries whose URLs may be requested,
	// such as the host of the bot's model API. They admit no non-public
	// address: a host that resolves to one, or names one, is reached only
	// when Allow names that address too.
	Hosts []string
}

// Open sends req within scope and returns the response with its body
// unread: the caller reads it as it arrives (a stream of server-sent
// events) and closes it. Redirects are not followed. The request is bounded
// by ctx alone, not by Config.Timeout, and by the header cap. Errors read
// as those of the http module (a refused host or address, a timeout).
func (c *Client) Open(ctx context.Context, scope Scope, req *http.Request) (*http.Response, error) {
	urls := make([]string, 0, len(scope.Allow)+len(scope.Hosts))
	urls = append(urls, scope.Allow...)
	urls = append(urls, scope.Hosts...)
	if _, err := check(urls, req.URL); err != nil {
		return nil, err
	}
	pl, _ := c.pool(scope.Bot, urls)
	_, canon := keyOf(scope.Bot, scope.Allow)
	pol := newPolicy(canon)
	_, pol.allow = keyOf(scope.Bot, urls)

	ctx, cancel := context.WithCancelCause(ctx)
	handedOver := false
	defer func() {
		// The body outlives Open: its Close ends the context once handed over.
		if !handedOver {
			cancel(nil)
		}
	}()
	ctx = context.WithValue(ctx, policyCtxKey{}, pol)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if err := pol.admitConn(info.Conn, info.Reused); err != nil {
			cancel(err)
			info.Conn.Close()
		}
	}})
	req = req.WithContext(ctx)
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	// Traced like the http module's requests: a client span, and the
	// turn's trace carried on in a traceparent header.
	client := &http.Client{Transport: tracing.Transport(pl.transport), CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		if refused := (*ConnRefusedError)(nil); errors.As(context.Cause(ctx), &refused) {
			return nil, refused
		}
		return nil, c.requestError(err)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	handedOver = true
	return resp, nil
}

// cancelBody ends its request's context when it is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}
