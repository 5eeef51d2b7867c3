package meta

import "strings"

// postbackPrefix marks a quick-reply payload (Messenger) or an interactive
// reply id (WhatsApp) that carries a button's payload: both platforms also
// carry the reply's options the same way, and an option chosen is text the
// user said, not a postback.
const postbackPrefix = "parley:pb:"

// PostbackID is the quick-reply payload or reply id of a button whose
// payload is payload.
func PostbackID(payload string) string { return postbackPrefix + payload }

// PostbackIDLen is the length of PostbackID(payload), in characters.
func PostbackIDLen(payload string) int { return len(postbackPrefix) + len([]rune(payload)) }

// ParsePostbackID returns the button payload an id carries; ok is false for
// an id that is not a button's (an option, or a payload set by channel data).
func ParsePostbackID(id string) (payload string, ok bool) {
	p, ok := strings.CutPrefix(id, postbackPrefix)
	return p, ok && p != ""
}
