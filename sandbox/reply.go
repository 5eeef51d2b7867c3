package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/msg"
	lua "github.com/yuin/gopher-lua"
)

// replyKeys are the keys a reply table may have, in the order error
// messages list them.
var replyKeys = []string{"text", "ssml", "reprompt", "options", "buttons", "cards", "media", "channel_data",
	"expect", "end_conversation", "sensitive", "handoff"}

var (
	buttonKeys  = []string{"title", "payload", "url"}
	cardKeys    = []string{"title", "subtitle", "image", "buttons"}
	mediaKeys   = []string{"type", "url", "caption"}
	handoffKeys = []string{"queue", "reason"}
)

// maxURLBytes bounds a link or media URL.
const maxURLBytes = 2048

// replyReader converts a reply table, counting the bytes of its strings
// (and of its channel data as JSON) against the reply cap. The first
// problem found is kept in err; later reads are then skipped.
type replyReader struct {
	v      *vm
	script string
	max    int
	kinds  []string // the channel kinds channel_data may name; nil: any
	size   int
	err    *ScriptError
}

func (r *replyReader) fail(kind ErrorKind, format string, args ...any) {
	if r.err == nil {
		r.err = newScriptError(r.script, kind, format, args...)
	}
}

// count adds n bytes to the reply's size.
func (r *replyReader) count(n int) bool {
	r.size += n
	if r.size > r.max {
		r.fail(KindLimit, "reply is larger than %d bytes", r.max)
		return false
	}
	return true
}

// table returns t as an ordinary table (materializing the event, should a
// handler return it or put it in a reply).
func (r *replyReader) table(t *lua.LTable) *lua.LTable {
	if r.v != nil {
		r.v.materialize(t)
	}
	return t
}

// keys checks that t has string keys only, all among known; path names t
// in errors.
func (r *replyReader) keys(t *lua.LTable, path string, known []string) bool {
	lt := tableOf(t)
	var unknown []string
	for k := range lt.strdict {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		r.fail(KindRuntime, "%s has unknown key %q (known: %s)", path, unknown[0], strings.Join(known, ", "))
		return false
	}
	nonString := slices.ContainsFunc(lt.array, func(v lua.LValue) bool { return v != lua.LNil }) || len(lt.dict) > 0
	if nonString {
		r.fail(KindRuntime, "%s must be a table with named fields (%s), not a list", path, strings.Join(known, ", "))
		return false
	}
	return true
}

// str reads a string field (a number is written as Lua prints it); empty
// when absent.
func (r *replyReader) str(t *lua.LTable, key, path string) string {
	if r.err != nil {
		return ""
	}
	switch f := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		r.count(len(f))
		return string(f)
	case lua.LNumber:
		s := f.String()
		r.count(len(s))
		return s
	default:
		r.fail(KindRuntime, "%s.%s must be a string, not a %s", path, key, f.Type().String())
		return ""
	}
}

// boolean reads a boolean field; false when absent.
func (r *replyReader) boolean(t *lua.LTable, key string) bool {
	if r.err != nil {
		return false
	}
	switch f := t.RawGetString(key).(type) {
	case *lua.LNilType:
	case lua.LBool:
		return bool(f)
	default:
		r.fail(KindRuntime, "reply.%s must be a boolean, not a %s", key, f.Type().String())
	}
	return false
}

// list returns the elements of the array field key of t, each a table
// (each named path[i] in errors), or nil when absent. what names one
// element in errors ("button").
func (r *replyReader) list(t *lua.LTable, key, path, what string, example string) []*lua.LTable {
	if r.err != nil {
		return nil
	}
	f := t.RawGetString(key)
	if f == lua.LNil {
		return nil
	}
	ft, ok := f.(*lua.LTable)
	if !ok {
		r.fail(KindRuntime, "%s must be a list of %ss, not a %s", path, what, f.Type().String())
		return nil
	}
	ft = r.table(ft)
	lt := tableOf(ft)
	if len(lt.strdict) > 0 {
		r.fail(KindRuntime, "%s must be a list of %ss like %s, not a single %s", path, what, example, what)
		return nil
	}
	n := ft.Len()
	if len(lt.dict) > 0 || arrayCount(lt) != n {
		r.fail(KindRuntime, "%s must be a list (keys 1 to n) of %ss", path, what)
		return nil
	}
	out := make([]*lua.LTable, 0, n)
	for i := 1; i <= n; i++ {
		e, ok := ft.RawGetInt(i).(*lua.LTable)
		if !ok {
			r.fail(KindRuntime, "%s[%d] must be a table (a %s), not a %s", path, i, what, ft.RawGetInt(i).Type().String())
			return nil
		}
		out = append(out, r.table(e))
	}
	return out
}

// arrayCount is how many non-nil values the array part of lt holds.
func arrayCount(lt *luaTable) int {
	n := 0
	for _, v := range lt.array {
		if v != lua.LNil {
			n++
		}
	}
	return n
}

// link checks a URL a user's device opens or fetches: absolute, http or
// https, with a host and no credentials.
func (r *replyReader) link(s, path string) string {
	if r.err != nil || s == "" {
		return s
	}
	if len(s) > maxURLBytes {
		r.fail(KindRuntime, "%s is longer than %d bytes", path, maxURLBytes)
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(s, " \t\r\n") {
		r.fail(KindRuntime, "%s must be an absolute https or http URL, not %q", path, clipString(s, 80))
		return ""
	}
	return s
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (r *replyReader) buttons(t *lua.LTable, path string) []msg.Button {
	elems := r.list(t, "buttons", path+".buttons", "button", `{{title = "Order", payload = "OrderPizza"}}`)
	if len(elems) == 0 {
		return nil
	}
	out := make([]msg.Button, 0, len(elems))
	for i, e := range elems {
		p := path + ".buttons[" + strconv.Itoa(i+1) + "]"
		if !r.keys(e, p, buttonKeys) {
			return nil
		}
		b := msg.Button{Title: r.str(e, "title", p), Payload: r.str(e, "payload", p), URL: r.str(e, "url", p)}
		switch {
		case r.err != nil:
			return nil
		case b.Title == "":
			r.fail(KindRuntime, "%s.title is required", p)
		case b.Payload == "" && b.URL == "":
			r.fail(KindRuntime, "%s needs a payload (sent back when pressed) or a url (opened when pressed)", p)
		case b.Payload != "" && b.URL != "":
			r.fail(KindRuntime, "%s has both a payload and a url; a button does one or the other", p)
		}
		b.URL = r.link(b.URL, p+".url")
		if r.err != nil {
			return nil
		}
		out = append(out, b)
	}
	return out
}

func (r *replyReader) cards(t *lua.LTable) []msg.Card {
	elems := r.list(t, "cards", "reply.cards", "card", `{{title = "Margherita", image = "https://..."}}`)
	if len(elems) == 0 {
		return nil
	}
	out := make([]msg.Card, 0, len(elems))
	for i, e := range elems {
		p := "reply.cards[" + strconv.Itoa(i+1) + "]"
		if !r.keys(e, p, cardKeys) {
			return nil
		}
		c := msg.Card{Title: r.str(e, "title", p), Subtitle: r.str(e, "subtitle", p), Image: r.str(e, "image", p)}
		if r.err == nil && c.Title == "" {
			r.fail(KindRuntime, "%s.title is required", p)
		}
		c.Image = r.link(c.Image, p+".image")
		c.Buttons = r.buttons(e, p)
		if r.err != nil {
			return nil
		}
		out = append(out, c)
	}
	return out
}

func (r *replyReader) media(t *lua.LTable) []msg.Media {
	elems := r.list(t, "media", "reply.media", "media item", `{{type = "image", url = "https://..."}}`)
	if len(elems) == 0 {
		return nil
	}
	out := make([]msg.Media, 0, len(elems))
	for i, e := range elems {
		p := "reply.media[" + strconv.Itoa(i+1) + "]"
		if !r.keys(e, p, mediaKeys) {
			return nil
		}
		m := msg.Media{Type: msg.MediaType(r.str(e, "type", p)), URL: r.str(e, "url", p), Caption: r.str(e, "caption", p)}
		switch {
		case r.err != nil:
			return nil
		case m.Type != msg.MediaImage && m.Type != msg.MediaAudio && m.Type != msg.MediaVideo && m.Type != msg.MediaFile:
			r.fail(KindRuntime, "%s.type must be \"image\", \"audio\", \"video\" or \"file\", not %q", p, clipString(string(m.Type), 40))
		case m.URL == "":
			r.fail(KindRuntime, "%s.url is required", p)
		}
		m.URL = r.link(m.URL, p+".url")
		if r.err != nil {
			return nil
		}
		out = append(out, m)
	}
	return out
}

// channelData reads channel_data: a table of channel kinds ("slack",
// "telegram", ...), each a table that becomes the JSON object given to
// that channel.
func (r *replyReader) channelData(t *lua.LTable) map[string]json.RawMessage {
	if r.err != nil {
		return nil
	}
	f := t.RawGetString("channel_data")
	if f == lua.LNil {
		return nil
	}
	ft, ok := f.(*lua.LTable)
	if !ok {
		r.fail(KindRuntime, "reply.channel_data must be a table of channel kinds, not a %s", f.Type().String())
		return nil
	}
	ft = r.table(ft)
	lt := tableOf(ft)
	if arrayCount(lt) > 0 || len(lt.dict) > 0 {
		r.fail(KindRuntime, "reply.channel_data must be keyed by channel kind (slack = {...}), not a list")
		return nil
	}
	if len(lt.strdict) == 0 {
		return nil
	}
	names := make([]string, 0, len(lt.strdict))
	for k := range lt.strdict {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make(map[string]json.RawMessage, len(names))
	for _, name := range names {
		p := "reply.channel_data." + name
		if !validKind(name) {
			r.fail(KindRuntime, "reply.channel_data has a key %q that is no channel kind (lowercase letters, digits, _ and -)", clipString(name, 40))
			return nil
		}
		if r.kinds != nil && !slices.Contains(r.kinds, name) {
			r.fail(KindRuntime, "reply.channel_data has unknown channel kind %q (known: %s)", name, strings.Join(r.kinds, ", "))
			return nil
		}
		val, ok := lt.strdict[name].(*lua.LTable)
		if !ok {
			r.fail(KindRuntime, "%s must be a table, not a %s", p, lt.strdict[name].Type().String())
			return nil
		}
		raw, err := r.encode(val, p)
		if err != nil {
			return nil
		}
		if !r.count(len(name) + len(raw)) {
			return nil
		}
		out[name] = raw
	}
	return out
}

func validKind(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// encode writes t as JSON within what is left of the reply cap.
func (r *replyReader) encode(t *lua.LTable, path string) (json.RawMessage, error) {
	e := encoder{max: max(r.max-r.size, 0), root: path}
	if r.v != nil {
		e.materialize = r.v.materialize
	}
	if _, err := e.encode(t, 0); err != nil {
		if ee := (*encodeError)(nil); errors.As(err, &ee) && ee.kind == KindLimit {
			r.fail(KindLimit, "reply is larger than %d bytes", r.max)
		} else {
			r.fail(KindRuntime, "%s", err.Error())
		}
		return nil, err
	}
	if len(e.buf) > 0 && e.buf[0] != '{' {
		// A table with keys 1..n is a JSON array: platforms merge objects.
		r.fail(KindRuntime, "%s must be a table with named fields (a JSON object), not a list", path)
		return nil, fmt.Errorf("%s: not an object", path)
	}
	return json.RawMessage(e.buf), nil
}

// toReply converts handle's return value: a string (the text), nil (no
// reply) or one reply table. Every key of the table must be one a reply
// has; a list of replies, a misspelt key or a value of the wrong type is a
// runtime error that names it. All strings, and the channel data as JSON,
// count toward lim.maxReplyBytes, and channel_data may name only the kinds
// of lim.channelKinds.
func (v *vm) toReply(script string, ret lua.LValue, lim limits) (msg.Reply, *ScriptError) {
	maxBytes := lim.maxReplyBytes
	var rep msg.Reply
	switch x := ret.(type) {
	case *lua.LNilType:
		return rep, nil
	case lua.LString:
		rep.Text = string(x)
		if len(rep.Text) > maxBytes {
			return msg.Reply{}, newScriptError(script, KindLimit, "reply is larger than %d bytes", maxBytes)
		}
		return rep, nil
	case *lua.LTable:
		r := &replyReader{v: v, script: script, max: maxBytes, kinds: lim.channelKinds}
		t := r.table(x)
		lt := tableOf(t)
		if arrayCount(lt) > 0 || t.RawGetInt(1) != lua.LNil {
			what := "values"
			if _, ok := t.RawGetInt(1).(*lua.LTable); ok {
				what = "replies"
			}
			return msg.Reply{}, newScriptError(script, KindRuntime,
				"handle returned a list of %s; return one reply, a string or a table like {text = \"...\", buttons = {...}}", what)
		}
		if !r.keys(t, "reply", replyKeys) {
			return msg.Reply{}, r.err
		}
		rep.Text = r.str(t, "text", "reply")
		rep.SSML = r.str(t, "ssml", "reply")
		rep.Reprompt = r.str(t, "reprompt", "reply")
		rep.Expect = r.str(t, "expect", "reply")
		rep.EndConversation = r.boolean(t, "end_conversation")
		rep.Sensitive = r.boolean(t, "sensitive")
		rep.Options = r.options(t)
		rep.Buttons = r.buttons(t, "reply")
		rep.Cards = r.cards(t)
		rep.Media = r.media(t)
		rep.ChannelData = r.channelData(t)
		rep.Handoff = r.handoff(t)
		if r.err != nil {
			return msg.Reply{}, r.err
		}
		return rep, nil
	default:
		return rep, newScriptError(script, KindRuntime, "handle must return a string or a table, not a %s", ret.Type().String())
	}
}

// options reads reply.options, an array of strings.
func (r *replyReader) options(t *lua.LTable) []string {
	if r.err != nil {
		return nil
	}
	var out []string
	switch f := t.RawGetString("options").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		f = r.table(f)
		n := f.Len()
		// Named keys or holes would be dropped without a word: options
		// are a list of strings (keys 1 to n) only.
		lt := tableOf(f)
		if names := slices.Sorted(maps.Keys(lt.strdict)); len(names) > 0 {
			r.fail(KindRuntime, "reply.options must be a list of strings like {\"yes\", \"no\"}, not a table with key %q", clipString(names[0], 40))
			return nil
		}
		if len(lt.dict) > 0 || arrayCount(lt) != n {
			r.fail(KindRuntime, "reply.options must be a list (keys 1 to n) of strings")
			return nil
		}
		for i := 1; i <= n; i++ {
			switch o := f.RawGetInt(i).(type) {
			case lua.LString, lua.LNumber:
				s := o.String()
				if !r.count(len(s) + 1) {
					return nil
				}
				out = append(out, s)
			default:
				r.fail(KindRuntime, "reply.options[%d] must be a string, not a %s", i, o.Type().String())
				return nil
			}
		}
	default:
		r.fail(KindRuntime, "reply.options must be an array of strings, not a %s", f.Type().String())
	}
	return out
}

// handoff reads reply.handoff: true (the default queue) or a table
// {queue = "support", reason = "..."}.
func (r *replyReader) handoff(t *lua.LTable) *msg.Handoff {
	if r.err != nil {
		return nil
	}
	var h msg.Handoff
	switch f := t.RawGetString("handoff").(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		if !bool(f) {
			return nil
		}
	case *lua.LTable:
		f = r.table(f)
		if !r.keys(f, "reply.handoff", handoffKeys) {
			return nil
		}
		h.Queue = r.str(f, "queue", "reply.handoff")
		h.Reason = r.str(f, "reason", "reply.handoff")
	default:
		r.fail(KindRuntime, "reply.handoff must be a table like {queue = \"support\", reason = \"...\"} or true, not a %s", f.Type().String())
		return nil
	}
	if h.Queue == "" {
		h.Queue = msg.DefaultHandoffQueue
	}
	switch {
	case r.err != nil:
		return nil
	case !msg.ValidHandoffQueue(h.Queue):
		r.fail(KindRuntime, "reply.handoff.queue must be 1-64 lowercase letters, digits, '_' or '-', not %q", clipString(h.Queue, 80))
		return nil
	case utf8.RuneCountInString(h.Reason) > msg.MaxHandoffReason:
		r.fail(KindRuntime, "reply.handoff.reason is longer than %d characters", msg.MaxHandoffReason)
		return nil
	}
	return &h
}
