package alexa

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
)

// TestCertURL checks the certificate URL rules with Amazon's SDK vectors.
func TestCertURL(t *testing.T) {
	valid := map[string]string{
		"https://s3.amazonaws.com/echo.api/echo-api-cert.pem":             goodCertURL,
		"https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem":         goodCertURL,
		"https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert.pem": goodCertURL,
		"HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert.pem":             goodCertURL,
	}
	for in, want := range valid {
		got, err := CertURL(in)
		if err != nil || got != want {
			t.Errorf("CertURL(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	invalid := map[string]string{
		"http://s3.amazonaws.com/echo.api/echo-api-cert.pem":       "protocol",
		"https://notamazon.com/echo.api/echo-api-cert.pem":         "host",
		"https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem":      "path",
		"https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem":  "port",
		"https://s3.amazonaws.com/echo.api/../evil/cert.pem":       "path",
		"https://s3.amazonaws.com/invalid.path/echo-api-cert.pem":  "path",
		"https://user@s3.amazonaws.com/echo.api/echo-api-cert.pem": "user",
		"https://s3.amazonaws.com.evil.com/echo.api/cert.pem":      "host",
		"": "not a URL",
	}
	for in, want := range invalid {
		_, err := CertURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CertURL(%q) = %v, want an error about %s", in, err, want)
		}
	}
}

// TestVerification is the request verification suite, against a local CA.
func TestVerification(t *testing.T) {
	p := newPKI(t)
	body := golden.Read(t, "intent_request.json")
	tests := []struct {
		name   string
		modify func(r *channels.Request)
		want   string // "" = accepted; else part of the 401 message
	}{
		{"valid chain", nil, ""},
		{"port 443 and dot segments in the URL", func(r *channels.Request) {
			r.Header.Set(HeaderCertURL, "https://s3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem")
		}, ""},
		{"wrong SAN", func(r *channels.Request) { r.Header.Set(HeaderCertURL, wrongSANCertURL) }, "not for echo-api.amazon.com"},
		{"expired certificate", func(r *channels.Request) { r.Header.Set(HeaderCertURL, expiredCertURL) }, "not valid now"},
		{"untrusted root", func(r *channels.Request) { r.Header.Set(HeaderCertURL, untrustedCertURL) }, "certificate chain"},
		{"certificate not found", func(r *channels.Request) { r.Header.Set(HeaderCertURL, missingCertURL) }, "fetch signing certificate"},
		{"URL with http", func(r *channels.Request) {
			r.Header.Set(HeaderCertURL, "http://s3.amazonaws.com/echo.api/echo-api-cert.pem")
		}, "unsupported protocol"},
		{"URL with another host", func(r *channels.Request) {
			r.Header.Set(HeaderCertURL, "https://notamazon.com/echo.api/echo-api-cert.pem")
		}, "invalid host"},
		{"URL with another path case", func(r *channels.Request) {
			r.Header.Set(HeaderCertURL, "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem")
		}, "invalid path"},
		{"URL with another port", func(r *channels.Request) {
			r.Header.Set(HeaderCertURL, "https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem")
		}, "invalid port"},
		{"no certificate URL", func(r *channels.Request) { r.Header.Del(HeaderCertURL) }, "not a URL"},
		{"body changed after signing", func(r *channels.Request) {
			r.Body = bytes.Replace(r.Body, []byte("Seattle"), []byte("Seaside"), 1)
		}, "does not match"},
		{"signed with another key", func(r *channels.Request) {
			r.Header.Set(HeaderSignature, sign(t, p.otherKey, r.Body))
		}, "does not match"},
		{"no signature", func(r *channels.Request) { r.Header.Del(HeaderSignature) }, "Signature-256"},
		{"signature not base64", func(r *channels.Request) { r.Header.Set(HeaderSignature, "%%%") }, "Signature-256"},
		{"timestamp 149 s old", func(r *channels.Request) { r.Now = stamp(t, r.Body).Add(149 * time.Second) }, ""},
		{"timestamp 151 s old", func(r *channels.Request) { r.Now = stamp(t, r.Body).Add(151 * time.Second) }, "timestamp"},
		{"timestamp 151 s ahead", func(r *channels.Request) { r.Now = stamp(t, r.Body).Add(-151 * time.Second) }, "timestamp"},
		{"wrong skill id", func(r *channels.Request) {
			r.Settings = channels.Settings{SettingSkillID: "amzn1.ask.skill.another"}
		}, "another skill"},
		{"skill id only in context, wrong", func(r *channels.Request) {
			r.Body = bytes.Replace(r.Body, []byte(`"context":{"System":{"application":{"applicationId":"`+testSkillID),
				[]byte(`"context":{"System":{"application":{"applicationId":"amzn1.ask.skill.evil`), 1)
			r.Header.Set(HeaderSignature, sign(t, p.leafKey, r.Body))
		}, "another skill"},
		{"no skill id configured", func(r *channels.Request) { r.Settings = channels.Settings{} }, "another skill"},
		{"signature check off: unsigned request accepted", func(r *channels.Request) {
			r.Settings[SettingVerifySignature] = "false"
			r.Header = http.Header{}
		}, ""},
		{"signature check off: timestamp still checked", func(r *channels.Request) {
			r.Settings[SettingVerifySignature] = "false"
			r.Header = http.Header{}
			r.Now = r.Now.Add(time.Hour)
		}, "timestamp"},
		{"signature check off: skill id still checked", func(r *channels.Request) {
			r.Settings = channels.Settings{SettingSkillID: "amzn1.ask.skill.another", SettingVerifySignature: "false"}
			r.Header = http.Header{}
		}, "another skill"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := p.adapter()
			req := p.signedRequest(t, bytes.Clone(body))
			if tt.modify != nil {
				tt.modify(req)
			}
			in, err := a.Parse(req)
			if tt.want == "" {
				if err != nil || len(in.Events) != 1 {
					t.Fatalf("Parse = %v, %v; want one event", in, err)
				}
				return
			}
			var ce *channels.Error
			if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || !strings.Contains(ce.Message, tt.want) {
				t.Fatalf("Parse error = %v, want a 401 mentioning %q", err, tt.want)
			}
		})
	}
}

func stamp(t *testing.T, body []byte) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, string(bytes.SplitN(bytes.SplitN(body, []byte(`"timestamp":"`), 2)[1], []byte(`"`), 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestSkillEventTimestampWindow: skill lifecycle events may be an hour old.
func TestSkillEventTimestampWindow(t *testing.T) {
	p := newPKI(t)
	a := p.adapter()
	body := []byte(`{"version":"1.0","context":{"System":{"application":{"applicationId":"` + testSkillID + `"},"user":{"userId":"amzn1.ask.account.TEST"}}},"request":{"type":"AlexaSkillEvent.SkillEnabled","requestId":"amzn1.echo-api.request.ev1","timestamp":"2019-07-15T22:00:00Z"}}`)
	at := func(now string) error {
		req := p.signedRequest(t, body)
		req.Now, _ = time.Parse(time.RFC3339, now)
		_, err := a.Parse(req)
		return err
	}
	if err := at("2019-07-15T23:00:00Z"); err != nil {
		t.Errorf("skill event an hour old refused: %v", err)
	}
	if err := at("2019-07-15T23:00:01Z"); err == nil {
		t.Error("skill event over an hour old accepted")
	}
}

// TestCertificateCache: a certificate is fetched once for many concurrent
// requests, fetched again once it expires, and a failure is not retried at
// once.
func TestCertificateCache(t *testing.T) {
	p := newPKI(t)
	a := p.adapter()
	before := p.fetches.Load()
	body := golden.Read(t, "intent_request.json")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Parse(p.signedRequest(t, body)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := p.fetches.Load() - before; n != 1 {
		t.Errorf("20 requests fetched the certificate %d times, want 1", n)
	}

	before = p.fetches.Load()
	req := p.signedRequest(t, body)
	req.Header.Set(HeaderCertURL, missingCertURL)
	for i := 0; i < 3; i++ {
		if _, err := a.Parse(req); err == nil {
			t.Fatal("missing certificate accepted")
		}
	}
	if n := p.fetches.Load() - before; n != 1 {
		t.Errorf("a failing certificate URL was fetched %d times within a minute, want 1", n)
	}
	req.Now = req.Now.Add(2 * retryFailures)
	_, _ = a.Parse(req) // the fetch count is what is checked, not the outcome
	if n := p.fetches.Load() - before; n != 2 {
		t.Errorf("a failing certificate URL was not fetched again after %v (%d fetches)", 2*retryFailures, n)
	}

	// Past the leaf's expiry the chain is fetched and checked again.
	s, err := a.certs.get(goodCertURL, testNow)
	if err != nil {
		t.Fatal(err)
	}
	before = p.fetches.Load()
	if _, err := a.certs.get(goodCertURL, s.notAfter.Add(time.Second)); err == nil {
		t.Error("an expired cached certificate was accepted")
	}
	if n := p.fetches.Load() - before; n != 1 {
		t.Errorf("an expired certificate was fetched %d times, want 1", n)
	}
}

// TestUnverifiedRequestsAreLogged: turning verification off is loud.
func TestUnverifiedRequestsAreLogged(t *testing.T) {
	p := newPKI(t)
	var logs bytes.Buffer
	a := New(Config{Roots: p.roots, FetchCertificate: p.fetch, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	req := p.signedRequest(t, golden.Read(t, "launch_request.json"))
	if _, err := a.Parse(req); err != nil || logs.Len() != 0 {
		t.Fatalf("verified request: %v, logged %q", err, logs.String())
	}
	req.Settings[SettingVerifySignature] = "false"
	if _, err := a.Parse(req); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "NOT VERIFIED") {
		t.Errorf("unverified request logged %q", logs.String())
	}
	// Then at most one warning a minute, counting the requests since the last.
	logs.Reset()
	if _, err := a.Parse(req); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("a second unverified request within the minute logged %q", logs.String())
	}
	req.Now = req.Now.Add(61 * time.Second)
	if _, err := a.Parse(req); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "NOT VERIFIED"); n != 1 || !strings.Contains(logs.String(), "unverified_requests=2") {
		t.Errorf("a minute later, logged %q; want one warning counting 2 requests", logs.String())
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	good := []channels.Settings{
		{SettingSkillID: testSkillID},
		{SettingSkillID: testSkillID, SettingVerifySignature: "false", SettingCardTitle: "Pizza Bot"},
	}
	for _, s := range good {
		if err := a.ValidateSettings(s); err != nil {
			t.Errorf("ValidateSettings(%v) = %v", s, err)
		}
	}
	bad := []channels.Settings{
		{},
		{SettingSkillID: "my-skill"},
		{SettingSkillID: testSkillID, SettingVerifySignature: "nope"},
		{SettingSkillID: testSkillID, "token": "x"},
	}
	for _, s := range bad {
		if err := a.ValidateSettings(s); err == nil {
			t.Errorf("ValidateSettings(%v) accepted", s)
		}
	}
	if !verifySignature(channels.Settings{}) || !verifySignature(channels.Settings{SettingVerifySignature: "junk"}) ||
		verifySignature(channels.Settings{SettingVerifySignature: "false"}) {
		t.Error("verify_signature must default to true and only be off when set to false")
	}
}

func TestRenderError(t *testing.T) {
	p := newPKI(t)
	a := p.adapter()
	req := p.signedRequest(t, golden.Read(t, "intent_request.json"))
	resp := a.RenderError(req, errors.New("store down"))
	if resp.Status != http.StatusOK || !bytes.Contains(resp.Body, []byte(`"shouldEndSession":false`)) ||
		!bytes.Contains(resp.Body, []byte("try again")) {
		t.Errorf("RenderError = %d %s", resp.Status, resp.Body)
	}
	req = p.signedRequest(t, golden.Read(t, "session_ended_request.json"))
	if resp := a.RenderError(req, errors.New("store down")); string(resp.Body) != `{"version":"1.0","response":{}}` {
		t.Errorf("RenderError for SessionEndedRequest = %s", resp.Body)
	}
	if a.Budget() != DefaultBudget || New(Config{Budget: time.Second}).Budget() != time.Second {
		t.Error("Budget")
	}
}

// TestNoFetchBeforeCheapChecks: a request for another skill, with a stale
// timestamp or with a body that is not Alexa's never makes the adapter fetch
// its certificate URL, and is refused with a 401.
func TestNoFetchBeforeCheapChecks(t *testing.T) {
	p := newPKI(t)
	a := p.adapter()
	body := golden.Read(t, "intent_request.json")
	cases := map[string]func(r *channels.Request){
		"another skill": func(r *channels.Request) { r.Settings = channels.Settings{SettingSkillID: "amzn1.ask.skill.another"} },
		"stale":         func(r *channels.Request) { r.Now = r.Now.Add(time.Hour) },
		"not json": func(r *channels.Request) {
			r.Body = []byte("junk")
			r.Header.Set(HeaderSignature, sign(t, p.leafKey, r.Body))
		},
	}
	for name, modify := range cases {
		req := p.signedRequest(t, bytes.Clone(body))
		req.Header.Set(HeaderCertURL, "https://s3.amazonaws.com/echo.api/new-"+strings.ReplaceAll(name, " ", "-")+".pem")
		modify(req)
		before := p.fetches.Load()
		_, err := a.Parse(req)
		var ce *channels.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
			t.Errorf("%s: Parse error = %v, want a 401", name, err)
		}
		if n := p.fetches.Load() - before; n != 0 {
			t.Errorf("%s: the certificate URL was fetched %d times before the request was refused", name, n)
		}
	}
}

// TestCertificateFetchesBounded: requests naming many new certificate URLs
// at once start at most maxInflightFetches fetches, the rest are refused
// without one, and the cache never holds more than maxCacheSize entries.
func TestCertificateFetchesBounded(t *testing.T) {
	p := newPKI(t)
	release := make(chan struct{})
	var inflight, peak, fetches atomic.Int64
	a := New(Config{Roots: p.roots, FetchCertificate: func(u string) ([]byte, error) {
		fetches.Add(1)
		n := inflight.Add(1)
		for {
			if m := peak.Load(); n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
		return nil, errors.New("404 Not Found")
	}})
	body := golden.Read(t, "intent_request.json")
	const requests = 2 * maxCacheSize
	var refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < requests; i++ {
		req := p.signedRequest(t, body)
		req.Header.Set(HeaderCertURL, fmt.Sprintf("https://s3.amazonaws.com/echo.api/cert-%d.pem", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Parse(req); err != nil && strings.Contains(err.Error(), "too many") {
				refused.Add(1)
			}
		}()
	}
	// Wait until every request is either fetching or refused.
	for deadline := time.Now().Add(20 * time.Second); inflight.Load()+refused.Load() < requests && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	a.certs.mu.Lock()
	cached := len(a.certs.entries)
	a.certs.mu.Unlock()
	close(release)
	wg.Wait()
	if peak.Load() > maxInflightFetches || cached > maxCacheSize {
		t.Errorf("%d requests with new certificate URLs: %d fetches at once (max %d), %d cache entries (max %d)",
			requests, peak.Load(), maxInflightFetches, cached, maxCacheSize)
	}
	if got := fetches.Load() + refused.Load(); got != requests {
		t.Errorf("%d fetched + %d refused, want %d requests in all", fetches.Load(), refused.Load(), requests)
	}

	// Fetched one after the other, many URLs still fit the bound.
	for i := 0; i < requests; i++ {
		req := p.signedRequest(t, body)
		req.Header.Set(HeaderCertURL, fmt.Sprintf("https://s3.amazonaws.com/echo.api/later-%d.pem", i))
		_, _ = a.Parse(req) // the cache bound is what is checked, not the outcome
	}
	a.certs.mu.Lock()
	defer a.certs.mu.Unlock()
	if n := len(a.certs.entries); n > maxCacheSize {
		t.Errorf("%d cache entries, want at most %d", n, maxCacheSize)
	}
}
