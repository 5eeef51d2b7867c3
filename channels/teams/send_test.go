package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/teams/teamstest"
	"github.com/parleyhq/parley/msg"
)

// eventFrom is the event the adapter made of testdata activity file, its
// serviceUrl pointed at the fake connector (as if the connector had sent
// it from there).
func (f *fixture) eventFrom(t *testing.T, file, serviceURL string) *msg.Event {
	t.Helper()
	var act map[string]any
	if err := json.Unmarshal(golden.Read(t, file), &act); err != nil {
		t.Fatal(err)
	}
	act["serviceUrl"] = serviceURL
	body, _ := json.Marshal(act)
	in, err := f.a.Parse(f.signed(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Events) != 1 {
		t.Fatalf("%d events", len(in.Events))
	}
	return in.Events[0]
}

func result(ev *msg.Event, replies ...msg.Reply) *msg.TurnResult {
	return &msg.TurnResult{Event: ev, Conversation: ev.Conversation, Replies: replies, Outcome: msg.OutcomeHandled}
}

// TestSendReply: a reply goes to {serviceUrl}/v3/conversations/{id}/activities/{replyToId}
// with a token of the bot's credentials, addressed from the bot.
func TestSendReply(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_channel_mention.json", conn.URL+"/amer/")
	if err := f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "**Menu**: margherita"})); err != nil {
		t.Fatal(err)
	}
	posts := conn.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	p := posts[0]
	wantPath := "/amer/v3/conversations/" + url.PathEscape(ev.Conversation) + "/activities/1759881511856"
	if p.Path != wantPath || p.ClientID != testAppID {
		t.Fatalf("posted to %s as %q, want %s as the bot", p.Path, p.ClientID, wantPath)
	}
	a := p.Activity
	conv, _ := a["conversation"].(map[string]any)
	from, _ := a["from"].(map[string]any)
	if a["type"] != "message" || a["text"] != "**Menu**: margherita" || a["textFormat"] != "markdown" ||
		a["replyToId"] != "1759881511856" || conv["id"] != ev.Conversation || from["id"] != "28:"+testAppID {
		t.Fatalf("activity %s", p.Body)
	}
}

// TestSendPush: a turn without an activity (a schedule) is posted to the
// conversation on the configured service URL, without a replyToId.
func TestSendPush(t *testing.T) {
	auth := teamstest.NewAuthority(t)
	conn := teamstest.NewConnector(t, auth)
	a := New(Config{OpenIDMetadataURL: auth.MetadataURL(), TokenURL: auth.TokenURL(), ServiceURL: conn.URL + "/teams/"})
	conv := "19:6848757105754c8981c67612732d9aa7@thread.tacv2"
	ev := &msg.Event{ID: "schedule:daily:1:0", Bot: "pizzabot", Channel: Name, Conversation: conv}
	if err := a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "Good morning"})); err != nil {
		t.Fatal(err)
	}
	p := conn.Wait(t, 1)[0]
	if p.Path != "/teams/v3/conversations/"+url.PathEscape(conv)+"/activities" || p.Activity["replyToId"] != nil ||
		p.Activity["text"] != "Good morning" {
		t.Fatalf("pushed %s to %s", p.Body, p.Path)
	}
}

// TestSendRefusesUnsafeServiceURL: an event whose activity names a
// serviceUrl Parley would not send its token to fails for good, unsent.
func TestSendRefusesUnsafeServiceURL(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	for _, bad := range []string{"http://attacker.example/", "https://user:pw@attacker.example/", "file:///etc/passwd"} {
		var act map[string]any
		_ = json.Unmarshal(ev.Raw, &act)
		act["serviceUrl"] = bad
		raw, _ := json.Marshal(act)
		forged := *ev
		forged.Raw = raw
		err := f.a.Send(context.Background(), testSettings(), result(&forged, msg.Reply{Text: "hi"}))
		var se *channels.SendError
		if !errors.As(err, &se) || se.Retryable {
			t.Errorf("%s: err = %v, want a permanent SendError", bad, err)
		}
	}
	if f.auth.TokenRequests() != 0 || len(conn.Posts()) != 0 {
		t.Fatalf("a token was requested (%d) or sent (%d)", f.auth.TokenRequests(), len(conn.Posts()))
	}
}

// TestTokenCached: many sends use one token; it is fetched again once it
// is about to expire.
func TestTokenCached(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	for range 10 {
		if err := f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "one"}, msg.Reply{Text: "two"})); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.auth.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests for 20 sends, want 1", n)
	}
	if n := len(conn.Posts()); n != 20 {
		t.Fatalf("%d posts, want 20", n)
	}
	f.now = f.now.Add(56 * time.Minute) // within five minutes of the hour
	if err := f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "later"})); err != nil {
		t.Fatal(err)
	}
	if n := f.auth.TokenRequests(); n != 2 {
		t.Fatalf("%d token requests after expiry, want 2", n)
	}
	// Another bot's credentials get a token of their own.
	other := channels.Settings{SettingAppID: "0b6fe6d1-fece-44f7-9a48-56465e2d5ab8", SettingAppPassword: "another-secret-0123"}
	if err := f.a.Send(context.Background(), other, result(ev, msg.Reply{Text: "x"})); err != nil {
		t.Fatal(err)
	}
	if p := conn.Posts(); p[len(p)-1].ClientID != other[SettingAppID] || f.auth.TokenRequests() != 3 {
		t.Fatalf("sent as %q after %d token requests", p[len(p)-1].ClientID, f.auth.TokenRequests())
	}
}

// TestTokenOneFetchAtATime: concurrent sends of one bot wait for one token.
func TestTokenOneFetchAtATime(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			errs <- f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "hi"}))
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := f.auth.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
}

// TestSingleTenantToken: a tenant_id takes the token from that tenant.
func TestSingleTenantToken(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	s := testSettings()
	s[SettingTenantID] = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	if err := f.a.Send(context.Background(), s, result(ev, msg.Reply{Text: "hi"})); err != nil {
		t.Fatal(err)
	}
	if auth := conn.Posts()[0].ClientID; auth != testAppID {
		t.Fatalf("sent as %q", auth)
	}
	// The fake names its tokens after the tenant of the URL they came from.
	if _, ok := f.auth.Issued("access-72f988bf-86f1-41af-91ab-2d7cd011db47-1"); !ok {
		t.Fatal("the token did not come from the bot's tenant")
	}
}

// TestSendErrors: the connector's 429 and 5xx (and 412) are retryable with
// Retry-After; other refusals are not; a refused token is fetched again.
func TestSendErrors(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	send := func() *channels.SendError {
		err := f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "hi"}))
		var se *channels.SendError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v, want a SendError", err)
		}
		return se
	}
	cases := []struct {
		status    int
		retryable bool
		after     time.Duration
	}{
		{http.StatusTooManyRequests, true, 3 * time.Second},
		{http.StatusServiceUnavailable, true, 0},
		{http.StatusBadGateway, true, 0},
		{http.StatusPreconditionFailed, true, 0},
		{http.StatusBadRequest, false, 0},
		{http.StatusNotFound, false, 0},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.after > 0 {
			h.Set("Retry-After", "3")
		}
		conn.Fail(c.status, h)
		se := send()
		if se.Status != c.status || se.Retryable != c.retryable || se.RetryAfter != c.after {
			t.Errorf("HTTP %d: %+v", c.status, se)
		}
		if strings.Contains(se.Error(), testPassword) {
			t.Errorf("the error shows the password: %v", se)
		}
	}

	// The connector refuses the token: the next send fetches a new one.
	conn.Fail(http.StatusUnauthorized, nil)
	before := f.auth.TokenRequests()
	if se := send(); se.Status != http.StatusUnauthorized || se.Retryable {
		t.Errorf("HTTP 401: %+v", se)
	}
	conn.Fail(0, nil)
	if err := f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{Text: "hi"})); err != nil {
		t.Fatal(err)
	}
	if n := f.auth.TokenRequests(); n != before+1 {
		t.Fatalf("%d token requests, want %d", n, before+1)
	}

	// The token endpoint: 503 is retryable, a refusal of the credentials is not.
	f.auth.SetTokenStatus(http.StatusServiceUnavailable)
	f.now = f.now.Add(2 * time.Hour)
	if se := send(); !se.Retryable || se.Status != http.StatusServiceUnavailable {
		t.Errorf("token endpoint 503: %+v", se)
	}
	f.auth.SetTokenStatus(http.StatusUnauthorized)
	if se := send(); se.Retryable {
		t.Errorf("token endpoint 401: %+v", se)
	}
}

func menuReply() msg.Reply {
	return msg.Reply{
		Text:    "Here is our **menu** & more",
		Options: []string{"Hours"},
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
		Cards: []msg.Card{
			{Title: "Margherita <classic>", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
				Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
			{Title: "Diavola", Buttons: []msg.Button{{Title: strings.Repeat("Add a spicy one ", 6), Payload: strings.Repeat("x", 2100)}}},
		},
		Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
			{Type: msg.MediaFile, URL: "https://example.com/menu.pdf", Caption: "Menu [PDF]"}},
		ChannelData: map[string]json.RawMessage{
			"teams":    json.RawMessage(`{"channelData":{"notification":{"alert":true}},"conversation":{"id":"19:elsewhere"},"replyToId":"x"}`),
			"telegram": json.RawMessage(`{"disable_notification":true}`)},
	}
}

// TestRichGolden sends a rich reply and compares the activities the
// connector received with testdata/rich_send.golden.
func TestRichGolden(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	if err := f.a.Send(context.Background(), testSettings(), result(ev, menuReply())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, p := range conn.Posts() {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, p.Body, "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteString(strings.Replace(p.Path, ev.Conversation, "{conversation}", 1) + "\n")
		out.Write(pretty.Bytes())
		out.WriteString("\n")
	}
	got := bytes.ReplaceAll(out.Bytes(), []byte(url.PathEscape(ev.Conversation)), []byte("{conversation}"))
	golden.Check(t, "rich_send", got)

	posts := conn.Posts()
	first := posts[0].Activity
	conv, _ := first["conversation"].(map[string]any)
	cd, _ := first["channelData"].(map[string]any)
	if conv["id"] != ev.Conversation || first["replyToId"] != "1485983408511" || cd["notification"] == nil {
		t.Errorf("channel data merged wrongly: %s", posts[0].Body)
	}
}

// TestPressRoundTrip: the data of the Action.Submit buttons Parley renders
// comes back, as Teams sends it in the activity's value, as the press.
func TestPressRoundTrip(t *testing.T) {
	long := strings.Repeat("p", maxValue+10)
	r := msg.Reply{Text: "Pick", Options: []string{"Small"}, Buttons: []msg.Button{{Title: "Order", Payload: "order:1"}, {Title: "Long", Payload: long}}}
	acts := Render([]msg.Reply{r})
	if len(acts) != 1 || len(acts[0].Attachments) != 1 {
		t.Fatalf("rendered %+v", acts)
	}
	body := acts[0].Attachments[0].Content.Body
	if body[0].Type != "TextBlock" || body[0].Text != "Pick" || body[1].Type != "ActionSet" || len(body[1].Actions) != 3 {
		t.Fatalf("card body %+v", body)
	}
	want := []msg.Event{{Text: "Small"}, {Text: "Order", Postback: "order:1"}, {Text: "Long", Choice: msg.ChoiceRef(long)}}
	for i, action := range body[1].Actions {
		value, _ := json.Marshal(action.Data)
		var ev msg.Event
		if !pressed(&ev, value) {
			t.Fatalf("press %d not read", i)
		}
		if ev.Text != want[i].Text || ev.Postback != want[i].Postback || ev.Choice != want[i].Choice {
			t.Errorf("press %d = %+v, want %+v", i, ev, want[i])
		}
	}
}

// TestRenderLimits: nothing is dropped past Teams' limits: more than ten
// cards make two carousels, more than six buttons more rows, a text
// longer than a message several messages, and a card too heavy to send
// its text.
func TestRenderLimits(t *testing.T) {
	var cards []msg.Card
	for i := range 12 {
		cards = append(cards, msg.Card{Title: "Pizza " + string(rune('A'+i))})
	}
	acts := fit(Render([]msg.Reply{{Cards: cards}}))
	if len(acts) != 2 || len(acts[0].Attachments) != 10 || acts[0].AttachmentLayout != "carousel" || len(acts[1].Attachments) != 2 {
		t.Fatalf("12 cards: %d activities", len(acts))
	}

	var buttons []msg.Button
	for i := range 8 {
		buttons = append(buttons, msg.Button{Title: "B", Payload: string(rune('a' + i))})
	}
	acts = fit(Render([]msg.Reply{{Text: "Choose", Buttons: buttons}}))
	if body := acts[0].Attachments[0].Content.Body; len(body) != 3 || len(body[1].Actions) != 6 || len(body[2].Actions) != 2 {
		t.Fatalf("8 buttons: %+v", body)
	}

	text := strings.Repeat("a line of text\n", 3000) // 45 KB
	acts = fit(Render([]msg.Reply{{Text: text, Options: []string{"OK"}}}))
	var joined string
	for _, a := range acts[:len(acts)-1] {
		if len(a.Text) > maxTextBytes {
			t.Fatalf("a message of %d bytes", len(a.Text))
		}
		joined += a.Text + "\n"
	}
	if n := strings.Count(joined, "a line of text"); n != 3000 || len(acts) < 4 || len(acts[len(acts)-1].Attachments) != 1 {
		t.Fatalf("long text split into %d activities, %d lines of 3000 kept", len(acts), n)
	}

	heavy := msg.Card{Title: strings.Repeat("Quattro formaggi ", 2000), Buttons: []msg.Button{{Title: "Add", Payload: "add:4f"}}}
	acts = fit(Render([]msg.Reply{{Cards: []msg.Card{heavy, {Title: "Light"}}}}))
	var texts, atts int
	for _, a := range acts {
		if size(a) > maxActivityBytes {
			t.Fatalf("an activity of %d bytes", size(a))
		}
		texts += strings.Count(a.Text, "Quattro")
		atts += len(a.Attachments)
	}
	if texts != 2000 || atts != 1 {
		t.Fatalf("heavy card: %d mentions in text, %d cards", texts, atts)
	}
}

// TestNoReplyNoSend: a turn without replies (or only empty ones) sends
// nothing and needs no token.
func TestNoReplyNoSend(t *testing.T) {
	f := newFixture(t)
	conn := teamstest.NewConnector(t, f.auth)
	ev := f.eventFrom(t, "message_personal.json", conn.URL+"/")
	if err := f.a.Send(context.Background(), testSettings(), result(ev, msg.Reply{})); err != nil {
		t.Fatal(err)
	}
	if f.auth.TokenRequests() != 0 || len(conn.Posts()) != 0 {
		t.Fatal("an empty turn was sent")
	}
}
