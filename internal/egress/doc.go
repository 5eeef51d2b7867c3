// Package egress makes the outbound HTTP requests of bot handlers (the
// sandbox's http module) under each bot's allow-list.
//
//	rt := sandbox.New(sandbox.Config{HTTP: egress.New(egress.Config{})})
//
// # Policy
//
// A request goes out only when its URL's host and port match an entry of the
// bot's allow-list (bot setting http_allow):
//
//	api.example.com         that host, ports 80 and 443
//	api.example.com:8443    that host, port 8443 only
//	*.example.com           any subdomain of example.com (not example.com itself), ports 80 and 443
//	203.0.113.7             that address, ports 80 and 443
//
// An entry without a port admits the web's ports only, so that naming a host
// does not open its every service (SSH, databases, admin consoles) to
// handlers; another port must be named. Only http and https URLs without
// credentials are accepted. Redirects are followed (at most
// Config.MaxRedirects) only to allow-listed hosts.
//
// Host names are resolved by this package, and connections go to public
// unicast addresses only, whatever name led there: an allow-listed name that
// resolves (or is re-pointed) into the host's own network is not a way in.
// Refused are loopback, private, link-local, multicast and unspecified
// addresses, every entry of IANA's IPv4 and IPv6 Special-Purpose Address
// Registries (through code.dny.dev/ssrf, which is generated from them), and
// every IPv6 address outside global unicast 2000::/3: IPv4-mapped addresses
// are judged as the IPv4 address they map, while IPv4-compatible, NAT64,
// site-local, 6to4 and Teredo addresses, which embed or lead to IPv4 ones,
// are refused whole. The only exception is an address the allow-list names
// literally, such as 127.0.0.1 for a test server or 10.0.0.5 for an internal
// service its operator chose to expose. Proxies from the environment are not
// used.
//
// [Client.Open] serves the llm module: it sends a request built by the
// caller within a [Scope] and hands back the response with its body unread,
// to be read as it streams. The scope's Hosts (the host of the bot's model
// API) may be requested without being in the allow-list, but they admit no
// non-public address: only the allow-list can, by naming it literally.
// Open follows no redirects and is bounded by its context alone.
//
// # Connections
//
// Connections are kept alive in pools, one for each bot and allow-list (the
// bot's name with a hash of its allow-list, trimmed, lower-cased and
// sorted), so no connection ever serves two bots or two policies. Every
// connection a request is given, new or kept alive, is checked again against
// the request's own allow-list before the request is written to it; one
// whose remote address that allow-list does not admit is closed and the
// request fails with a [*ConnRefusedError]. At most Config.MaxPools pools are
// kept (the least recently used is dropped first), a pool unused for
// Config.IdleTimeout is dropped, and a dropped pool's connections are closed;
// each pool keeps at most 8 idle connections.
//
// # Responses
//
// A response's header block is read up to Config.MaxResponseHeaderBytes
// (64 KiB); a larger one fails the request at once. The script is given at
// most 64 headers (the first value of each, names lower-cased and taken in
// sorted order), and those headers count towards the request's
// MaxResponseBytes together with the body: a response whose headers and body
// exceed it is an error. The caller's context (the turn's deadline) bounds
// the whole request, and Config.Timeout bounds it as well.
//
// Concurrency: a Client is safe for concurrent use.
//
// The user manual is docs/handlers.md (the http module).
package egress
