package telegram

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// Bot API limits (core.telegram.org/bots/api).
const (
	maxText    = 4096 // sendMessage text
	maxCaption = 1024 // media captions
	maxButtons = 100  // buttons of one inline keyboard
	// noText stands in for the text of a message that only carries
	// buttons: sendMessage refuses an empty text.
	noText          = "Choose an option:"
	channelDataKind = Name
)

// apiCall is one Bot API method call.
type apiCall struct {
	Method string
	Body   any
}

// mediaMethods are the send methods and their file parameter, per media type.
var mediaMethods = map[msg.MediaType][2]string{
	msg.MediaImage: {"sendPhoto", "photo"},
	msg.MediaAudio: {"sendAudio", "audio"},
	msg.MediaVideo: {"sendVideo", "video"},
	msg.MediaFile:  {"sendDocument", "document"},
}

// MediaMessage is the body of sendPhoto, sendAudio, sendVideo and
// sendDocument with a file by URL (Telegram fetches it).
type MediaMessage struct {
	ChatID          int64        `json:"chat_id"`
	MessageThreadID int64        `json:"message_thread_id,omitempty"`
	Photo           string       `json:"photo,omitempty"`
	Audio           string       `json:"audio,omitempty"`
	Video           string       `json:"video,omitempty"`
	Document        string       `json:"document,omitempty"`
	Caption         string       `json:"caption,omitempty"`
	ReplyMarkup     *ReplyMarkup `json:"reply_markup,omitempty"`
}

// replyCalls renders one reply as Bot API calls: the text with an inline
// keyboard of its options and buttons (a text longer than a message takes
// is split, the keyboard under the last part); each card as a photo with
// its title and subtitle as caption (a message when it has no image) and
// its buttons as keyboard; each media item with the method of its type.
// channel_data.telegram is merged into the text's message.
func replyCalls(conv string, r msg.Reply) ([]apiCall, error) {
	chat, thread, err := chatOf(conv)
	if err != nil {
		return nil, err
	}
	var calls []apiCall
	kbs := keyboards(r.Options, r.Buttons)
	text := r.Text
	if text == "" && len(kbs) > 0 {
		text = noText
	}
	parts := splitText(text, maxText)
	if len(parts) == 0 && len(r.ChannelData[channelDataKind]) > 0 {
		parts = []string{""} // the channel data may hold the text; if not, Telegram says so
	}
	for i, part := range parts {
		sm := SendMessage{ChatID: chat, MessageThreadID: thread, Text: part}
		if i == len(parts)-1 && len(kbs) > 0 {
			sm.ReplyMarkup = kbs[0]
		}
		if i == 0 {
			sm.Extra = r.ChannelData[channelDataKind]
		}
		calls = append(calls, apiCall{"sendMessage", sm})
	}
	for i := 1; i < len(kbs); i++ { // past 100 buttons: more keyboards
		calls = append(calls, apiCall{"sendMessage", SendMessage{ChatID: chat, MessageThreadID: thread, Text: noText,
			ReplyMarkup: kbs[i]}})
	}
	for _, c := range r.Cards {
		caption := c.Title
		if c.Subtitle != "" {
			caption += "\n" + c.Subtitle
		}
		ckbs := keyboards(nil, c.Buttons)
		var ckb *ReplyMarkup
		if len(ckbs) > 0 {
			ckb = ckbs[0]
		}
		if c.Image != "" && channels.SafeURL(c.Image) {
			calls = append(calls, apiCall{"sendPhoto", MediaMessage{ChatID: chat, MessageThreadID: thread, Photo: c.Image,
				Caption: channels.Truncate(caption, maxCaption), ReplyMarkup: ckb}})
		} else {
			calls = append(calls, apiCall{"sendMessage", SendMessage{ChatID: chat, MessageThreadID: thread,
				Text: channels.Truncate(caption, maxText), ReplyMarkup: ckb}})
		}
		for i := 1; i < len(ckbs); i++ { // past 100 buttons: more keyboards
			calls = append(calls, apiCall{"sendMessage", SendMessage{ChatID: chat, MessageThreadID: thread,
				Text: channels.Truncate(c.Title, maxText), ReplyMarkup: ckbs[i]}})
		}
	}
	for _, m := range r.Media {
		mm, ok := mediaMethods[m.Type]
		if !ok || !channels.SafeURL(m.URL) {
			continue // the sandbox lets none of these through
		}
		body := MediaMessage{ChatID: chat, MessageThreadID: thread, Caption: channels.Truncate(m.Caption, maxCaption)}
		switch mm[1] {
		case "photo":
			body.Photo = m.URL
		case "audio":
			body.Audio = m.URL
		case "video":
			body.Video = m.URL
		default:
			body.Document = m.URL
		}
		calls = append(calls, apiCall{mm[0], body})
	}
	return calls, nil
}

// chatOf reads a conversation: a chat id and an optional forum topic.
func chatOf(conv string) (chat, thread int64, err error) {
	c, t, _ := strings.Cut(conv, ":")
	chat, err = strconv.ParseInt(c, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("conversation %q is not a Telegram chat", conv)
	}
	if t != "" {
		thread, _ = strconv.ParseInt(t, 10, 64)
	}
	return chat, thread, nil
}

// keyboards are inline keyboards with a row per option and button, of at
// most 100 buttons each (Telegram's cap), or none. An option's press comes
// back as its text; a payload button's callback_data is
// channels.PayloadValue (a reference for a payload longer than 62 bytes);
// a link button opens its URL.
func keyboards(options []string, buttons []msg.Button) []*ReplyMarkup {
	var rows [][]Button
	for _, o := range options {
		rows = append(rows, []Button{{Text: o, CallbackData: channels.OptionValue(o, maxCallbackData)}})
	}
	for _, b := range buttons {
		if b.URL != "" {
			if channels.SafeURL(b.URL) {
				rows = append(rows, []Button{{Text: b.Title, URL: b.URL}})
			}
			continue
		}
		rows = append(rows, []Button{{Text: b.Title, CallbackData: channels.PayloadValue(b.Payload, maxCallbackData)}})
	}
	var out []*ReplyMarkup
	for len(rows) > 0 {
		n := min(len(rows), maxButtons)
		out = append(out, &ReplyMarkup{InlineKeyboard: rows[:n]})
		rows = rows[n:]
	}
	return out
}

// splitText cuts s into pieces of at most n characters, at line ends
// where it can; "" gives none.
func splitText(s string, n int) []string {
	var out []string
	for s != "" {
		rs := []rune(s)
		if len(rs) <= n {
			return append(out, s)
		}
		piece := string(rs[:n])
		cut := len(piece)
		if i := strings.LastIndexByte(piece, '\n'); i > 0 {
			cut = i
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], "\n")
	}
	return out
}

// MarshalJSON writes the message with the handler's channel data merged
// into it (chat_id and message_thread_id stay Parley's).
func (sm SendMessage) MarshalJSON() ([]byte, error) {
	type plain SendMessage
	raw, err := json.Marshal(plain(sm))
	if err != nil {
		return nil, err
	}
	return channels.MergeJSON(raw, sm.Extra, "chat_id", "message_thread_id"), nil
}

// buttonLabel is the title of the button of message m whose callback data
// is data, or "".
func buttonLabel(m *Message, data string) string {
	if m == nil || m.ReplyMarkup == nil {
		return ""
	}
	for _, row := range m.ReplyMarkup.InlineKeyboard {
		for _, b := range row {
			if b.CallbackData == data {
				return b.Text
			}
		}
	}
	return ""
}
