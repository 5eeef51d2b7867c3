package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a key in bytes: AES-256.
const KeySize = 32

// prefix starts every sealed value: the format's name and version. Version
// 1 is AES-256-GCM with a random 12-byte nonce.
const prefix = "enc:v1:"

// Errors of [Keyring.Open] and [Keyring.Seal]. None of them carries a
// plaintext or a ciphertext.
var (
	// ErrNoKey is returned by a nil Keyring: no key is configured.
	ErrNoKey = errors.New("no secret key is configured")
	// ErrNotSealed is a value that is not in the sealed format.
	ErrNotSealed = errors.New("value is not sealed")
	// ErrUnknownKey is a value sealed under a key the Keyring does not hold.
	ErrUnknownKey = errors.New("value is sealed under a key that is not configured")
	// ErrTampered is a value that does not open under its key and context:
	// altered, truncated, or moved from another bot or name.
	ErrTampered = errors.New("sealed value does not authenticate")
)

// ParseKey reads a key written as base64 (standard or URL alphabet, with or
// without padding) or as 64 hexadecimal digits. Its errors never contain
// the text they were given.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("key is %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("key is neither base64 nor %d hexadecimal digits", 2*KeySize)
}

// NewKey returns a new random key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// FormatKey writes a key as ParseKey reads it (standard base64).
func FormatKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// key is one key of a Keyring.
type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring seals values under its current key and opens values sealed under
// any of its keys. A nil *Keyring holds no key: Seal and Open return
// ErrNoKey. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	current *key
	byID    map[string]*key
}

// New returns a Keyring that seals under current and also opens values
// sealed under previous keys (for rotation). Every key must be KeySize bytes.
func New(current []byte, previous ...[]byte) (*Keyring, error) {
	kr := &Keyring{byID: make(map[string]*key, 1+len(previous))}
	for i, raw := range append([][]byte{current}, previous...) {
		k, err := newKey(raw)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			kr.current = k
		}
		if _, dup := kr.byID[k.id]; !dup {
			kr.byID[k.id] = k
		}
	}
	return kr, nil
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return &key{id: KeyID(raw), aead: aead}, nil
}

// KeyID names a key in sealed values: 8 hexadecimal digits of a hash of it,
// which tell keys apart and say nothing usable about them.
func KeyID(k []byte) string {
	h := sha256.New()
	h.Write([]byte("parley seal key id\x00"))
	h.Write(k)
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// CurrentID is the id of the key new values are sealed under, or "" for a
// nil Keyring.
func (kr *Keyring) CurrentID() string {
	if kr == nil {
		return ""
	}
	return kr.current.id
}

// Seal encrypts plaintext under the current key with a new random nonce.
// The context (for example a bot and a secret's name) is authenticated but
// not stored: Open must be given the same context, so a sealed value
// cannot be moved to another bot or name. The result is text:
// "enc:v1:<key id>:<base64 of nonce, ciphertext and tag>".
func (kr *Keyring) Seal(plaintext []byte, context ...string) (string, error) {
	if kr == nil {
		return "", ErrNoKey
	}
	k := kr.current
	buf := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	buf = k.aead.Seal(buf, buf, plaintext, additionalData(context))
	return prefix + k.id + ":" + base64.RawStdEncoding.EncodeToString(buf), nil
}

// Open decrypts a value made by Seal under any key of the Keyring, with the
// context it was sealed with.
func (kr *Keyring) Open(sealed string, context ...string) ([]byte, error) {
	if kr == nil {
		return nil, ErrNoKey
	}
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	k, ok := kr.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrTampered
	}
	n := k.aead.NonceSize()
	out, err := k.aead.Open(nil, raw[:n], raw[n:], additionalData(context))
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}

// Current reports whether sealed is sealed under the current key, so that
// values sealed under a previous key can be sealed again after a rotation.
func (kr *Keyring) Current(sealed string) bool {
	id, _, err := split(sealed)
	return err == nil && kr != nil && id == kr.current.id
}

// IsSealed reports whether s is in the sealed format (whatever its key),
// which no JSON value and no value Seal does not make starts with.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// split cuts a sealed value into its key id and its base64 body.
func split(sealed string) (id, body string, err error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", "", ErrNotSealed
	}
	id, body, ok = strings.Cut(rest, ":")
	if !ok || len(id) != 8 {
		return "", "", ErrNotSealed
	}
	return id, body, nil
}

// additionalData is the context as GCM authenticates it: the format's name,
// then each part with its length, so that no two contexts write the same
// bytes ("a", "bc" and "ab", "c" differ).
func additionalData(context []string) []byte {
	n := len(prefix)
	for _, c := range context {
		n += binary.MaxVarintLen64 + len(c)
	}
	ad := make([]byte, 0, n)
	ad = append(ad, prefix...)
	for _, c := range context {
		ad = binary.AppendUvarint(ad, uint64(len(c)))
		ad = append(ad, c...)
	}
	return ad
}
