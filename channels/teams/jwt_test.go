package teams

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/channels/teams/teamstest"
)

// noneToken is claims unsigned, with alg "none".
func noneToken(t *testing.T, c teamstest.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, c.Map())
	tok.Header["kid"] = "key-1"
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hmacToken is claims signed with HS256, keyed with the RSA key's public
// PEM: the algorithm confusion a verifier must not fall for.
func hmacToken(t *testing.T, k teamstest.Key, c teamstest.Claims) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c.Map())
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
