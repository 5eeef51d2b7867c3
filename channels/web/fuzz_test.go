package web

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerifyToken: no input panics Verify, and only what Mint made for the
// bot, under the channel token, verifies (as the user it named).
func FuzzVerifyToken(f *testing.F) {
	tk := NewTokens([]byte("server-secret-0123456789"))
	good := tk.Mint("b", token, "alice", now.Add(time.Hour))
	for _, s := range []string{good, "", "wt1..", "wt1.a.b", good + "x", strings.Replace(good, "wt1", "wt2", 1)} {
		f.Add(s, "alice")
	}
	f.Fuzz(func(t *testing.T, s, user string) {
		if got, _, err := tk.Verify("b", token, s, now); err == nil && s != good && got != "alice" {
			t.Fatalf("Verify(%q) = %q without error", s, got)
		}
		if !ValidUser(user) {
			return
		}
		minted := tk.Mint("b", token, user, now.Add(time.Minute))
		if got, _, err := tk.Verify("b", token, minted, now); err != nil || got != user {
			t.Fatalf("round trip of %q: %q, %v", user, got, err)
		}
	})
}

// FuzzParseOrigins: no input panics, and what is accepted parses again to
// itself.
func FuzzParseOrigins(f *testing.F) {
	for _, s := range []string{"https://a.example", "http://localhost:8080, https://B.example:443", "*", "https://a/b", "http://[::1]:3000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseOrigins(s)
		if err != nil {
			return
		}
		again, err := ParseOrigins(strings.Join(got, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(got, ",") {
			t.Fatalf("%q -> %q -> %q, %v", s, got, again, err)
		}
	})
}
