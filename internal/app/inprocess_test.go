package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
)

type fixedClock time.Time

func (c fixedClock) Now(context.Context) time.Time { return time.Time(c) }

// echoHTTP answers every http module request with its own URL.
type echoHTTP struct{}

func (echoHTTP) Do(_ context.Context, req *sandbox.HTTPRequest) (*sandbox.HTTPResponse, error) {
	if strings.Contains(req.URL, "refuse") {
		return nil, errors.New("refused by the test")
	}
	return &sandbox.HTTPResponse{Status: 200, Body: []byte("echo " + req.URL)}, nil
}

// TestInProcessHooks runs turns on an app built with hooks, as parley test
// does: the handlers read the hooked clock and http client, sessions and
// store values are visible and reset, and the deployed bot stays.
func TestInProcessHooks(t *testing.T) {
	frozen := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, err := NewWithHooks(context.Background(), testConfig(t, appOptions{}), testLogger(t),
		Hooks{Clock: fixedClock(frozen), HTTP: echoHTTP{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := a.StartBackground(ctx)
	srv := httptest.NewServer(a.Handler())
	defer func() {
		srv.Close()
		cancel()
		if err := wait(); err != nil {
			t.Error(err)
		}
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	}()
	ta := &testApp{App: a, URL: srv.URL}
	ta.setupBot(t, "hooked", map[string]any{"http_allow": []string{"api.example.com"}}, map[string]string{
		"fallback": `function handle(e, s)
			s.n = (s.n or 0) + 1
			local seen = store.get("seen")
			store.set("seen", true)
			local r = http.get("https://api.example.com/x")
			return os.time() .. " " .. r.body .. " " .. tostring(seen) .. " " .. s.n
		end`,
	})
	turn := func() string {
		t.Helper()
		tr, err := a.Run(context.Background(), &msg.Event{Bot: "hooked", Channel: "web", User: "u", Conversation: "u", Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Outcome != msg.OutcomeFallback || len(tr.Replies) != 1 {
			t.Fatalf("turn %+v, err %v", tr.TurnResult, tr.Err)
		}
		return tr.Replies[0].Text
	}
	want := func(n string, seen bool) string {
		s := "nil"
		if seen {
			s = "true"
		}
		return strconv.FormatInt(frozen.Unix(), 10) + " echo https://api.example.com/x " + s + " " + n
	}
	if got := turn(); got != want("1", false) {
		t.Errorf("first turn %q, want %q", got, want("1", false))
	}
	if got := turn(); got != want("2", true) {
		t.Errorf("second turn %q, want %q", got, want("2", true))
	}
	data, ok, err := a.Session(context.Background(), "hooked", msg.KeyOf("web", "u"))
	if err != nil || !ok || data["n"] != float64(2) && data["n"] != int64(2) {
		t.Errorf("session %v %v %v", data, ok, err)
	}
	if err := a.ResetBot(context.Background(), "hooked"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.Session(context.Background(), "hooked", msg.KeyOf("web", "u")); ok || err != nil {
		t.Errorf("session after reset: ok %v err %v", ok, err)
	}
	if got := turn(); got != want("1", false) {
		t.Errorf("turn after reset %q, want %q", got, want("1", false))
	}
	if _, ok := a.Channel("alexa"); !ok {
		t.Error("no alexa adapter")
	}
	do(t, "GET", srv.URL+"/v1/bots/hooked/intents/fallback", adminKey, nil).must(t, http.StatusOK)
}
