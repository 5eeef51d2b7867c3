package line

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/msg"
)

// TestRichGolden renders each testdata/rich/<case>.json (a handler's
// replies) as the answer to a LINE text message, with its reply token,
// through a fake Messaging API; the golden file holds the API calls.
func TestRichGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rich", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no rich cases", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			var replies []msg.Reply
			if err := json.Unmarshal(golden.Read(t, filepath.Join("rich", name+".json")), &replies); err != nil {
				t.Fatal(err)
			}
			api := metatest.New(t)
			ev := textEvent(t)
			res := golden.Handled(ev, "Menu", replies...)
			if err := at(eventTime.Add(time.Second)).Send(context.Background(), settings(api.URL), res); err != nil {
				t.Fatal(err)
			}
			calls := api.Calls()
			for _, c := range calls {
				checkLimits(t, c.Body)
			}
			golden.Check(t, filepath.Join("rich", name), metatest.Transcript(nil, calls))
		})
	}
}

// checkLimits holds a reply or push call to the Messaging API's limits.
func checkLimits(t *testing.T, body []byte) {
	t.Helper()
	var req struct {
		Messages []Message `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("invalid JSON sent: %s", body)
	}
	if len(req.Messages) == 0 || len(req.Messages) > maxMessages {
		t.Errorf("%d messages in one call", len(req.Messages))
	}
	for _, m := range req.Messages {
		if m.QuickReply != nil && len(m.QuickReply.Items) > maxQuickItems {
			t.Errorf("%d quick replies", len(m.QuickReply.Items))
		}
		if m.Type == "image" && (!strings.HasPrefix(m.OriginalContentURL, "https://") || !strings.HasPrefix(m.PreviewImageURL, "https://")) {
			t.Errorf("image %+v", m)
		}
		if m.Type != "flex" {
			continue
		}
		if m.AltText == "" || len([]rune(m.AltText)) > maxAltText {
			t.Errorf("altText of %d characters", len([]rune(m.AltText)))
		}
		bubbles := []FlexContainer{*m.Contents}
		if m.Contents.Type == "carousel" {
			bubbles = m.Contents.Contents
			if len(bubbles) > maxBubbles {
				t.Errorf("%d bubbles", len(bubbles))
			}
		}
		for _, b := range bubbles {
			if b.Hero != nil && !strings.HasPrefix(b.Hero.URL, "https://") {
				t.Errorf("hero image %q", b.Hero.URL)
			}
			if b.Footer == nil {
				continue
			}
			for _, c := range b.Footer.Contents {
				a := c.Action
				if a == nil || a.Label == "" || len([]rune(a.Label)) > maxActionLabel || len([]rune(a.Data)) > maxData || len(a.URI) > maxURI {
					t.Errorf("button %+v", a)
				}
			}
		}
	}
}

// TestHTTPImageIsALink: LINE shows images by https only; an http image is
// sent as its link, with the caption.
func TestHTTPImageIsALink(t *testing.T) {
	msgs := Messages(&msg.TurnResult{Replies: []msg.Reply{{Media: []msg.Media{{Type: msg.MediaImage, URL: "http://x.example/a.jpg", Caption: "A photo"}}}}})
	if len(msgs) != 1 || msgs[0].Type != "text" || msgs[0].Text != "A photo: http://x.example/a.jpg" {
		t.Fatalf("messages = %+v", msgs)
	}
}

// TestPostbackEvents: a postback action becomes an event whose Postback is
// its data. LINE sends no label: a press of Parley's own button has no
// text, and other postback data (a rich menu's) is also the turn's text,
// for the classifier and the transcript.
func TestPostbackEvents(t *testing.T) {
	for file, want := range map[string]string{"postback_button.json": "ORDER_MARGHERITA", "postback.json": "action=buy&itemid=111"} {
		in, err := New(Config{}).Parse(signed(golden.Read(t, file), settings("")))
		if err != nil || len(in.Events) != 1 {
			t.Fatalf("%s: %v %v", file, in, err)
		}
		if ev := in.Events[0]; ev.Postback != want || (ev.Text != "" && ev.Text != want) {
			t.Errorf("%s: text %q postback %q", file, ev.Text, ev.Postback)
		}
	}
}

// TestBadChannelData: channel data that is not a JSON object fails the
// turn before anything is sent, and no retry can fix it.
func TestBadChannelData(t *testing.T) {
	api := metatest.New(t)
	res := &msg.TurnResult{Conversation: "U1", Replies: []msg.Reply{{Text: "first"},
		{Text: "second", ChannelData: map[string]json.RawMessage{ChannelDataKind: json.RawMessage(`[]`)}}}}
	err := New(Config{}).Send(context.Background(), settings(api.URL), res)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retryable || len(api.Calls()) != 0 {
		t.Fatalf("err = %v, calls = %d", err, len(api.Calls()))
	}
}
