package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// KV is the bot-wide key/value store behind the store module. Keys are
// namespaced by bot: no bot can read or write another's. Implementations
// enforce their own quotas and report them with errors wrapping ErrQuota;
// any other error is shown to scripts as "store unavailable".
type KV interface {
	// Get returns the value of key; ok is false when there is none.
	Get(ctx context.Context, bot, key string) (value []byte, ok bool, err error)
	// Set stores value under key; a ttl of zero keeps it until deleted.
	Set(ctx context.Context, bot, key string, value []byte, ttl time.Duration) error
	// Delete removes key; removing a missing key is no error.
	Delete(ctx context.Context, bot, key string) error
}

// HTTPClient makes the outbound requests of the http module. It decides
// which hosts a bot may reach from HTTPRequest.Allow and reports refusals
// and failures as errors, whose text scripts see.
type HTTPClient interface {
	Do(ctx context.Context, req *HTTPRequest) (*HTTPResponse, error)
}

// HTTPRequest is one outbound request of a handler.
type HTTPRequest struct {
	// Bot is the bot making the request.
	Bot string
	// Allow is the bot's allow-list of hosts (Call.HTTPAllow).
	Allow []string
	// Method is GET or POST.
	Method string
	// URL is the absolute http or https URL.
	URL string
	// Header holds request headers, one value each.
	Header map[string]string
	// Body is the request body, for POST.
	Body []byte
	// MaxResponseBytes caps the response, headers included; a larger one is
	// an error.
	MaxResponseBytes int
}

// HTTPResponse is the answer to an HTTPRequest.
type HTTPResponse struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers, lower-cased, first value each.
	Header map[string]string
	// Body is the response body.
	Body []byte
}

// ErrQuota is wrapped by KV errors that report a quota: too many keys, a
// value too large. Their text is shown to scripts.
var ErrQuota = errors.New("quota exceeded")

// Limits of the host modules.
const (
	maxStoreKeyBytes    = 256
	maxStoreValueBytes  = 1 << 20 // the KV's own quota is usually smaller
	maxHTTPRequestBytes = 64 << 10
	maxHTTPHeaderBytes  = 8 << 10
	maxHTTPURLBytes     = 4096
	// A response's headers reach the script up to these caps (the client
	// may cap them before, see HTTPClient); beyond them the request fails.
	maxHTTPResponseHeaderBytes = 64 << 10
	maxHTTPResponseHeaders     = 100
)

// hostContext returns the context for the host I/O of the current call. It
// ends with the call's budget, with its caller's context, and when the heap
// guard interrupts the call. It is made on first use, so calls without
// I/O pay nothing for it.
func (v *vm) hostContext() context.Context {
	if v.hostCtx == nil {
		at, _ := v.dl.Deadline()
		ctx, cancel := context.WithDeadline(v.ctx, at)
		if !v.dl.setHostCancel(cancel) {
			cancel()
		}
		v.hostCtx = ctx
	}
	return v.hostCtx
}

// hostIO runs f, a blocking host call, and accounts its time as waiting
// rather than computing. While it runs the heap guard passes the call over.
func (v *vm) hostIO(f func(ctx context.Context) error) error {
	ctx := v.hostContext()
	if err := ctx.Err(); err != nil {
		return err
	}
	v.dl.inHost.Store(true)
	t0 := time.Now()
	err := f(ctx)
	v.hostWait += time.Since(t0)
	v.dl.inHost.Store(false)
	return err
}

// raiseLimit raises a Lua error that makes the call's outcome "limit" when
// it ends the call.
func raiseLimit(L *lua.LState, format string, args ...any) {
	if d, ok := L.Context().(*deadline); ok {
		d.limitHit = true
	}
	L.RaiseError(format, args...)
}

// requireCall raises unless a handler call is running: host I/O is not
// available while a script is validated at upload.
func (v *vm) requireCall(L *lua.LState, module string) *Call {
	if !v.active || v.call == nil {
		L.RaiseError("%s: not available at upload; use it inside handle", module)
	}
	return v.call
}

// hostFailure turns a host call's error into the message scripts get.
func hostFailure(module string, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return module + ": timed out"
	case errors.Is(err, context.Canceled):
		return module + ": cancelled"
	}
	return module + ": " + err.Error()
}

// openStore builds the store module: bot-wide values that outlive
// conversations.
//
//	store.set(key, value [, ttl_seconds]) -> true | nil, message
//	store.get(key)                         -> value | nil [, message]
//	store.delete(key)                      -> true | nil, message
func (v *vm) openStore() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 3)
	t.RawSetString("get", L.NewFunction(v.storeGet))
	t.RawSetString("set", L.NewFunction(v.storeSet))
	t.RawSetString("delete", L.NewFunction(v.storeDelete))
	return t
}

func storeKey(L *lua.LState) string {
	key := L.CheckString(1)
	if key == "" || len(key) > maxStoreKeyBytes {
		L.ArgError(1, "key must be 1 to 256 bytes")
	}
	return key
}

// storeError pushes nil and the message for err.
func storeError(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	if errors.Is(err, ErrQuota) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		L.Push(lua.LString(hostFailure("store", err)))
	} else {
		L.Push(lua.LString("store: unavailable"))
	}
	return 2
}

func (v *vm) storeGet(L *lua.LState) int {
	c := v.requireCall(L, "store")
	key := storeKey(L)
	if v.kv == nil {
		return storeError(L, errors.New("not configured"))
	}
	var raw []byte
	var ok bool
	err := v.hostIO(func(ctx context.Context) (err error) {
		raw, ok, err = v.kv.Get(ctx, c.Key.Bot, key)
		return err
	})
	if err != nil {
		return storeError(L, err)
	}
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	charge(L, len(raw))
	val, derr := decodeJSON(L, string(raw))
	if errors.Is(derr, errInterrupted) {
		L.RaiseError("store.get: interrupted")
	}
	if derr != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("store: stored value is not valid: " + derr.Error()))
		return 2
	}
	L.Push(val)
	return 1
}

func (v *vm) storeSet(L *lua.LState) int {
	c := v.requireCall(L, "store")
	key := storeKey(L)
	val := L.Get(2)
	if val == lua.LNil {
		return v.storeDelete(L)
	}
	var ttl time.Duration
	if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
		secs := float64(L.CheckNumber(3))
		if !(secs > 0 && secs <= 400*24*3600) {
			L.ArgError(3, "ttl must be between 0 and 400 days, in seconds")
		}
		ttl = time.Duration(secs * float64(time.Second))
	}
	e := encoder{max: maxStoreValueBytes, materialize: v.materialize, root: "value"}
	if _, err := e.encode(val, 0); err != nil {
		if ee := (*encodeError)(nil); errors.As(err, &ee) && ee.kind == KindLimit {
			raiseLimit(L, "store.set: %s", err.Error())
		}
		L.RaiseError("store.set: %s", err.Error())
	}
	if v.kv == nil {
		return storeError(L, errors.New("not configured"))
	}
	err := v.hostIO(func(ctx context.Context) error {
		return v.kv.Set(ctx, c.Key.Bot, key, e.buf, ttl)
	})
	if err != nil {
		return storeError(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

func (v *vm) storeDelete(L *lua.LState) int {
	c := v.requireCall(L, "store")
	key := storeKey(L)
	if v.kv == nil {
		return storeError(L, errors.New("not configured"))
	}
	err := v.hostIO(func(ctx context.Context) error {
		return v.kv.Delete(ctx, c.Key.Bot, key)
	})
	if err != nil {
		return storeError(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// openHTTP builds the http module: outbound requests to the hosts the bot
// allow-lists.
//
//	http.get(url [, {headers = {...}, timeout_ms = n}])         -> response | nil, message
//	http.post(url, body [, {headers = {...}, timeout_ms = n}])  -> response | nil, message
//
// A response is {status = 200, body = "...", headers = {["content-type"] = "..."}}.
// A table body is sent as JSON.
func (v *vm) openHTTP() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 2)
	t.RawSetString("get", L.NewFunction(func(L *lua.LState) int { return v.httpDo(L, "GET") }))
	t.RawSetString("post", L.NewFunction(func(L *lua.LState) int { return v.httpDo(L, "POST") }))
	return t
}

func (v *vm) httpDo(L *lua.LState, method string) int {
	c := v.requireCall(L, "http")
	url := L.CheckString(1)
	if len(url) > maxHTTPURLBytes {
		L.ArgError(1, "url is longer than 4096 bytes")
	}
	req := &HTTPRequest{Bot: c.Key.Bot, Allow: c.HTTPAllow, Method: method, URL: url,
		MaxResponseBytes: v.maxHTTPBody}
	opts := 2
	if method == "POST" {
		opts = 3
		switch b := L.Get(2).(type) {
		case lua.LString:
			req.Body = []byte(b)
		case *lua.LTable:
			e := encoder{max: maxHTTPRequestBytes, materialize: v.materialize, root: "body"}
			if _, err := e.encode(b, 0); err != nil {
				L.ArgError(2, err.Error())
			}
			req.Body = e.buf
			req.Header = map[string]string{"Content-Type": "application/json"}
		case *lua.LNilType:
		default:
			L.ArgError(2, "body must be a string or a table")
		}
		if len(req.Body) > maxHTTPRequestBytes {
			raiseLimit(L, "http.post: body is larger than %d bytes", maxHTTPRequestBytes)
		}
	}
	var timeout time.Duration
	if o, ok := L.Get(opts).(*lua.LTable); ok {
		if h, ok := o.RawGetString("headers").(*lua.LTable); ok {
			if req.Header == nil {
				req.Header = map[string]string{}
			}
			size := 0
			h.ForEach(func(k, val lua.LValue) {
				if _, ok := isSecret(k); ok {
					L.ArgError(opts, "a header's name cannot be a secret; "+secretUse)
				}
				ks, vs := lua.LVAsString(k), lua.LVAsString(val)
				if s, ok := isSecret(val); ok {
					// The one place a secret's value leaves Lua: to the
					// HTTPClient, as the header's value.
					vs = s.value
				}
				size += len(ks) + len(vs)
				req.Header[ks] = vs
			})
			if size > maxHTTPHeaderBytes {
				L.ArgError(opts, "headers are larger than 8 KiB")
			}
		}
		if n, ok := o.RawGetString("timeout_ms").(lua.LNumber); ok && n > 0 {
			timeout = time.Duration(float64(n) * float64(time.Millisecond))
		}
	}
	v.countHTTPCall(L, "http")
	if v.http == nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("http: not available"))
		return 2
	}
	var resp *HTTPResponse
	err := v.hostIO(func(ctx context.Context) (err error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		resp, err = v.http.Do(ctx, req)
		return err
	})
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(hostFailure("http", err)))
		return 2
	}
	size := len(resp.Body)
	for k, val := range resp.Header {
		size += len(k) + len(val) + decodedSlotBytes
	}
	if len(resp.Header) > maxHTTPResponseHeaders || size-len(resp.Body) > maxHTTPResponseHeaderBytes {
		L.Push(lua.LNil)
		L.Push(lua.LString(fmt.Sprintf("http: response headers are larger than %d KiB or more than %d",
			maxHTTPResponseHeaderBytes>>10, maxHTTPResponseHeaders)))
		return 2
	}
	charge(L, size)
	t := L.CreateTable(0, 3)
	t.RawSetString("status", lua.LNumber(resp.Status))
	t.RawSetString("body", lua.LString(resp.Body))
	h := L.CreateTable(0, len(resp.Header))
	for k, val := range resp.Header {
		h.RawSetString(strings.ToLower(k), lua.LString(val))
	}
	t.RawSetString("headers", h)
	L.Push(t)
	return 1
}
