package sandbox

import (
	"math/bits"
	"slices"
	"time"

	"github.com/parleyhq/parley/msg"
	lua "github.com/yuin/gopher-lua"
)

// The event argument is built lazily.
//
// A gopher-lua table pays for every string key it receives: besides its
// hash map it keeps an insertion-order key list and a reverse index keyed
// by interface values. Filling the sixteen event fields of every turn cost
// more than everything else on the warm path together, while a handler
// typically reads two or three of them. So the event is an empty table
// whose protected metatable answers reads of the event fields.
//
// Its __index is not a function but a table the VM keeps, vm.fields, which
// holds the fields of the current event that were asked for; the fields
// table's own __index, a Go function, answers the others and stores them
// there. A read of a stored field is then a table lookup instead of a Go
// call, which in gopher-lua costs several times as much. The fields a
// program names in its code and has read once on a VM (vm.hot) are stored
// at the start of each later call of the program on that VM, before any
// script runs. Those that are not tables stay in the table between calls,
// their values replaced; all other stored fields are removed when the call
// ends. An idle VM forgets the user's fields (see forgetUser). Scripts cannot reach the fields table: the
// event's metatable is protected and every raw access materializes the
// event first.
//
// The laziness is not observable from Lua: the first write of an event
// field, and every function that bypasses metamethods (next, pairs,
// rawget, rawset, getmetatable, setmetatable, json.encode and the session
// conversion), first materializes the table, storing all fields and
// removing the metatable, so it sees an ordinary table.

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
	evPostback
	numEventFields
)

var eventFieldNames = [numEventFields]string{
	"id", "bot", "channel", "user", "conversation", "text", "intent", "source",
	"confidence", "slots", "locale", "voice", "timestamp", "raw", "candidates", "postback",
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
	case "postback":
		return evPostback
	}
	return -1
}

// lazyEvent is the per-call state behind the event table.
type lazyEvent struct {
	table *lua.LTable // nil between calls
	ev    *msg.Event
	route msg.Decision // a copy: the event may be materialized after the call is detached
	slots *lua.LTable  // built on first use, then the same table
	cands *lua.LTable
}

// tableFields are the event fields whose values are tables, which a call
// may change: they are made anew for every call and not kept after it.
const tableFields = 1<<evSlots | 1<<evCandidates

// userFields are the event fields that hold what a user said or who they
// are. A VM that stays idle keeps them only until the reaper's next look
// at it (see forgetUser).
const userFields = 1<<evID | 1<<evUser | 1<<evConversation | 1<<evText | 1<<evRaw | 1<<evPostback

// newEventTable starts the event argument of a call of p.
func (v *vm) newEventTable(ev *msg.Event, route *msg.Decision, p *Program) *lua.LTable {
	t := v.L.CreateTable(0, 0)
	t.Metatable = v.eventMT
	v.event = lazyEvent{table: t, ev: ev, route: *route}
	if p != v.hotProg {
		v.dropFields(v.stored)
		v.hotProg, v.hot = p, 0
	}
	// Hot fields still hold the previous call's values: replace them all,
	// removing those this event has no value for.
	for m := v.hot; m != 0; m &= m - 1 {
		i := bits.TrailingZeros32(m)
		val := v.eventValue(i)
		setKnownKey(v.fields, eventFieldNames[i], val) // storeField set it first
		if val == lua.LNil {
			v.stored &^= 1 << i
		} else {
			v.stored |= 1 << i
		}
	}
	return t
}

// storeField stores field i of the current event in the fields table and
// returns it.
func (v *vm) storeField(i int) lua.LValue {
	val := v.eventValue(i)
	if val != lua.LNil {
		v.fields.RawSetString(eventFieldNames[i], val)
		v.stored |= 1 << i
	}
	return val
}

// dropFields removes the fields in set from the fields table.
func (v *vm) dropFields(set uint32) {
	for m := set & v.stored; m != 0; m &= m - 1 {
		setKnownKey(v.fields, eventFieldNames[bits.TrailingZeros32(m)], lua.LNil)
	}
	v.stored &^= set
}

// endEvent detaches the event: the event table, if the script kept it
// somewhere, answers nothing more, and the fields table keeps only the hot
// fields that are not tables, whose values the next call replaces before
// any script runs. No script can tell them from fresh ones: no Lua code
// runs between calls, and the fields table is out of every script's reach.
func (v *vm) endEvent() {
	if t := v.event.table; t != nil && t.Metatable == lua.LValue(v.eventMT) {
		t.Metatable = lua.LNil
	}
	v.dropFields(^v.hot | tableFields)
	v.event = lazyEvent{}
}

// forgetUser removes the values of the last event's user fields that the
// VM keeps between calls. The reaper calls it on VMs that stayed idle for
// the idle timeout and that it keeps for the pool's minimum, so that an
// idle VM does not hold its last user's words for long; doing it after
// every call instead would cost a busy VM a map write per field. The next
// call stores the fields again.
func (v *vm) forgetUser() {
	v.dropFields(userFields)
}

// isLazyEvent reports whether t is the current, not yet materialized event.
func (v *vm) isLazyEvent(t *lua.LTable) bool {
	return t == v.event.table && t != nil && t.Metatable == lua.LValue(v.eventMT)
}

// materialize turns the lazy event t into an ordinary table. Until then
// the table holds no event field: the first write of one materializes it.
func (v *vm) materialize(t *lua.LTable) {
	if !v.isLazyEvent(t) {
		return
	}
	for i := range numEventFields {
		if val := v.eventValue(i); val != lua.LNil {
			t.RawSetString(eventFieldNames[i], val)
		}
	}
	t.Metatable = lua.LNil
}

// fieldIndex is the __index of the fields table: it answers an event field
// that is not stored yet, and stores it. A field the program names in its
// code becomes hot: later calls of the program on this VM store it ahead.
func (v *vm) fieldIndex(L *lua.LState) int {
	k, ok := L.Get(2).(lua.LString)
	if !ok || v.event.table == nil {
		L.Push(lua.LNil)
		return 1
	}
	i := eventField(string(k))
	if i < 0 {
		L.Push(lua.LNil)
		return 1
	}
	val := v.storeField(i)
	if bit := uint32(1) << i; val != lua.LNil && v.hotProg != nil && v.hotProg.eventNames&bit != 0 {
		v.hot |= bit
	}
	L.Push(val)
	return 1
}

// eventNewIndex is the event's __newindex. Writing an event field first
// materializes the event, so that the field is the script's from then on,
// even once set to nil.
func (v *vm) eventNewIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	k := L.CheckAny(2)
	if s, ok := k.(lua.LString); ok && t == v.event.table && eventField(string(s)) >= 0 {
		v.materialize(t)
	}
	if k == lua.LNil {
		L.RaiseError("table index is nil")
	}
	L.RawSet(t, k, L.Get(3))
	return 0
}

// eventNames returns the set of event fields (bit i for field i) whose
// names are string constants of p or of a function nested in it.
func eventNames(p *lua.FunctionProto) uint32 {
	var set uint32
	for _, k := range p.Constants {
		if s, ok := k.(lua.LString); ok {
			if i := eventField(string(s)); i >= 0 {
				set |= 1 << i
			}
		}
	}
	for _, f := range p.FunctionPrototypes {
		set |= eventNames(f)
	}
	return set
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
	case evPostback:
		if ev.Postback == "" {
			return lua.LNil
		}
		return lua.LString(ev.Postback)
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
