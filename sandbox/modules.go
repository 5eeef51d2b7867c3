package sandbox

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/parleyhq/parley/internal/xmlx"
)

// openHostModules adds the host modules to the base environment. This is
// the one list of what handlers get beyond the Lua libraries; every module
// is a read-only table of Go functions. json is opened with the libraries.
//
// The modules are built in because they need the VM's per-call state (the
// call's deadline, bot, limits and log); their I/O goes through the KV,
// HTTPClient and LLM interfaces that the Runtime's Config injects, and
// secret() through Secrets.
func (v *vm) openHostModules(base *lua.LTable) {
	L := v.L
	logs := L.CreateTable(0, 3)
	for _, l := range []struct {
		name  string
		level slog.Level
	}{{"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}} {
		logs.RawSetString(l.name, L.NewFunction(func(L *lua.LState) int { return v.logLine(L, l.level, 1) }))
	}
	// log(...) is log.info(...); the proxy is the call's first argument.
	base.RawSetString("log", v.freezeCallable(logs, func(L *lua.LState) int { return v.logLine(L, slog.LevelInfo, 2) }))

	base.RawSetString("time", v.freeze(v.openTime()))
	base.RawSetString("re", v.freeze(v.openRegexp()))
	base.RawSetString("ssml", v.freeze(openSSML(L)))
	base.RawSetString("store", v.freeze(v.openStore()))
	base.RawSetString("http", v.freeze(v.openHTTP()))
	v.secretMT = v.newSecretMetatable()
	base.RawSetString("secret", L.NewFunction(v.luaSecret))
	base.RawSetString("llm", v.freeze(v.openLLM()))
}

// Limits of the time module.
const (
	maxTimeInput = 256
	maxZones     = 256 // time zones kept loaded
)

// timeLayouts are the layout names time.format and time.parse accept
// besides Go layouts.
var timeLayouts = map[string]string{
	"rfc3339":  time.RFC3339,
	"rfc1123":  time.RFC1123,
	"date":     time.DateOnly,
	"time":     time.TimeOnly,
	"datetime": time.DateTime,
	"kitchen":  time.Kitchen,
}

// zones caches loaded time zones: time.LoadLocation reads the zone database
// every time.
var zones sync.Map // name -> *time.Location

var zoneCount struct {
	sync.Mutex
	n int
}

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "Local" {
		// The host's zone is none of a handler's business.
		return nil, errUnknownZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errUnknownZone
	}
	zoneCount.Lock()
	if zoneCount.n < maxZones {
		zoneCount.n++
		zones.Store(name, loc)
	}
	zoneCount.Unlock()
	return loc, nil
}

var errUnknownZone = &stringError{"unknown time zone"}

type stringError struct{ s string }

func (e *stringError) Error() string { return e.s }

// openTime builds the time module. Times are Unix seconds (with a
// fraction).
//
//	time.now()                          -> seconds
//	time.format(t [, layout [, zone]])  -> string
//	time.parse(s [, layout [, zone]])   -> seconds | nil, message
//
// layout is "rfc3339" (the default), "rfc1123", "date", "time", "datetime",
// "kitchen" or a Go layout such as "Mon 2 Jan 15:04"; zone is an IANA name
// such as "Europe/Rome" (default UTC).
func (v *vm) openTime() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 3)
	t.RawSetString("now", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(float64(v.now().UnixMilli()) / 1000))
		return 1
	}))
	t.RawSetString("format", L.NewFunction(timeFormat))
	t.RawSetString("parse", L.NewFunction(timeParse))
	return t
}

// now is the handlers' clock: Config.Clock, given the call's context, or
// the real time.
func (v *vm) now() time.Time {
	if v.clock == nil {
		return time.Now()
	}
	ctx := v.ctx
	if ctx == nil { // the main chunk, run at upload to validate the script
		ctx = context.Background()
	}
	return v.clock.Now(ctx)
}

// clockTime wraps os.time so that without a table it reads the handlers'
// clock; a table is converted as before.
func (v *vm) clockTime(osTime lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() == 0 || L.Get(1) == lua.LNil {
			L.Push(lua.LNumber(v.now().Unix()))
			return 1
		}
		return osTime(L)
	}
}

// clockDate wraps os.date so that without a time argument it formats the
// handlers' clock.
func (v *vm) clockDate(osDate lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if L.GetTop() == 0 {
			L.Push(lua.LString("%c"))
		}
		if L.GetTop() == 1 {
			L.Push(lua.LNumber(v.now().Unix()))
		}
		return osDate(L)
	}
}

// timeArgs reads the optional layout and zone at positions i and i+1.
func timeArgs(L *lua.LState, i int) (string, *time.Location) {
	layout := L.OptString(i, "rfc3339")
	if len(layout) > maxTimeInput {
		L.ArgError(i, "layout is longer than 256 bytes")
	}
	if l, ok := timeLayouts[strings.ToLower(layout)]; ok {
		layout = l
	}
	loc, err := loadZone(L.OptString(i+1, "UTC"))
	if err != nil {
		L.ArgError(i+1, err.Error())
	}
	return layout, loc
}

func timeFormat(L *lua.LState) int {
	secs := float64(L.CheckNumber(1))
	if math.IsNaN(secs) || math.Abs(secs) > 1e12 {
		L.ArgError(1, "time out of range")
	}
	layout, loc := timeArgs(L, 2)
	sec, frac := math.Modf(secs)
	t := time.Unix(int64(sec), int64(frac*1e9)).In(loc)
	L.Push(lua.LString(t.Format(layout)))
	return 1
}

func timeParse(L *lua.LState) int {
	s := L.CheckString(1)
	if len(s) > maxTimeInput {
		L.ArgError(1, "input is longer than 256 bytes")
	}
	layout, loc := timeArgs(L, 2)
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("time.parse: cannot parse " + strconv.Quote(s)))
		return 2
	}
	L.Push(lua.LNumber(float64(t.UnixMilli()) / 1000))
	return 1
}

// openSSML builds the ssml module, helpers for the ssml field of replies.
//
//	ssml.escape(s)  -> s with & < > " ' escaped, characters XML cannot hold as spaces
//	ssml.speak(s)   -> "<speak>" .. s .. "</speak>"
//	ssml.pause(ms)  -> '<break time="300ms"/>'
func openSSML(L *lua.LState) *lua.LTable {
	t := L.CreateTable(0, 3)
	t.RawSetString("escape", L.NewFunction(func(L *lua.LState) int {
		s := L.CheckString(1)
		if len(s) > maxBuildBytes {
			raiseLimit(L, "ssml.escape: result is larger than %d bytes", maxBuildBytes)
		}
		out := xmlx.EscapeText(s, ' ')
		if len(out) > maxBuildBytes {
			raiseLimit(L, "ssml.escape: result is larger than %d bytes", maxBuildBytes)
		}
		charge(L, len(out))
		L.Push(lua.LString(out))
		return 1
	}))
	t.RawSetString("speak", L.NewFunction(func(L *lua.LState) int {
		s := L.CheckString(1)
		if len(s) > maxBuildBytes {
			raiseLimit(L, "ssml.speak: result is larger than %d bytes", maxBuildBytes)
		}
		charge(L, len(s)+15)
		L.Push(lua.LString("<speak>" + s + "</speak>"))
		return 1
	}))
	t.RawSetString("pause", L.NewFunction(func(L *lua.LState) int {
		ms := float64(L.CheckNumber(1))
		if !(ms >= 0 && ms <= 10000) {
			L.ArgError(1, "pause must be 0 to 10000 ms")
		}
		L.Push(lua.LString(`<break time="` + strconv.Itoa(int(ms)) + `ms"/>`))
		return 1
	}))
	return t
}
