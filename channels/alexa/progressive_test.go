package alexa

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/voice"
	"github.com/parleyhq/parley/msg"
)

// directives is the Progressive Response API: it records each directive.
type directives struct {
	mu   sync.Mutex
	got  []map[string]any
	auth []string
}

func newDirectives(t *testing.T) (*directives, *httptest.Server) {
	d := &directives{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		d.mu.Lock()
		if r.URL.Path == "/v1/directives" {
			d.got, d.auth = append(d.got, m), append(d.auth, r.Header.Get("Authorization"))
		}
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return d, srv
}

func (d *directives) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.got)
}

func progressiveEvent(requestType string) *msg.Event {
	raw := `{"version":"1.0","context":{"System":{"apiEndpoint":"https://api.amazonalexa.com","apiAccessToken":"atok.123"}},` +
		`"request":{"type":"` + requestType + `","requestId":"amzn1.echo-api.request.1"}}`
	return &msg.Event{ID: "amzn1.echo-api.request.1", Raw: json.RawMessage(raw), Voice: true}
}

// TestProgressiveResponse: with a slow model the first sentence is said
// early, and the response says the rest.
func TestProgressiveResponse(t *testing.T) {
	d, srv := newDirectives(t)
	a := New(Config{ProgressiveAfter: 30 * time.Millisecond, ProgressiveEndpoint: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	rs := a.Stream(ctx, nil, progressiveEvent("IntentRequest"))
	rs.Write("We open at nine")
	rs.Write(". On Sun")
	deadline := time.Now().Add(5 * time.Second)
	for d.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no progressive response")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rs.Write("days at ten.")
	res := &msg.TurnResult{Replies: []msg.Reply{{Text: "We open at nine. On Sundays at ten."}}}
	if sent, err := rs.Finish(ctx, res); sent || err != nil {
		t.Fatalf("finish: %v, %v", sent, err)
	}
	dir := d.got[0]
	header, _ := dir["header"].(map[string]any)
	speak, _ := dir["directive"].(map[string]any)
	if d.auth[0] != "Bearer atok.123" || header["requestId"] != "amzn1.echo-api.request.1" ||
		speak["type"] != "VoicePlayer.Speak" || speak["speech"] != voice.TextToSSML("We open at nine.") {
		t.Fatalf("directive %v (%s)", dir, d.auth[0])
	}
	if got := res.Replies[0]; got.SSML != voice.TextToSSML("On Sundays at ten.") || got.Text != "We open at nine. On Sundays at ten." {
		t.Fatalf("reply %+v", got)
	}
	if d.count() != 1 {
		t.Fatalf("%d directives", d.count())
	}
}

// TestNoProgressiveResponse: a fast model, a turn too near its deadline, a
// request type without progressive responses, or a reply that does not
// start with the sentence said: nothing early, or the reply unchanged.
func TestNoProgressiveResponse(t *testing.T) {
	d, srv := newDirectives(t)
	a := New(Config{ProgressiveAfter: time.Hour, ProgressiveEndpoint: srv.URL})
	rs := a.Stream(context.Background(), nil, progressiveEvent("LaunchRequest"))
	rs.Write("Welcome to the pizza bot. What would you like?")
	res := &msg.TurnResult{Replies: []msg.Reply{{Text: "Welcome to the pizza bot. What would you like?"}}}
	if _, err := rs.Finish(context.Background(), res); err != nil || res.Replies[0].SSML != "" {
		t.Fatalf("fast model: %+v, %v", res.Replies[0], err)
	}

	soon := New(Config{ProgressiveAfter: time.Millisecond, ProgressiveEndpoint: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // less than the margin
	defer cancel()
	rs = soon.Stream(ctx, nil, progressiveEvent("IntentRequest"))
	rs.Write("We open at nine. ")
	time.Sleep(50 * time.Millisecond)
	_, _ = rs.Finish(ctx, &msg.TurnResult{Replies: []msg.Reply{{Text: "We open at nine."}}})
	if d.count() != 0 {
		t.Fatalf("%d directives", d.count())
	}
	if soon.Stream(context.Background(), nil, progressiveEvent("SessionEndedRequest")) != nil {
		t.Fatal("a stream for SessionEndedRequest")
	}
	// The request's own endpoint must be Amazon's.
	own := New(Config{})
	ev := progressiveEvent("IntentRequest")
	ev.Raw = json.RawMessage(`{"context":{"System":{"apiEndpoint":"https://evil.example","apiAccessToken":"t"}},"request":{"type":"IntentRequest","requestId":"r"}}`)
	if own.Stream(context.Background(), nil, ev) != nil {
		t.Fatal("a stream to a host that is not Amazon's")
	}
	if own.Stream(context.Background(), nil, progressiveEvent("IntentRequest")) == nil {
		t.Fatal("no stream to api.amazonalexa.com")
	}

	// Said early, but the handler's reply says something else: unchanged.
	quick := New(Config{ProgressiveAfter: time.Millisecond, ProgressiveEndpoint: srv.URL})
	rs = quick.Stream(context.Background(), nil, progressiveEvent("IntentRequest"))
	rs.Write("We open at nine. ")
	for deadline := time.Now().Add(5 * time.Second); d.count() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no progressive response")
		}
	}
	res = &msg.TurnResult{Replies: []msg.Reply{{Text: "Sorry, we are closed today."}}}
	_, _ = rs.Finish(context.Background(), res)
	if res.Replies[0].SSML != "" {
		t.Fatalf("reply changed: %+v", res.Replies[0])
	}
}

func TestFirstSentence(t *testing.T) {
	for text, want := range map[string]string{
		"We open at nine. Then":     "We open at nine.",
		"It costs 3.50 euros. Yes":  "It costs 3.50 euros.",
		"Hi. We open at nine. More": "Hi. We open at nine.",
		"No end yet":                "",
		"Ends here.":                "",
		"Really? Yes!\n":            "Really? Yes!",
	} {
		got, ok := firstSentence(text)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q, %v; want %q", text, got, ok, want)
		}
	}
}
