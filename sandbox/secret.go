package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	lua "github.com/yuin/gopher-lua"
)

// Secrets resolves secret("NAME") for the bot of the running call. A name
// the bot has no secret of is an error wrapping ErrSecretNotSet; any other
// error is shown to scripts as "secret: unavailable", without its text.
// Implementations answer from memory: secret() is on the request path.
type Secrets interface {
	Secret(ctx context.Context, bot, name string) (string, error)
}

// ErrSecretNotSet is wrapped by Secrets errors for a secret a bot does not have.
var ErrSecretNotSet = errors.New("secret not set")

// secretMask is what a secret looks like wherever it is shown.
const secretMask = "***"

// maxSecretName caps a secret's name.
const maxSecretName = 64

// secretValue is a secret as a script holds it: the Value of an opaque
// userdata that only the http module reads (as a header value). Formatted
// by fmt or slog, however deep in another value, it is ***; it refuses to
// be encoded as JSON.
type secretValue struct{ value string }

// String is ***.
func (*secretValue) String() string { return secretMask }

// GoString is ***.
func (*secretValue) GoString() string { return secretMask }

// Format writes *** for every verb.
func (*secretValue) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(secretMask)) }

// LogValue is ***.
func (*secretValue) LogValue() slog.Value { return slog.StringValue(secretMask) }

// MarshalJSON refuses: a secret is never encoded.
func (*secretValue) MarshalJSON() ([]byte, error) { return nil, errSecretEncoded }

var errSecretEncoded = errors.New("a secret cannot be encoded")

// secretUse is the hint every refusal of a secret carries.
const secretUse = "a secret can only be used as an http header value"

// newSecretMetatable returns the metatable of every secret of a VM:
// tostring gives ***, and every other use but comparing raises.
func (v *vm) newSecretMetatable() *lua.LTable {
	L := v.L
	mt := L.CreateTable(0, 8)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(secretMask))
		return 1
	}))
	refuse := func(what string) *lua.LFunction {
		return L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("secret: %s; %s", what, secretUse)
			return 0
		})
	}
	mt.RawSetString("__concat", refuse("cannot be joined to a string with .."))
	mt.RawSetString("__index", refuse("has no fields"))
	mt.RawSetString("__newindex", refuse("has no fields"))
	mt.RawSetString("__len", refuse("has no length"))
	mt.RawSetString("__call", refuse("cannot be called"))
	mt.RawSetString("__metatable", lua.LFalse)
	return mt
}

// isSecret reports whether lv is a secret, and returns it.
func isSecret(lv lua.LValue) (*secretValue, bool) {
	ud, ok := lv.(*lua.LUserData)
	if !ok {
		return nil, false
	}
	s, ok := ud.Value.(*secretValue)
	return s, ok
}

// validSecretName reports whether name is an upper-case letter, then
// upper-case letters, digits or '_', up to 64.
func validSecretName(name string) bool {
	if name == "" || len(name) > maxSecretName || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// luaSecret is secret(name): the bot's secret of that name as an opaque
// value, or nil and a message when the bot has none.
//
//	secret("OPENAI_KEY")  -> secret | nil, "secret: OPENAI_KEY is not set"
func (v *vm) luaSecret(L *lua.LState) int {
	c := v.requireCall(L, "secret")
	name := L.CheckString(1)
	if !validSecretName(name) {
		L.ArgError(1, "a secret's name is an upper-case letter, then up to 63 upper-case letters, digits or '_'")
	}
	if v.secrets == nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("secret: not available"))
		return 2
	}
	var val string
	err := v.hostIO(func(ctx context.Context) (err error) {
		val, err = v.secrets.Secret(ctx, c.Key.Bot, name)
		return err
	})
	if err != nil {
		L.Push(lua.LNil)
		switch {
		case errors.Is(err, ErrSecretNotSet):
			L.Push(lua.LString("secret: " + name + " is not set"))
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			L.Push(lua.LString(hostFailure("secret", err)))
		default:
			L.Push(lua.LString("secret: unavailable"))
		}
		return 2
	}
	charge(L, len(val))
	ud := L.NewUserData()
	ud.Value = &secretValue{value: val}
	ud.Metatable = v.secretMT
	L.Push(ud)
	return 1
}
