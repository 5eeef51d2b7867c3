package alexa

import (
	gojson "github.com/goccy/go-json"

	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// channelDataKind names the handler's channel data for Alexa.
const channelDataKind = Name

// MarshalJSON writes the response object with the handler's channel data
// merged into it: its keys replace Parley's (directives, card, ...), except
// shouldEndSession, which the dialog step decides.
func (b ResponseBody) MarshalJSON() ([]byte, error) {
	type plain ResponseBody
	// SSML stays readable, as respond writes the rest.
	body, err := gojson.MarshalWithOption(plain(b), gojson.DisableHTMLEscape())
	if err != nil {
		return nil, err
	}
	return channels.MergeJSON(body, b.Extra, "shouldEndSession"), nil
}

// CardImage is a Standard card's image: Alexa picks the size that suits
// the device. Both are the handler's one URL.
type CardImage struct {
	SmallImageURL string `json:"smallImageUrl"`
	LargeImageURL string `json:"largeImageUrl"`
}

// richSpeech is what a turn's buttons, cards and media add to the speech,
// which a voice user cannot see: the buttons that send a payload as the
// choices ("Choices: Order, Add."), each card as its title and subtitle,
// and media captions. Links and URLs are not spoken; the card shows them.
func richSpeech(replies []msg.Reply) string {
	var titles, sentences []string
	for _, r := range replies {
		for _, b := range r.Buttons {
			if b.Payload != "" {
				titles = append(titles, b.Title)
			}
		}
		for _, c := range r.Cards {
			s := c.Title
			if c.Subtitle != "" {
				s += ": " + c.Subtitle
			}
			sentences = append(sentences, sentence(s))
			for _, b := range c.Buttons {
				if b.Payload != "" {
					titles = append(titles, b.Title)
				}
			}
		}
		for _, m := range r.Media {
			if m.Caption != "" {
				sentences = append(sentences, sentence(m.Caption))
			}
		}
	}
	if len(titles) > 0 {
		sentences = append(sentences, sentence("Choices: "+strings.Join(dedupe(titles), ", ")))
	}
	return strings.Join(sentences, " ")
}

// sentence ends s with a full stop unless it ends with punctuation.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s[len(s)-1:], ".!?:;") {
		return s
	}
	return s + "."
}

func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// withRichSpeech adds extra to the speech, unless the whole would pass
// Alexa's SSML limit (the card still shows it then).
func withRichSpeech(sp voice.Speech, extra string) voice.Speech {
	more := voice.FromText(extra)
	switch {
	case more.IsZero():
		return sp
	case sp.IsZero():
		return more
	}
	ssml := "<speak>" + voice.Inner(sp.SSML) + " " + voice.Inner(more.SSML) + "</speak>"
	if len(ssml) > voice.MaxSSMLBytes {
		return sp
	}
	return voice.Speech{SSML: ssml, Text: sp.Text + " " + more.Text}
}

// richCard makes the response's card show a turn's rich replies: its
// content (or text) becomes everything the replies hold as text (links
// with their URLs; see channels.Plain), and the first https image, of a
// card or among the media, makes it a Standard card titled with that
// card's title. A turn without rich replies keeps the card as it is.
func richCard(body *ResponseBody, title string, replies []msg.Reply) {
	rich := false
	for i := range replies {
		if len(replies[i].Buttons)+len(replies[i].Cards)+len(replies[i].Media) > 0 {
			rich = true
		}
	}
	if !rich || body.OutputSpeech == nil {
		return
	}
	var parts []string
	for _, r := range replies {
		r.Options = nil // spoken hints, not shown
		if t := (channels.Plain{}).Text(r, 0); t != "" {
			parts = append(parts, t)
		}
	}
	text := voice.Truncate(strings.Join(parts, "\n\n"), maxCardText)
	image, imageTitle := firstImage(replies)
	if image == "" {
		body.Card = &Card{Type: "Simple", Title: title, Content: text}
		return
	}
	if imageTitle != "" {
		title = imageTitle
	}
	body.Card = &Card{Type: "Standard", Title: title, Text: text, Image: &CardImage{SmallImageURL: image, LargeImageURL: image}}
}

// firstImage is the first image Alexa can show (https only), from a card
// (with the card's title) or else from the media.
func firstImage(replies []msg.Reply) (url, title string) {
	for _, r := range replies {
		for _, c := range r.Cards {
			if strings.HasPrefix(strings.ToLower(c.Image), "https://") {
				return c.Image, c.Title
			}
		}
	}
	for _, r := range replies {
		for _, m := range r.Media {
			if m.Type == msg.MediaImage && strings.HasPrefix(strings.ToLower(m.URL), "https://") {
				return m.URL, m.Caption
			}
		}
	}
	return "", ""
}
