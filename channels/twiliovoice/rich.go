package twiliovoice

import (
	"encoding/base64"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/rich"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// offering is what a turn's replies offer beyond their speech: the cards
// read out, the audio played, and the buttons as numbered choices.
type offering struct {
	cards   []voice.Speech
	audio   []string
	choices []rich.Choice
	prompt  voice.Speech // "Say 1 for Order, or 2 for Menu."
	param   string       // the choices for the action URL; "" when too many
}

// offer shapes what replies offer for a call: each card's title and
// subtitle said, each audio medium played (http(s)), and the payload
// buttons offered by number, keyed or said. Links, images, video and files
// cannot be heard and are left out.
func offer(replies []msg.Reply) offering {
	var o offering
	for _, r := range replies {
		for _, c := range r.Cards {
			t := strings.TrimSpace(strings.TrimSpace(c.Title) + ". " + strings.TrimSpace(c.Subtitle))
			if sp := voice.FromText(strings.Trim(t, ". ")); !sp.IsZero() {
				o.cards = append(o.cards, sp)
			}
		}
		for _, m := range r.Media {
			if m.Type == msg.MediaAudio && rich.WebURL(m.URL) {
				o.audio = append(o.audio, m.URL)
			}
		}
	}
	o.choices = rich.Choices(replies)
	if enc := encodeChoices(o.choices); len(enc) <= maxChoicesParam {
		o.param = enc
		o.prompt = voice.FromText(rich.Spoken(o.choices))
	} else {
		// Too many to carry: offered by title, answered as words.
		o.prompt = voice.FromText("You can say " + strings.Join(o.titles(), ", or ") + ".")
	}
	return o
}

func (o offering) titles() []string {
	t := make([]string, len(o.choices))
	for i, c := range o.choices {
		t[i] = c.Title
	}
	return t
}

// play writes a <Play> for each audio medium.
func (o offering) play(b *strings.Builder) {
	for _, u := range o.audio {
		b.WriteString("<Play>")
		b.WriteString(voice.EscapeText(u))
		b.WriteString("</Play>")
	}
}

// encodeChoices is the choices as an action URL parameter: base64url of
// their JSON, which needs no escaping.
func encodeChoices(cs []rich.Choice) string {
	s := rich.EncodeChoices(cs)
	if s == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeChoices(param string) []rich.Choice {
	b, err := base64.RawURLEncoding.DecodeString(param)
	if err != nil {
		return nil
	}
	return rich.DecodeChoices(string(b))
}

// choicesOf is the choices parameter of the request's URL, as Parley wrote
// it ("" when absent).
func choicesOf(req *channels.Request) string {
	if req.URL == nil {
		return ""
	}
	return req.URL.Query().Get(choicesParam)
}
