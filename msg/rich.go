package msg

// Button is one action of a reply or a card. Exactly one of Payload and
// URL is set: a payload comes back as the [Event.Postback] of the turn the
// press starts; a URL opens a page.
type Button struct {
	// Title is the button's label.
	Title string `json:"title"`
	// Payload is sent back when the button is pressed.
	Payload string `json:"payload,omitempty"`
	// URL is opened when the button is pressed (https or http).
	URL string `json:"url,omitempty"`
}

// Card is a titled item with an optional image and buttons.
type Card struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle,omitempty"`
	Image    string   `json:"image,omitempty"`
	Buttons  []Button `json:"buttons,omitempty"`
}

// MediaType is the kind of a [Media] attachment.
type MediaType string

// Media types.
const (
	MediaImage MediaType = "image"
	MediaAudio MediaType = "audio"
	MediaVideo MediaType = "video"
	MediaFile  MediaType = "file"
)

// Media is an attachment sent with a reply, by URL.
type Media struct {
	Type    MediaType `json:"type"`
	URL     string    `json:"url"`
	Caption string    `json:"caption,omitempty"`
}

// Rich reports whether r carries anything beyond text, SSML and options.
func (r *Reply) Rich() bool {
	return len(r.Buttons) > 0 || len(r.Cards) > 0 || len(r.Media) > 0 || len(r.ChannelData) > 0
}
