package msg

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
)

// MaxChoices bounds how many payloads [Choices] returns, and so how many a
// session keeps for the next turn.
const MaxChoices = 100

// Choices returns the payloads of the buttons replies offer that send one
// back (link buttons do not), in the order a channel without buttons numbers
// them: each reply's buttons, then the buttons of its cards, reply after
// reply. A payload offered twice keeps its first place. The engine keeps the
// list in the session, so that on the next turn a [Event.Choice] (a typed
// number, a [ChoiceRef]) can name a button by position or by reference.
func Choices(replies []Reply) []string {
	var out []string
	add := func(bs []Button) {
		for _, b := range bs {
			if b.Payload == "" || len(out) == MaxChoices {
				continue
			}
			dup := false
			for _, p := range out {
				if p == b.Payload {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, b.Payload)
			}
		}
	}
	for i := range replies {
		add(replies[i].Buttons)
		for _, c := range replies[i].Cards {
			add(c.Buttons)
		}
	}
	return out
}

// ChoiceRef is a short, fixed-length stand-in (13 bytes, starting with
// "~") for a payload too long for a platform's button value, such as
// Telegram's 64-byte callback_data. An adapter sends it back as the event's
// [Event.Choice]; the engine finds the payload among the previous turn's
// [Choices].
func ChoiceRef(payload string) string {
	sum := sha256.Sum256([]byte(payload))
	return "~" + base64.RawURLEncoding.EncodeToString(sum[:9])
}

// ResolveChoice returns the payload that ref names among choices (the
// previous turn's [Choices]): a number n from 1 to len(choices), as a user
// types it on a channel that shows buttons as numbered lines ("2", " 2. "),
// names the nth; a [ChoiceRef] names the payload it was made from. ok is
// false when ref names none of them.
func ResolveChoice(choices []string, ref string) (payload string, ok bool) {
	if strings.HasPrefix(ref, "~") {
		for _, p := range choices {
			if ChoiceRef(p) == ref {
				return p, true
			}
		}
		return "", false
	}
	n, ok := ChoiceNumber(ref)
	if !ok || n > len(choices) {
		return "", false
	}
	return choices[n-1], true
}

// ChoiceNumber reads a typed answer that is only a number, as a user picks
// a numbered line: "2", " 2 ", "2." or "#2". ok is false for anything
// else, and for numbers outside 1..[MaxChoices].
func ChoiceNumber(text string) (int, bool) {
	s := strings.TrimSpace(text)
	s = strings.TrimPrefix(s, "#")
	s = strings.TrimSuffix(s, ".")
	s = strings.TrimSuffix(s, ")")
	if s == "" || len(s) > 3 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxChoices {
		return 0, false
	}
	return n, true
}
