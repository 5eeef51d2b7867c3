package alexa

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
)

// A local PKI standing in for Amazon's: a root, an intermediate, and signing
// certificates good and bad, served by a fake fetcher.
const (
	goodCertURL      = "https://s3.amazonaws.com/echo.api/echo-api-cert.pem"
	wrongSANCertURL  = "https://s3.amazonaws.com/echo.api/wrong-san.pem"
	expiredCertURL   = "https://s3.amazonaws.com/echo.api/expired.pem"
	untrustedCertURL = "https://s3.amazonaws.com/echo.api/untrusted.pem"
	missingCertURL   = "https://s3.amazonaws.com/echo.api/missing.pem"
)

// testNow is the clock of the tests: the timestamp of the real payloads plus
// ten seconds.
var testNow = time.Date(2019, 7, 15, 22, 44, 33, 0, time.UTC)

type testPKI struct {
	roots    *x509.CertPool
	leafKey  *rsa.PrivateKey
	otherKey *rsa.PrivateKey
	pems     map[string][]byte
	fetches  atomic.Int64
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		p := &testPKI{pems: map[string][]byte{}, roots: x509.NewCertPool()}
		key := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		rootKey, interKey, strangerKey := key(), key(), key()
		p.leafKey, p.otherKey = key(), key()
		notBefore, notAfter := testNow.Add(-24*time.Hour), testNow.Add(365*24*time.Hour)
		serial := int64(0)
		issue := func(tmpl *x509.Certificate, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
			serial++
			tmpl.SerialNumber = big.NewInt(serial)
			if tmpl.NotBefore.IsZero() {
				tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
			}
			if parent == nil {
				parent = tmpl
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
			if err != nil {
				panic(err)
			}
			c, _ := x509.ParseCertificate(der)
			return c
		}
		ca := func(name string) *x509.Certificate {
			return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
				KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		}
		leaf := func(san string) *x509.Certificate {
			return &x509.Certificate{Subject: pkix.Name{CommonName: san}, DNSNames: []string{san},
				KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		}
		root := issue(ca("Test Root CA"), nil, &rootKey.PublicKey, rootKey)
		inter := issue(ca("Test Intermediate CA"), root, &interKey.PublicKey, rootKey)
		stranger := issue(ca("Stranger CA"), nil, &strangerKey.PublicKey, strangerKey)
		p.roots.AddCert(root)

		good := issue(leaf(certSAN), inter, &p.leafKey.PublicKey, interKey)
		wrongSAN := issue(leaf("echo-api.example.com"), inter, &p.leafKey.PublicKey, interKey)
		expiredTmpl := leaf(certSAN)
		expiredTmpl.NotBefore, expiredTmpl.NotAfter = testNow.Add(-48*time.Hour), testNow.Add(-time.Hour)
		expired := issue(expiredTmpl, inter, &p.leafKey.PublicKey, interKey)
		untrusted := issue(leaf(certSAN), stranger, &p.leafKey.PublicKey, strangerKey)

		p.pems[goodCertURL] = pemChain(good, inter)
		p.pems[wrongSANCertURL] = pemChain(wrongSAN, inter)
		p.pems[expiredCertURL] = pemChain(expired, inter)
		p.pems[untrustedCertURL] = pemChain(untrusted, stranger)
		pki = p
	})
	return pki
}

func pemChain(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// fetch serves the PKI's chains like S3 would.
func (p *testPKI) fetch(u string) ([]byte, error) {
	p.fetches.Add(1)
	if b, ok := p.pems[u]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("GET %s: 404 Not Found", u)
}

// adapter is an Alexa adapter trusting the PKI's root.
func (p *testPKI) adapter() *Adapter {
	return New(Config{Roots: p.roots, FetchCertificate: p.fetch})
}

// sign is the Signature-256 header of body with key.
func sign(t testing.TB, key *rsa.PrivateKey, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

const testSkillID = "amzn1.ask.skill.c966b8cb-80bc-4482-8ddf-63af59ca07fc"

// signedRequest is a request as Alexa sends it, signed with the good
// certificate.
func (p *testPKI) signedRequest(t testing.TB, body []byte) *channels.Request {
	t.Helper()
	h := http.Header{}
	h.Set(HeaderCertURL, goodCertURL)
	h.Set(HeaderSignature, sign(t, p.leafKey, body))
	h.Set("Content-Type", "application/json")
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/alexa"},
		Header: h, Body: body, Settings: channels.Settings{SettingSkillID: testSkillID}, Now: testNow}
}
