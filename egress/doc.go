// Package egress makes the outbound HTTP requests of bot handlers (the
// sandbox's http module) under each bot's allow-list.
//
//	rt := sandbox.New(sandbox.Config{HTTP: egress.New(egress.Config{})})
//
// # Policy
//
// A request goes out only when its URL's host matches an entry of the bot's
// allow-list (bot setting http_allow):
//
//	api.example.com         that host, any port
//	api.example.com:8443    that host and port
//	*.example.com           any subdomain of example.com (not example.com itself)
//	203.0.113.7             that address
//
// Only http and https URLs without credentials are accepted. Redirects are
// followed (at most Config.MaxRedirects) only to allow-listed hosts.
//
// Host names are resolved by this package, and connections to private,
// loopback, link-local, multicast, unspecified and carrier-grade NAT
// addresses are refused, whatever name led there: an allow-listed name that
// resolves (or is re-pointed) into the host's own network is not a way in.
// The only exception is an address the allow-list names literally, such as
// 127.0.0.1 for a test server or 10.0.0.5 for an internal service its
// operator chose to expose. Proxies from the environment are not used.
//
// A response's header block is read up to Config.MaxResponseHeaderBytes
// (64 KiB); a larger one fails the request at once. The script is given at
// most 64 headers (the first value of each, names lower-cased and taken in
// sorted order), and those headers count towards the request's
// MaxResponseBytes together with the body: a response whose headers and
// body exceed it is an error. The caller's context (the turn's deadline) bounds the
// whole request, and Config.Timeout bounds it as well.
//
// Concurrency: a Client is safe for concurrent use and shares one pool of
// connections between bots (a connection is keyed by host and port, so it
// is only reused for a host both bots may reach).
package egress
