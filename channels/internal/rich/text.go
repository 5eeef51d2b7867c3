package rich

import (
	"strconv"
	"strings"

	"github.com/parleyhq/parley/msg"
)

// Text is the plain-text form of what a platform could not show of a reply:
// its options to type, its buttons to answer by number or open by link, its
// cards' titles and its media's links. Empty when r has none of them.
func Text(r msg.Reply) string { return NumberedText(r, nil) }

// NumberedText is Text with each payload button numbered by its place in
// all (the choices [Resolve] maps a number back from), or in order when
// all is nil.
func NumberedText(r msg.Reply, all []Choice) string {
	var lines []string
	n := 0
	button := func(b msg.Button, indent string) {
		switch {
		case b.URL != "":
			lines = append(lines, indent+b.Title+": "+b.URL)
		case b.Payload != "":
			n++
			num, title := n, b.Title
			if i, c, ok := Find(all, b, ""); ok {
				num, title = i, c.Title
			}
			lines = append(lines, indent+"Reply "+strconv.Itoa(num)+" for "+title)
		}
	}
	for _, o := range r.Options {
		if o != "" {
			lines = append(lines, "• "+o)
		}
	}
	for _, b := range r.Buttons {
		button(b, "")
	}
	for _, c := range r.Cards {
		head := c.Title
		if c.Subtitle != "" {
			head += " — " + c.Subtitle
		}
		if c.Image != "" {
			head += " " + c.Image
		}
		lines = append(lines, strings.TrimSpace(head))
		for _, b := range c.Buttons {
			button(b, "  ")
		}
	}
	for _, m := range r.Media {
		if m.Caption != "" {
			lines = append(lines, m.Caption+": "+m.URL)
		} else {
			lines = append(lines, m.URL)
		}
	}
	return strings.Join(lines, "\n")
}

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
