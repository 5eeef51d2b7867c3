package twilio

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
	twapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "0123456789abcdef0123456789abcdef"
)

// sent is one request the fake Messages API received.
type sent struct {
	path, user, pass string
	form             url.Values
}

// fakeAPI is a local Messages API that records requests and answers with
// the status the test sets.
type fakeAPI struct {
	*httptest.Server
	mu      sync.Mutex
	got     []sent
	status  int
	headers http.Header
	body    string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{status: http.StatusCreated, body: `{"sid":"SM00000000000000000000000000000000","status":"queued"}`}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		user, pass, _ := r.BasicAuth()
		f.mu.Lock()
		f.got = append(f.got, sent{path: r.URL.Path, user: user, pass: pass, form: form})
		status, body := f.status, f.body
		for k, v := range f.headers {
			w.Header()[k] = v
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) requests() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sent(nil), f.got...)
}

func pushSettings(f *fakeAPI, extra map[string]string) channels.Settings {
	s := channels.Settings{SettingAuthToken: testToken, SettingAccountSID: testSID, SettingAPIBaseURL: f.URL}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func TestSendPushesEachReply(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	s := pushSettings(f, map[string]string{SettingFrom: "+15005550006"})
	if err := a.ValidateSettings(s); err != nil {
		t.Fatal(err)
	}
	res := &msg.TurnResult{Conversation: "+14155551234", Replies: []msg.Reply{
		{Text: "Your pizza is on its way", Options: []string{"Track it", "Cancel"}},
		{}, // nothing to say: no message
		{Text: "Thanks!"},
	}}
	if err := a.Send(context.Background(), s, res); err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if len(got) != 2 {
		t.Fatalf("%d messages sent, want 2: %+v", len(got), got)
	}
	for i, want := range []string{"Your pizza is on its way\n• Track it\n• Cancel", "Thanks!"} {
		r := got[i]
		if r.path != "/2010-04-01/Accounts/"+testSID+"/Messages.json" || r.user != testSID || r.pass != testToken {
			t.Errorf("message %d: path %s, auth %s:%s", i, r.path, r.user, r.pass)
		}
		if r.form.Get("To") != "+14155551234" || r.form.Get("From") != "+15005550006" || r.form.Get("Body") != want {
			t.Errorf("message %d: form %v", i, r.form)
		}
	}
}

func TestSendWhatsAppAndMessagingService(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	wa := pushSettings(f, map[string]string{SettingFrom: "+15005550006"})
	if err := a.Send(context.Background(), wa, &msg.TurnResult{Conversation: "whatsapp:+14155551234",
		Replies: []msg.Reply{{Text: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	svc := pushSettings(f, map[string]string{SettingMessagingServiceSID: "MG0123456789abcdef0123456789abcdef"})
	if err := a.ValidateSettings(svc); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(context.Background(), svc, &msg.TurnResult{Conversation: "+14155551234",
		Replies: []msg.Reply{{Text: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if len(got) != 2 || got[0].form.Get("From") != "whatsapp:+15005550006" || got[0].form.Get("To") != "whatsapp:+14155551234" {
		t.Errorf("WhatsApp message: %+v", got)
	}
	if got[1].form.Get("MessagingServiceSid") != "MG0123456789abcdef0123456789abcdef" || got[1].form.Has("From") {
		t.Errorf("messaging service message: %+v", got[1].form)
	}
}

func TestSendErrors(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	s := pushSettings(f, map[string]string{SettingFrom: "+15005550006"})
	res := &msg.TurnResult{Conversation: "+14155551234", Replies: []msg.Reply{{Text: "hi"}}}
	cases := []struct {
		status    int
		header    http.Header
		body      string
		retryable bool
		wait      time.Duration
	}{
		{http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, `{"code":20429,"message":"Too Many Requests"}`, true, 7 * time.Second},
		{http.StatusServiceUnavailable, nil, "", true, 0},
		{http.StatusBadRequest, nil, `{"code":21211,"message":"The 'To' number is not a valid phone number."}`, false, 0},
		{http.StatusUnauthorized, nil, `{"code":20003,"message":"Authenticate"}`, false, 0},
	}
	for _, c := range cases {
		f.mu.Lock()
		f.status, f.headers, f.body = c.status, c.header, c.body
		f.mu.Unlock()
		err := a.Send(context.Background(), s, res)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Status != c.status || se.Retryable != c.retryable || se.RetryAfter != c.wait {
			t.Errorf("HTTP %d: %#v", c.status, err)
		}
	}
	// Without a sender configured, nothing is sent and the error says why.
	err := a.Send(context.Background(), pushSettings(f, nil), res)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retryable {
		t.Errorf("without from: %v", err)
	}
	for _, bad := range []map[string]string{
		{SettingFrom: "+15005550006", SettingMessagingServiceSID: "MG0123456789abcdef0123456789abcdef"},
		{SettingMessagingServiceSID: "MGshort"},
		{SettingFrom: "+1500\n5550006"},
		{SettingAPIBaseURL: "ftp://example.com"},
	} {
		s := channels.Settings{SettingAuthToken: testToken, SettingAccountSID: testSID}
		for k, v := range bad {
			s[k] = v
		}
		if err := a.ValidateSettings(s); err == nil {
			t.Errorf("settings %v accepted", bad)
		}
	}
	if err := a.ValidateSettings(channels.Settings{SettingAuthToken: testToken, SettingFrom: "+15005550006"}); err == nil {
		t.Error("from without account_sid accepted")
	}
}

// redirect sends every request of the vendor SDK to the fake API.
type redirect struct{ to *url.URL }

func (r redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.to.Scheme, r.to.Host
	return http.DefaultTransport.RoundTrip(req)
}

// TestSendMatchesTheVendorSDK sends the same message with twilio-go and
// with the adapter: the API sees the same path, credentials and form.
func TestSendMatchesTheVendorSDK(t *testing.T) {
	f := newFakeAPI(t)
	u, _ := url.Parse(f.URL)
	c := &twclient.Client{Credentials: twclient.NewCredentials(testSID, testToken),
		HTTPClient: &http.Client{Transport: redirect{u}}}
	c.SetAccountSid(testSID)
	sdk := twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
	params := &twapi.CreateMessageParams{}
	params.SetTo("+14155551234").SetFrom("+15005550006").SetBody("Table for 2 at 8pm & a \"view\"")
	if _, err := sdk.Api.CreateMessage(params); err != nil {
		t.Fatal(err)
	}
	a := New(Config{})
	err := a.Send(context.Background(), pushSettings(f, map[string]string{SettingFrom: "+15005550006"}),
		&msg.TurnResult{Conversation: "+14155551234", Replies: []msg.Reply{{Text: "Table for 2 at 8pm & a \"view\""}}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	want, ours := got[0], got[1]
	if want.path != ours.path || want.user != ours.user || want.pass != ours.pass || want.form.Encode() != ours.form.Encode() {
		t.Errorf("the SDK sent %+v, the adapter %+v", want, ours)
	}
}

// TestSendMedia: on an MMS number media go as MediaUrl parameters (at most
// ten a message), captions in the body; without mms they are links in it.
func TestSendMedia(t *testing.T) {
	f := newFakeAPI(t)
	a := New(Config{})
	var media []msg.Media
	for i := range 12 {
		media = append(media, msg.Media{Type: msg.MediaImage, URL: "https://example.com/p" + string(rune('a'+i)) + ".jpg"})
	}
	media[0].Caption = "Margherita"
	res := &msg.TurnResult{Conversation: "+14155551234", Replies: []msg.Reply{{Text: "Photos",
		Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}}, Media: media}}}
	mms := pushSettings(f, map[string]string{SettingFrom: "+15005550006", SettingMMS: "true"})
	if err := a.ValidateSettings(mms); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(context.Background(), mms, res); err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if len(got) != 2 {
		t.Fatalf("%d messages, want 2 (10 media, then 2)", len(got))
	}
	if b := got[0].form.Get("Body"); b != "Photos\nReply 1 for Order\n\nMargherita" || len(got[0].form["MediaUrl"]) != 10 ||
		got[0].form["MediaUrl"][0] != "https://example.com/pa.jpg" {
		t.Errorf("first message: %v", got[0].form)
	}
	if got[1].form.Has("Body") || len(got[1].form["MediaUrl"]) != 2 {
		t.Errorf("second message: %v", got[1].form)
	}
	sms := pushSettings(f, map[string]string{SettingFrom: "+15005550006"})
	if err := a.Send(context.Background(), sms, res); err != nil {
		t.Fatal(err)
	}
	got = f.requests()[2:]
	if len(got) != 1 || got[0].form.Has("MediaUrl") || !strings.Contains(got[0].form.Get("Body"), "Margherita: https://example.com/pa.jpg\nhttps://example.com/pb.jpg") {
		t.Errorf("SMS without mms: %+v", got)
	}
	if err := a.ValidateSettings(pushSettings(f, map[string]string{SettingMMS: "yes"})); err == nil {
		t.Error("mms=yes accepted")
	}
}
