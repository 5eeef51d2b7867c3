package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// jsonRoundTrip decodes s and encodes the result again.
func jsonRoundTrip(t testing.TB, v *vm, s string) (string, error) {
	t.Helper()
	lv, err := decodeJSON(v.L, s)
	if err != nil {
		return "", err
	}
	e := encoder{max: maxJSONOutput}
	if _, err := e.encode(lv, 0); err != nil {
		return "", err
	}
	return string(e.buf), nil
}

func TestJSONDecode(t *testing.T) {
	v := newVM(vmConfig{})
	defer v.close()
	tests := []struct {
		in   string
		want string // canonical re-encoding
		err  string
	}{
		{in: `{"b": 1, "a": [1, 2, {"c": null}], "d": {}}`, want: `{"a":[1,2,{}],"b":1,"d":{}}`},
		{in: ` [ ] `, want: `{}`},
		// null leaves a hole, and a table with holes is not an array.
		{in: `[1, null, 3]`, want: `{"1":1,"3":3}`},
		{in: `"h\u00e9llo \ud83d\ude00 \n\t\"\\\/"`, want: `"héllo 😀 \n\t\"\\/"`},
		{in: `"\ud83d alone"`, want: `"� alone"`},
		{in: `-0.5e2`, want: `-50`},
		{in: `12345678901`, want: `12345678901`},
		{in: `1.5`, want: `1.5`},
		{in: `1e300`, want: `1e+300`},
		{in: `true`, want: `true`},
		{in: `null`, want: `null`},
		{in: `{"a":1,"a":2}`, want: `{"a":2}`},
		{in: ``, err: "unexpected end of input at position 1"},
		{in: `{"a":1,}`, err: "unexpected character '}' at position 8"},
		{in: `[1,]`, err: "unexpected character ']'"},
		{in: `01`, err: "unexpected data after the value at position 2"},
		{in: `1.`, err: "unexpected end of input"},
		{in: `.5`, err: "unexpected character '.'"},
		{in: `+1`, err: "unexpected character '+'"},
		{in: `1e400`, err: "number out of range"},
		{in: `"abc`, err: "unterminated string"},
		{in: "\"a\nb\"", err: "control character in string"},
		{in: `"\x"`, err: "invalid escape"},
		{in: `"\u12"`, err: "invalid \\u escape"},
		{in: `{a:1}`, err: "unexpected character 'a'"},
		{in: `tru`, err: "unexpected character 't'"},
		{in: `[1] 2`, err: "unexpected data after the value"},
		{in: strings.Repeat("[", 33) + strings.Repeat("]", 33), err: "nested deeper than 32 levels"},
		{in: strings.Repeat("[", 32) + strings.Repeat("]", 32), want: strings.Repeat("[", 31) + "{}" + strings.Repeat("]", 31)},
	}
	for _, tt := range tests {
		got, err := jsonRoundTrip(t, v, tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: got %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestJSONInLua(t *testing.T) {
	tests := []struct {
		name string
		expr string // the handler returns this
		want string
		err  string
	}{
		{name: "sorted keys", expr: `json.encode({b = 1, a = 2, c = {z = 1, y = 2}})`, want: `{"a":2,"b":1,"c":{"y":2,"z":1}}`},
		{name: "array", expr: `json.encode({"x", 2, true, {}})`, want: `["x",2,true,{}]`},
		{name: "empty table is an object", expr: `json.encode({})`, want: `{}`},
		{name: "sparse array is an object", expr: `json.encode({[1] = "a", [3] = "c"})`, want: `{"1":"a","3":"c"}`},
		{name: "number keys", expr: `json.encode({[1.5] = "x", [10] = "y", [2] = "z"})`, want: `{"1.5":"x","10":"y","2":"z"}`},
		{name: "numbers", expr: `json.encode({1, -0.25, 1e21, 2^53, 1e-7, 123456789012345678})`, want: `[1,-0.25,1e+21,9007199254740992,1e-07,123456789012345680]`},
		{name: "strings", expr: `json.encode("a\"b\\c\n\1\127é\255")`, want: `"a\"b\\c\n\u0001` + "\x7f" + `é\ufffd"`}, // as encoding/json writes it
		{name: "scalars", expr: `json.encode(nil) .. json.encode(false) .. json.encode("x")`, want: `nullfalse"x"`},
		{name: "shared subtable", expr: `(function() local t = {1} return json.encode({a = t, b = t}) end)()`, want: `{"a":[1],"b":[1]}`},
		{name: "decode", expr: `(function() local d = json.decode('{"a":[10,20],"b":{"c":"d"},"n":null}') return d.a[2] .. d.b.c .. tostring(d.n) end)()`, want: `20dnil`},
		{name: "decode round trip", expr: `json.encode(json.decode('{"x":[1,2.5,"s",true,false,{}]}'))`, want: `{"x":[1,2.5,"s",true,false,{}]}`},
		{name: "function", expr: `json.encode({f = function() end})`, err: "json.encode: f: cannot store a function"},
		{name: "nested path", expr: `json.encode({a = {{}, {g = coroutine or function() end}}})`, err: "json.encode: a[2].g: cannot store a function"},
		{name: "NaN", expr: `json.encode({0/0})`, err: "cannot store NaN"},
		{name: "infinity", expr: `json.encode(1/0)`, err: "cannot store +Inf"},
		{name: "cycle", expr: `(function() local t = {} t[1] = t return json.encode(t) end)()`, err: "contains itself"},
		{name: "too deep", expr: `(function() local r = {} local t = r for i = 1, 40 do t.x = {} t = t.x end return json.encode(r) end)()`,
			err: "nested deeper than 32 levels"},
		{name: "bad key", expr: `json.encode({[{}] = 1})`, err: "cannot store a table with a table key"},
		{name: "decode error", expr: `json.decode("{")`, err: "json.decode: unexpected end of input at position 2"},
		{name: "decode non-string", expr: `json.decode({})`, err: "string expected"},
		{name: "encode nothing", expr: `json.encode()`, err: "value expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runOnce(t, "function handle(e, s) return "+tt.expr+" end", nil)
			if tt.err != "" {
				_ = wantScriptError(t, err, KindRuntime, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Reply.Text != tt.want {
				t.Errorf("got  %s\nwant %s", res.Reply.Text, tt.want)
			}
		})
	}
}

func TestJSONLimitsDirect(t *testing.T) {
	v := newVM(vmConfig{})
	defer v.close()
	big := v.L.CreateTable(0, 0)
	for i := 1; i <= 100; i++ {
		big.RawSetInt(i, lua.LString(strings.Repeat("x", 20000)))
	}
	e := encoder{max: maxJSONOutput}
	var ee *encodeError
	if _, err := e.encode(big, 0); !errors.As(err, &ee) || ee.kind != KindLimit {
		t.Errorf("2 MB array: got %v", err)
	}
	rt := New(Config{DefaultTimeout: testTimeout})
	defer rt.Close()
	// Scripts cannot build a string this large (.. is capped at 1 MiB), but
	// a session or event can hand them one.
	_, err := rt.Run(context.Background(), Call{Key: testKey, Program: mustCompile(t, `function handle(e, s)
  return tostring(json.decode(s.big))
end`), Event: testEvent(), Session: map[string]any{"big": strings.Repeat(" ", 2<<20)}})
	_ = wantScriptError(t, err, KindLimit, "json.decode: input is larger than 1048576 bytes")
}
