package rich

import (
	"strconv"
	"strings"
)

// Spoken is the prompt a voice platform says for choices: "Say 1 for
// Order, or 2 for Menu." — what the caller may say (or key) back, which
// [Resolve] maps to the payload. Empty when there are none.
func Spoken(all []Choice) string {
	if len(all) == 0 {
		return ""
	}
	parts := make([]string, len(all))
	for i, c := range all {
		parts[i] = strconv.Itoa(i+1) + " for " + c.Title
	}
	if len(parts) == 1 {
		return "Say " + parts[0] + "."
	}
	return "Say " + strings.Join(parts[:len(parts)-1], ", ") + ", or " + parts[len(parts)-1] + "."
}
