package twilio

import (
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// SettingMMS, "true", says the bot's number sends MMS (US and Canadian
// numbers do): media items are then attached to SMS messages. WhatsApp
// conversations always get media attached; SMS without it get the media's
// URLs as text.
const SettingMMS = "mms"

// Limits of one message (twilio.com/docs/messaging/api/media-resource).
const (
	maxMediaPerMMS      = 10
	maxMediaPerWhatsApp = 1
	// maxMessagesPerReply bounds how many messages one long reply is split
	// into; the last is cut, with "…".
	maxMessagesPerReply = 10
)

// message is one message to send: a body, and media URLs to attach.
type message struct {
	Body  string
	Media []string
}

// messages renders a turn's replies for a conversation: text and options,
// buttons as numbered lines ("Reply 1 for Order"), links, cards and media
// as text (channels.Plain), except media that the conversation's number
// can attach. A body longer than a message takes is split at line ends
// into several messages; media beyond a message's count go in further
// messages of their own.
func messages(s channels.Settings, conv string, replies []msg.Reply) []message {
	whatsapp := strings.HasPrefix(conv, "whatsapp:")
	perMessage := 0
	switch {
	case whatsapp:
		perMessage = maxMediaPerWhatsApp
	case s[SettingMMS] == "true":
		perMessage = maxMediaPerMMS
	}
	plain := channels.NewPlain(replies)
	var out []message
	for _, r := range replies {
		native := channels.Native(0)
		var media []string
		if perMessage > 0 {
			native = channels.NativeMedia
			for _, m := range r.Media {
				media = append(media, m.URL)
			}
		}
		text := plain.Text(r, native)
		if native&channels.NativeMedia != 0 {
			// The captions still say what each attachment is.
			var captions []string
			for _, m := range r.Media {
				if m.Caption != "" {
					captions = append(captions, m.Caption)
				}
			}
			if len(captions) > 0 {
				if text != "" {
					text += "\n\n"
				}
				text += strings.Join(captions, "\n")
			}
		}
		bodies := splitBody(text, maxBody, maxMessagesPerReply)
		for i, b := range bodies {
			m := message{Body: b}
			if i == 0 {
				n := min(perMessage, len(media))
				m.Media, media = media[:n], media[n:]
			}
			out = append(out, m)
		}
		for len(media) > 0 {
			n := min(perMessage, len(media))
			out = append(out, message{Media: media[:n]})
			media = media[n:]
		}
	}
	return out
}

// splitBody cuts s into pieces of at most n characters, at the last line
// end (or else space) of each piece when there is one, into at most limit
// pieces; the last piece of a longer text ends with "…". "" gives none.
func splitBody(s string, n, limit int) []string {
	var out []string
	for s != "" {
		if utf8.RuneCountInString(s) <= n {
			return append(out, s)
		}
		if len(out) == limit-1 {
			return append(out, channels.Truncate(s, n))
		}
		cut := byteIndexOfRune(s, n)
		piece := s[:cut]
		if i := strings.LastIndexByte(piece, '\n'); i > 0 {
			cut = i
		} else if i := strings.LastIndexByte(piece, ' '); i > 0 {
			cut = i
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], "\n ")
	}
	return out
}

// byteIndexOfRune is the byte offset of the nth character of s (len(s)
// when s is shorter).
func byteIndexOfRune(s string, n int) int {
	count := 0
	for i := range s {
		if count == n {
			return i
		}
		count++
	}
	return len(s)
}
