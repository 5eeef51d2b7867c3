package alexa

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// Headers Alexa signs requests with.
const (
	HeaderSignature = "Signature-256"
	HeaderCertURL   = "SignatureCertChainUrl"
)

// Amazon's rules for the signing certificate.
const (
	certHost       = "s3.amazonaws.com"
	certPathPrefix = "/echo.api/"
	certSAN        = "echo-api.amazon.com"
)

// Timestamp tolerance: 150 seconds, an hour for skill lifecycle events.
const (
	MaxRequestAge = 150 * time.Second
	MaxEventAge   = time.Hour
)

// Defaults of the production certificate fetcher.
const (
	fetchTimeout = 5 * time.Second
	maxCertBytes = 64 << 10
	maxCacheSize = 32
	// maxInflightFetches bounds the fetches of distinct certificate URLs
	// in flight; below maxCacheSize, so that a full cache always has a
	// finished entry to drop.
	maxInflightFetches = 4
	retryFailures      = time.Minute // a certificate URL that failed is not fetched again sooner
)

// CertURL checks a SignatureCertChainUrl against Amazon's rules (https,
// host s3.amazonaws.com, port 443 if any, a path under /echo.api/ once
// normalized) and returns the normalized URL to fetch.
func CertURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return "", fmt.Errorf("SignatureCertChainUrl is not a URL")
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return "", fmt.Errorf("SignatureCertChainUrl has the unsupported protocol %q; expecting https", u.Scheme)
	}
	if !strings.EqualFold(u.Hostname(), certHost) {
		return "", fmt.Errorf("SignatureCertChainUrl has the invalid host %q; expecting %s", u.Hostname(), certHost)
	}
	if p := u.Port(); p != "" && p != "443" {
		return "", fmt.Errorf("SignatureCertChainUrl has the invalid port %s; expecting 443", p)
	}
	if u.User != nil {
		return "", fmt.Errorf("SignatureCertChainUrl must not have user information")
	}
	clean := path.Clean(u.Path)
	if !strings.HasPrefix(clean, certPathPrefix) {
		return "", fmt.Errorf("SignatureCertChainUrl has the invalid path %q; expecting one under %s", u.Path, certPathPrefix)
	}
	return (&url.URL{Scheme: "https", Host: certHost, Path: clean}).String(), nil
}

// fetchHTTP is the production certificate fetcher.
func fetchHTTP(client *http.Client) func(string) ([]byte, error) {
	return func(u string) ([]byte, error) {
		resp, err := client.Get(u)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxCertBytes+1))
		if err != nil {
			return nil, err
		}
		if len(body) > maxCertBytes {
			return nil, fmt.Errorf("GET %s: certificate chain larger than %d bytes", u, maxCertBytes)
		}
		return body, nil
	}
}

func defaultClient() *http.Client {
	return &http.Client{
		Timeout: fetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the certificate URL redirects")
		},
	}
}

// signer is a verified signing certificate's key and the period in which its
// whole chain is valid.
type signer struct {
	key                 *rsa.PublicKey
	notBefore, notAfter time.Time
}

// checkChain parses a PEM chain (leaf first) and verifies it at now: a chain
// to one of roots (nil: the system's), and echo-api.amazon.com among the
// leaf's subject alternative names.
func checkChain(pemData []byte, roots *x509.CertPool, now time.Time) (*signer, error) {
	var certs []*x509.Certificate
	for rest := pemData; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse signing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate at SignatureCertChainUrl")
	}
	leaf := certs[0]
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("signing certificate is not valid now (valid %s to %s)",
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := leaf.VerifyHostname(certSAN); err != nil {
		return nil, fmt.Errorf("signing certificate is not for %s: %w", certSAN, err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("signing certificate chain: %w", err)
	}
	key, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("signing certificate has no RSA key")
	}
	s := &signer{key: key, notBefore: leaf.NotBefore, notAfter: leaf.NotAfter}
	for _, c := range chains[0] {
		if c.NotBefore.After(s.notBefore) {
			s.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(s.notAfter) {
			s.notAfter = c.NotAfter
		}
	}
	return s, nil
}

// certCache fetches and verifies each certificate URL once, shares one fetch
// between concurrent requests, and keeps the result until the chain expires;
// a failure is kept for a minute. It holds at most maxCacheSize entries and
// runs at most maxFetches fetches of distinct URLs at once: a request that
// would need one more is refused at once, without a fetch.
type certCache struct {
	fetch func(string) ([]byte, error)
	roots *x509.CertPool
	// maxFetches bounds the fetches in flight (default maxInflightFetches).
	maxFetches int

	mu       sync.Mutex
	entries  map[string]*certEntry
	inflight int
}

type certEntry struct {
	ready   chan struct{} // closed when the fields below are set
	signer  *signer
	err     error
	fetched time.Time
}

// errBusy refuses a request whose certificate would be one fetch too many.
var errBusy = errors.New("too many signing certificates are being fetched; try again")

func (c *certCache) get(certURL string, now time.Time) (*signer, error) {
	for attempt := 0; attempt < 2; attempt++ {
		c.mu.Lock()
		e, ok := c.entries[certURL]
		if !ok {
			if c.inflight >= c.maxFetches || !c.evictLocked() {
				c.mu.Unlock()
				return nil, errBusy
			}
			e = &certEntry{ready: make(chan struct{})}
			c.entries[certURL] = e
			c.inflight++
			c.mu.Unlock()
			c.load(e, certURL, now)
			c.mu.Lock()
			c.inflight--
			c.mu.Unlock()
			return e.signer, e.err
		}
		c.mu.Unlock()
		<-e.ready
		switch {
		case e.err == nil && !now.Before(e.signer.notBefore) && !now.After(e.signer.notAfter):
			return e.signer, nil
		case e.err != nil && now.Sub(e.fetched) < retryFailures && now.Sub(e.fetched) >= 0:
			return nil, e.err
		}
		// Expired, or an old failure: fetch again.
		c.mu.Lock()
		if c.entries[certURL] == e {
			delete(c.entries, certURL)
		}
		c.mu.Unlock()
	}
	return nil, errors.New("signing certificate is not valid now")
}

func (c *certCache) load(e *certEntry, certURL string, now time.Time) {
	defer close(e.ready)
	e.fetched = now
	data, err := c.fetch(certURL)
	if err != nil {
		e.err = fmt.Errorf("fetch signing certificate: %w", err)
		return
	}
	e.signer, e.err = checkChain(data, c.roots, now)
}

// evictLocked makes room for one more entry, dropping a finished one; it
// reports false when every entry is still being fetched.
func (c *certCache) evictLocked() bool {
	if len(c.entries) < maxCacheSize {
		return true
	}
	for k, e := range c.entries {
		select {
		case <-e.ready:
			delete(c.entries, k)
			return true
		default:
		}
	}
	return false
}

// signatureHeaders reads the certificate URL (normalized) and the signature
// of a request, before anything is fetched.
func signatureHeaders(h http.Header) (certURL string, sig []byte, err error) {
	certURL, err = CertURL(h.Get(HeaderCertURL))
	if err != nil {
		return "", nil, err
	}
	sig, err = base64.StdEncoding.DecodeString(strings.TrimSpace(h.Get(HeaderSignature)))
	if err != nil || len(sig) == 0 {
		return "", nil, fmt.Errorf("missing or malformed %s header", HeaderSignature)
	}
	return certURL, sig, nil
}

// verifySignature checks sig over body with the certificate at certURL,
// fetching it if need be.
func (c *certCache) verifySignature(certURL string, sig, body []byte, now time.Time) error {
	s, err := c.get(certURL, now)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(s.key, crypto.SHA256, sum[:], sig); err != nil {
		return errors.New("the request signature does not match its body")
	}
	return nil
}
