package teams

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/channels/teams/teamstest"
	"github.com/parleyhq/parley/msg"
)

// testAppID is the app id of the bot in testdata ("28:" + app id).
const (
	testAppID    = "c9e8c047-2a74-40a2-b28a-b162d5f5327c"
	testPassword = "client-secret-0123456789"
)

func testSettings() channels.Settings {
	return channels.Settings{SettingAppID: testAppID, SettingAppPassword: testPassword}
}

// fixture is an adapter that trusts a fake authority.
type fixture struct {
	auth *teamstest.Authority
	a    *Adapter
	now  time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	auth := teamstest.NewAuthority(t)
	f := &fixture{auth: auth, now: time.Now()}
	f.a = New(Config{OpenIDMetadataURL: auth.MetadataURL(), TokenURL: auth.TokenURL(), ServiceURL: "https://connector.invalid/",
		Clock: func() time.Time { return f.now }})
	return f
}

// request is body posted with token at the fixture's time.
func (f *fixture) request(body []byte, token string) *channels.Request {
	h := http.Header{"Content-Type": {"application/json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/teams"},
		Header: h, Body: body, Settings: testSettings(), Now: f.now}
}

// signed is body with a valid token for the activity's serviceUrl.
func (f *fixture) signed(t testing.TB, body []byte) *channels.Request {
	t.Helper()
	act, err := DecodeActivity(body)
	if err != nil {
		t.Fatal(err)
	}
	return f.request(body, teamstest.Sign(t, f.auth.Key(), teamstest.ConnectorClaims(testAppID, act.ServiceURL, f.now)))
}

// parseCases are the activities in testdata: adding a case is adding a
// file (and its golden file, with -update).
func parseCases(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	return out
}

// TestParseGolden walks testdata: each activity, signed as the connector
// signs it, against its normalized event and the acknowledgement.
func TestParseGolden(t *testing.T) {
	f := newFixture(t)
	for _, name := range parseCases(t) {
		t.Run(name, func(t *testing.T) {
			in, err := f.a.Parse(f.signed(t, golden.Read(t, name+".json")))
			if err != nil {
				t.Fatal(err)
			}
			var ev *msg.Event
			switch len(in.Events) {
			case 0:
			case 1:
				ev = in.Events[0]
				if !in.Async {
					t.Error("events of the teams channel are processed from the queue")
				}
			default:
				t.Fatalf("%d events", len(in.Events))
			}
			golden.Check(t, name, golden.Render(ev, in.Response))
		})
	}
}

// refusal asserts that Parse refuses req with a 401.
func refusal(t *testing.T, a *Adapter, req *channels.Request) string {
	t.Helper()
	in, err := a.Parse(req)
	var ce *channels.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Fatalf("Parse = %+v, %v; want a 401", in, err)
	}
	return ce.Message
}

// TestVerifyRefusals: every token the connector would not have sent is a 401.
func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	body := golden.Read(t, "message_personal.json")
	const service = "https://smba.trafficmanager.net/amer/"
	valid := func() teamstest.Claims { return teamstest.ConnectorClaims(testAppID, service, f.now) }
	if _, err := f.a.Parse(f.request(body, teamstest.Sign(t, f.auth.Key(), valid()))); err != nil {
		t.Fatalf("a valid token is refused: %v", err)
	}
	other := teamstest.NewKey(t, "key-1", "msteams") // the known kid, another key
	skypeOnly := teamstest.NewKey(t, "key-skype", "skype")
	f.auth.SetKeys(f.auth.Key(), skypeOnly)
	f.now = f.now.Add(6 * time.Minute) // the unknown key-skype may be fetched now

	cases := map[string]func() string{
		"no token": func() string { return "" },
		"wrong audience": func() string {
			c := valid()
			c.Audience = "0b6fe6d1-fece-44f7-9a48-56465e2d5ab8"
			return teamstest.Sign(t, f.auth.Key(), c)
		},
		"wrong issuer": func() string {
			c := valid()
			c.Issuer = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
			return teamstest.Sign(t, f.auth.Key(), c)
		},
		"expired": func() string {
			c := teamstest.ConnectorClaims(testAppID, service, f.now.Add(-2*time.Hour))
			return teamstest.Sign(t, f.auth.Key(), c)
		},
		"not yet valid": func() string {
			c := teamstest.ConnectorClaims(testAppID, service, f.now.Add(10*time.Minute))
			c.IssuedAt = nil
			return teamstest.Sign(t, f.auth.Key(), c)
		},
		"no expiry": func() string {
			c := valid()
			c.ExpiresAt = nil
			return teamstest.Sign(t, f.auth.Key(), c)
		},
		"unknown kid": func() string {
			k := teamstest.NewKey(t, "key-unknown", "msteams")
			return teamstest.Sign(t, k, valid())
		},
		"bad signature":       func() string { return teamstest.Sign(t, other, valid()) },
		"alg none":            func() string { return noneToken(t, valid()) },
		"HS256 with the key":  func() string { return hmacToken(t, f.auth.Key(), valid()) },
		"missing endorsement": func() string { return teamstest.Sign(t, skypeOnly, valid()) },
		"serviceUrl mismatch": func() string {
			return teamstest.Sign(t, f.auth.Key(), teamstest.ConnectorClaims(testAppID, "https://attacker.example/", f.now))
		},
		"no serviceUrl claim": func() string {
			return teamstest.Sign(t, f.auth.Key(), teamstest.ConnectorClaims(testAppID, "", f.now))
		},
		"garbage": func() string { return "not.a.jwt" },
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			msg := refusal(t, f.a, f.request(body, token()))
			t.Log(msg)
		})
	}

	// A bot without an app id verifies nothing.
	req := f.request(body, teamstest.Sign(t, f.auth.Key(), valid()))
	req.Settings = channels.Settings{}
	refusal(t, f.a, req)
}

// TestVerifyClockSkew: exp and nbf are checked with five minutes of skew.
func TestVerifyClockSkew(t *testing.T) {
	f := newFixture(t)
	body := golden.Read(t, "message_personal.json")
	const service = "https://smba.trafficmanager.net/amer/"
	c := teamstest.ConnectorClaims(testAppID, service, f.now)
	c.ExpiresAt.Time = f.now.Add(-4 * time.Minute)
	if _, err := f.a.Parse(f.request(body, teamstest.Sign(t, f.auth.Key(), c))); err != nil {
		t.Errorf("a token expired 4 minutes ago is within the skew: %v", err)
	}
	c.ExpiresAt.Time = f.now.Add(-6 * time.Minute)
	refusal(t, f.a, f.request(body, teamstest.Sign(t, f.auth.Key(), c)))
	c = teamstest.ConnectorClaims(testAppID, service, f.now)
	c.NotBefore.Time = f.now.Add(4 * time.Minute)
	if _, err := f.a.Parse(f.request(body, teamstest.Sign(t, f.auth.Key(), c))); err != nil {
		t.Errorf("a token valid in 4 minutes is within the skew: %v", err)
	}
}

// TestKeyRotation: a new key is picked up when a token names it, but an
// unknown kid refetches the keys at most once in five minutes; the keys
// are also refreshed when they grow old.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	body := golden.Read(t, "message_personal.json")
	const service = "https://smba.trafficmanager.net/amer/"
	sign := func(k teamstest.Key) string {
		return teamstest.Sign(t, k, teamstest.ConnectorClaims(testAppID, service, f.now))
	}
	old := f.auth.Key()
	if _, err := f.a.Parse(f.request(body, sign(old))); err != nil {
		t.Fatal(err)
	}
	if n := f.auth.KeyFetches(); n != 1 {
		t.Fatalf("%d key fetches, want 1", n)
	}
	rotated := teamstest.NewKey(t, "key-2", "msteams")
	f.auth.SetKeys(rotated)

	// Right after a fetch, tokens with unknown kids fetch nothing more.
	for range 20 {
		refusal(t, f.a, f.request(body, sign(rotated)))
	}
	if n := f.auth.KeyFetches(); n != 1 {
		t.Fatalf("%d key fetches after unknown kids, want 1", n)
	}
	// Known keys keep working meanwhile.
	if _, err := f.a.Parse(f.request(body, sign(old))); err != nil {
		t.Fatal(err)
	}

	f.now = f.now.Add(6 * time.Minute)
	if _, err := f.a.Parse(f.request(body, sign(rotated))); err != nil {
		t.Fatalf("the rotated key is not picked up: %v", err)
	}
	if n := f.auth.KeyFetches(); n != 2 {
		t.Fatalf("%d key fetches, want 2", n)
	}
	refusal(t, f.a, f.request(body, sign(old))) // gone from the set

	// Periodic refresh: keys older than the refresh period are fetched again.
	f.now = f.now.Add(13 * time.Hour)
	if _, err := f.a.Parse(f.request(body, sign(rotated))); err != nil {
		t.Fatal(err)
	}
	if n := f.auth.KeyFetches(); n != 3 {
		t.Fatalf("%d key fetches after 13 h, want 3", n)
	}
}

// TestKeysKeptWhenRefreshFails: the keys known stay in use while the
// metadata cannot be fetched.
func TestKeysKeptWhenRefreshFails(t *testing.T) {
	f := newFixture(t)
	body := golden.Read(t, "message_personal.json")
	const service = "https://smba.trafficmanager.net/amer/"
	sign := func() string {
		return teamstest.Sign(t, f.auth.Key(), teamstest.ConnectorClaims(testAppID, service, f.now))
	}
	if _, err := f.a.Parse(f.request(body, sign())); err != nil {
		t.Fatal(err)
	}
	f.auth.Close()
	f.now = f.now.Add(13 * time.Hour)
	if _, err := f.a.Parse(f.request(body, sign())); err != nil {
		t.Fatalf("the cached key is dropped on a failed refresh: %v", err)
	}
}

// TestParseRefusesPlainHTTPServiceURL: a token for an http serviceUrl
// (other than loopback) is refused, since Parley would send its token there.
func TestParseRefusesPlainHTTPServiceURL(t *testing.T) {
	f := newFixture(t)
	var act map[string]any
	_ = json.Unmarshal(golden.Read(t, "message_personal.json"), &act)
	act["serviceUrl"] = "http://smba.trafficmanager.net/amer/"
	body, _ := json.Marshal(act)
	refusal(t, f.a, f.signed(t, body))
}

func TestServiceURLAllowed(t *testing.T) {
	for u, want := range map[string]bool{
		"https://smba.trafficmanager.net/amer/": true,
		"http://127.0.0.1:3978/":                true,
		"http://localhost:56789":                true,
		"http://[::1]:80/":                      true,
		"http://smba.trafficmanager.net/amer/":  false,
		"https://user:pw@example.com/":          false,
		"https://example.com/?x=1":              false,
		"ftp://example.com/":                    false,
		"//example.com":                         false,
		"":                                      false,
		"https://":                              false,
	} {
		if got := ServiceURLAllowed(u); got != want {
			t.Errorf("ServiceURLAllowed(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	good := testSettings()
	if err := a.ValidateSettings(good); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]channels.Settings{
		"no app id":      {SettingAppPassword: testPassword},
		"app id no guid": {SettingAppID: "my-bot", SettingAppPassword: testPassword},
		"no password":    {SettingAppID: testAppID},
		"short password": {SettingAppID: testAppID, SettingAppPassword: "short"},
		"tenant path":    {SettingAppID: testAppID, SettingAppPassword: testPassword, SettingTenantID: "../common"},
		"unknown":        {SettingAppID: testAppID, SettingAppPassword: testPassword, "service_url": "https://x"},
	} {
		if err := a.ValidateSettings(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good[SettingTenantID] = "50612dbb-0237-4969-b378-8d42590f9c00"
	if err := a.ValidateSettings(good); err != nil {
		t.Fatal(err)
	}
	if got := channels.Redact(a, good); got[SettingAppPassword] != "***" || got[SettingAppID] != testAppID {
		t.Errorf("redacted %v", got)
	}
}

// TestNumberedAnswer: a typed bare number may answer buttons sent as
// numbered lines (a card too heavy for Teams); a press is never one.
func TestNumberedAnswer(t *testing.T) {
	act, err := DecodeActivity(golden.Read(t, "message_personal.json"))
	if err != nil {
		t.Fatal(err)
	}
	act.Text = " 2 "
	in := Normalize(act, nil)
	if len(in.Events) != 1 || in.Events[0].Choice != "2" || in.Events[0].Text != "2" {
		t.Fatalf("events %+v", in.Events)
	}
	act.Value = json.RawMessage(`{"parley":"p:order","parley_title":"2"}`)
	in = Normalize(act, nil)
	if ev := in.Events[0]; ev.Choice != "" || ev.Postback != "order" {
		t.Fatalf("press %+v", ev)
	}
}
