package alexa

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestRespondWritesWhatEncodingJSONWrites: a response is written as
// encoding/json (without HTML escaping) writes it, with and without
// channel data, every field set; a field added to Response that respond's
// plain copy lacks fails here.
func TestRespondWritesWhatEncodingJSONWrites(t *testing.T) {
	end := false
	r := Response{Version: "1.0", SessionAttributes: map[string]string{"b": "2", "a": "<1>"},
		Response: ResponseBody{
			OutputSpeech: &OutputSpeech{Type: "SSML", SSML: "<speak>Thin & crisp?</speak>"},
			Card:         &Card{Type: "Standard", Title: "Pizza", Text: "A large one", Image: &CardImage{SmallImageURL: "https://x/s.png", LargeImageURL: "https://x/l.png"}},
			Reprompt:     &Reprompt{OutputSpeech: OutputSpeech{Type: "SSML", SSML: "<speak>Thin?</speak>"}},
			Directives: []Directive{{Type: "Dialog.ElicitSlot", SlotToElicit: "crust",
				UpdatedIntent: json.RawMessage(`{ "name": "OrderPizza", "slots": {} }`)}},
			ShouldEndSession: &end,
		}}
	for _, extra := range []string{"", `{"directives2":[{"type":"Alexa.Presentation.APL.RenderDocument"}]}`} {
		r.Response.Extra = json.RawMessage(extra)
		got, err := respond(r)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		if w := bytes.TrimRight(want.Bytes(), "\n"); !bytes.Equal(got.Body, w) {
			t.Errorf("extra %q:\ngot  %s\nwant %s", extra, got.Body, w)
		}
	}
}
