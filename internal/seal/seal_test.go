package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpenRoundTrip(t *testing.T) {
	kr, err := New(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"", "sk-live-123", strings.Repeat("x", 8<<10), "\x00\xff"} {
		s, err := kr.Seal([]byte(plain), "secret", "pizzabot", "OPENAI_KEY")
		if err != nil {
			t.Fatal(err)
		}
		if !IsSealed(s) || !kr.Current(s) {
			t.Fatalf("sealed value %q is not recognized", s)
		}
		if plain != "" && strings.Contains(s, plain) {
			t.Fatal("the sealed value contains the plaintext")
		}
		got, err := kr.Open(s, "secret", "pizzabot", "OPENAI_KEY")
		if err != nil || string(got) != plain {
			t.Fatalf("Open = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestSealUsesAFreshNonce(t *testing.T) {
	kr, _ := New(testKey(1))
	a, _ := kr.Seal([]byte("same"), "x")
	b, _ := kr.Seal([]byte("same"), "x")
	if a == b {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
}

func TestContextIsBound(t *testing.T) {
	kr, _ := New(testKey(1))
	s, _ := kr.Seal([]byte("v"), "secret", "bot-a", "KEY")
	for _, ctx := range [][]string{
		{"secret", "bot-b", "KEY"},
		{"secret", "bot-a", "OTHER"},
		{"channel", "bot-a", "KEY"},
		{"secret", "bot-aK", "EY"},
		{"secret", "bot-a"},
		nil,
	} {
		if _, err := kr.Open(s, ctx...); !errors.Is(err, ErrTampered) {
			t.Errorf("Open with context %q: %v, want ErrTampered", ctx, err)
		}
	}
}

func TestTamperedValuesDoNotOpen(t *testing.T) {
	kr, _ := New(testKey(1))
	s, _ := kr.Seal([]byte("value"), "c")
	id, body, _ := split(s)
	raw, _ := base64.RawStdEncoding.DecodeString(body)
	for i := range raw {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 1
		if _, err := kr.Open(prefix+id+":"+base64.RawStdEncoding.EncodeToString(flipped), "c"); !errors.Is(err, ErrTampered) {
			t.Fatalf("a flipped bit at %d: %v", i, err)
		}
	}
	for _, bad := range []string{prefix + id + ":", prefix + id + ":!!", s[:len(s)-4]} {
		if _, err := kr.Open(bad, "c"); !errors.Is(err, ErrTampered) {
			t.Errorf("Open(%q) = %v, want ErrTampered", bad, err)
		}
	}
	for _, bad := range []string{"", "{}", `{"token":"x"}`, "enc:v1:", "enc:v1:abc:def", "enc:v2:12345678:AAAA"} {
		if _, err := kr.Open(bad, "c"); !errors.Is(err, ErrNotSealed) {
			t.Errorf("Open(%q) = %v, want ErrNotSealed", bad, err)
		}
	}
}

func TestRotation(t *testing.T) {
	old, _ := New(testKey(1))
	s, _ := old.Seal([]byte("v"), "c")
	rotated, err := New(testKey(2), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Current(s) {
		t.Fatal("a value sealed under the previous key counts as current")
	}
	if got, err := rotated.Open(s, "c"); err != nil || string(got) != "v" {
		t.Fatalf("the previous key does not open its value: %q, %v", got, err)
	}
	again, _ := rotated.Seal([]byte("v"), "c")
	if !rotated.Current(again) {
		t.Fatal("a new seal is not under the current key")
	}
	if _, err := old.Open(again, "c"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a keyring without the new key: %v, want ErrUnknownKey", err)
	}
	onlyNew, _ := New(testKey(2))
	if _, err := onlyNew.Open(s, "c"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a dropped previous key: %v, want ErrUnknownKey", err)
	}
}

func TestNilKeyring(t *testing.T) {
	var kr *Keyring
	if _, err := kr.Seal([]byte("v")); !errors.Is(err, ErrNoKey) {
		t.Fatal(err)
	}
	if _, err := kr.Open("enc:v1:12345678:AAAA"); !errors.Is(err, ErrNoKey) {
		t.Fatal(err)
	}
	if kr.Current("enc:v1:12345678:AAAA") || kr.CurrentID() != "" {
		t.Fatal("a nil keyring claims a key")
	}
}

func TestParseKey(t *testing.T) {
	k := testKey(7)
	for _, s := range []string{
		hex.EncodeToString(k), strings.ToUpper(hex.EncodeToString(k)),
		base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), " " + FormatKey(k) + "\n",
	} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "short", base64.StdEncoding.EncodeToString(k[:16]), hex.EncodeToString(k)[:63] + "g",
		"this-is-not-a-key-but-it-is-long-enough-to-be-one-0123456789"} {
		_, err := ParseKey(s)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	if _, err := New(k[:16]); err == nil {
		t.Error("New accepted a 16-byte key")
	}
}

func FuzzOpen(f *testing.F) {
	kr, _ := New(testKey(1))
	s, _ := kr.Seal([]byte("seed"), "c")
	f.Add(s)
	f.Add("enc:v1:00000000:AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		// Only what was sealed under the key and context opens.
		if out, err := kr.Open(in, "c"); err == nil && string(out) != "seed" {
			t.Fatalf("a forged value opened: %q", in)
		}
	})
}
