package sandbox

import (
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/parleyhq/parley/intents"
)

// The event argument is built lazily.
//
// A gopher-lua table pays for every string key it receives: besides its
// hash map it keeps an insertion-order key list and a reverse index keyed
// by interface values. Filling the fifteen event fields of every turn cost
// more than everything else on the warm path together, while a handler
// typically reads two or three of them. So the event is an empty table
// whose protected metatable answers reads of the event fields from the Go
// event, without storing them.
//
// The laziness is not observable from Lua: writes to event fields go to the
// table (and a field once assigned, even to nil, is no longer answered from
// the Go event); and every function that bypasses metamethods (next, pairs,
// rawget, rawset, getmetatable, setmetatable, json.encode and the session
// conversion) first materializes the table, storing all remaining fields
// and removing the metatable, so it sees an ordinary table.

// Event fields, in the order they are materialized.
const (
	evID = iota
	evBot
	evChannel
	evUser
	evConversation
	evText
	evIntent
	evSource
	evConfidence
	evSlots
	evLocale
	evVoice
	evTimestamp
	evRaw
	evCandidates
	numEventFields
)

var eventFieldNames = [numEventFields]string{
	"id", "bot", "channel", "user", "conversation", "text", "intent", "source",
	"confidence", "slots", "locale", "voice", "timestamp", "raw", "candidates",
}

func eventField(name string) int {
	switch name {
	case "id":
		return evID
	case "bot":
		return evBot
	case "channel":
		return evChannel
	case "user":
		return evUser
	case "conversation":
		return evConversation
	case "text":
		return evText
	case "intent":
		return evIntent
	case "source":
		return evSource
	case "confidence":
		return evConfidence
	case "slots":
		return evSlots
	case "locale":
		return evLocale
	case "voice":
		return evVoice
	case "timestamp":
		return evTimestamp
	case "raw":
		return evRaw
	case "candidates":
		return evCandidates
	}
	return -1
}

// lazyEvent is the per-call state behind the event table.
type lazyEvent struct {
	table    *lua.LTable // nil between calls
	ev       *intents.Event
	route    intents.Decision // a copy: the event may be materialized after the call is detached
	assigned uint32           // fields the script assigned: no longer answered
	slots    *lua.LTable      // built on first use, then the same table
	cands    *lua.LTable
}

// newEventTable starts the event argument of a call.
func (v *vm) newEventTable(ev *intents.Event, route *intents.Decision) *lua.LTable {
	t := v.L.CreateTable(0, 0)
	t.Metatable = v.eventMT
	v.event = lazyEvent{table: t, ev: ev, route: *route}
	return t
}

// endEvent detaches the event: the table, if the script kept it somewhere,
// answers nothing more.
func (v *vm) endEvent() {
	v.event = lazyEvent{}
}

// isLazyEvent reports whether t is the current, not yet materialized event.
func (v *vm) isLazyEvent(t *lua.LTable) bool {
	return t == v.event.table && t != nil && t.Metatable == lua.LValue(v.eventMT)
}

// materialize turns the lazy event t into an ordinary table.
func (v *vm) materialize(t *lua.LTable) {
	if !v.isLazyEvent(t) {
		return
	}
	for i := range numEventFields {
		if v.event.assigned&(1<<i) != 0 {
			continue
		}
		name := eventFieldNames[i]
		if t.RawGetString(name) != lua.LNil {
			continue
		}
		if val := v.eventValue(i); val != lua.LNil {
			t.RawSetString(name, val)
		}
	}
	t.Metatable = lua.LNil
}

// eventIndex is the event's __index: it answers event fields.
func (v *vm) eventIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	k, ok := L.Get(2).(lua.LString)
	if !ok || t != v.event.table {
		L.Push(lua.LNil)
		return 1
	}
	i := eventField(string(k))
	if i < 0 || v.event.assigned&(1<<i) != 0 {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(v.eventValue(i))
	return 1
}

// eventNewIndex is the event's __newindex: an assigned event field is the
// script's from then on.
func (v *vm) eventNewIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	k := L.CheckAny(2)
	if s, ok := k.(lua.LString); ok && t == v.event.table {
		if i := eventField(string(s)); i >= 0 {
			v.event.assigned |= 1 << i
		}
	}
	if k == lua.LNil {
		L.RaiseError("table index is nil")
	}
	L.RawSet(t, k, L.Get(3))
	return 0
}

// eventValue returns field i of the current event.
func (v *vm) eventValue(i int) lua.LValue {
	ev, r := v.event.ev, &v.event.route
	switch i {
	case evID:
		return lua.LString(ev.ID)
	case evBot:
		return v.str(strBot, ev.Bot)
	case evChannel:
		return v.str(strChannel, ev.Channel)
	case evUser:
		return lua.LString(ev.User)
	case evConversation:
		return lua.LString(ev.Conversation)
	case evText:
		return lua.LString(ev.Text)
	case evIntent:
		if r.Intent != "" {
			return v.str(strIntent, r.Intent)
		}
		return v.str(strIntent, ev.Intent)
	case evSource:
		return v.str(strSource, string(r.Source))
	case evConfidence:
		if r.Intent != "" {
			return lua.LNumber(r.Confidence)
		}
		return lua.LNumber(ev.Confidence)
	case evSlots:
		if v.event.slots == nil {
			v.event.slots = v.slotsTable(ev.Slots)
		}
		return v.event.slots
	case evLocale:
		return v.str(strLocale, ev.Locale)
	case evVoice:
		return lua.LBool(ev.Voice)
	case evTimestamp:
		if ev.Timestamp.IsZero() {
			return lua.LNil
		}
		var b [64]byte
		return lua.LString(ev.Timestamp.AppendFormat(b[:0], time.RFC3339))
	case evRaw:
		if len(ev.Raw) == 0 {
			return lua.LNil
		}
		return lua.LString(string(ev.Raw))
	case evCandidates:
		if len(r.Candidates) == 0 {
			return lua.LNil
		}
		if v.event.cands == nil {
			arr := v.L.CreateTable(len(r.Candidates), 0)
			for _, c := range r.Candidates {
				ct := v.L.CreateTable(0, 2)
				ct.RawSetString("intent", lua.LString(c.Intent))
				ct.RawSetString("confidence", lua.LNumber(c.Confidence))
				arr.Append(ct)
			}
			v.event.cands = arr
		}
		return v.event.cands
	}
	return lua.LNil
}

// slotsTable converts slots, inserting keys in sorted order so that pairs()
// visits them the same way every time.
func (v *vm) slotsTable(slots map[string]string) *lua.LTable {
	t := v.L.CreateTable(0, len(slots))
	if len(slots) == 1 {
		for k, s := range slots {
			t.RawSetString(k, lua.LString(s))
		}
		return t
	}
	var stack [8]string
	keys := stack[:0]
	for k := range slots {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.RawSetString(k, lua.LString(slots[k]))
	}
	return t
}
