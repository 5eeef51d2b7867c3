package web

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

var now = time.Unix(1700000000, 0).UTC()

func TestUserTokens(t *testing.T) {
	tk := NewTokens([]byte("server-secret-0123456789"))
	good := tk.Mint("b", token, "alice", now.Add(time.Hour))
	if user, exp, err := tk.Verify("b", token, good, now); err != nil || user != "alice" || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("Verify(good) = %q, %v, %v", user, exp, err)
	}
	other := NewTokens([]byte("another-server-secret"))
	// A forged token: the payload names bob, with alice's signature.
	parts := strings.Split(good, ".")
	bobPayload := strings.Split(tk.Mint("b", token, "bob", now.Add(time.Hour)), ".")[1]
	for name, tc := range map[string]struct {
		bot, channelToken, token string
		at                       time.Time
	}{
		"expired":               {"b", token, good, now.Add(time.Hour)},
		"other bot":             {"b2", token, good, now},
		"rotated channel token": {"b", token + "-new", good, now},
		"other server secret":   {"b", token, other.Mint("b", token, "alice", now.Add(time.Hour)), now},
		"forged user":           {"b", token, parts[0] + "." + bobPayload + "." + parts[2], now},
		"bad signature":         {"b", token, parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA", now},
		"garbage":               {"b", token, "wt1.!!!.???", now},
		"channel token":         {"b", token, token, now},
		"empty":                 {"b", token, "", now},
		"no channel token":      {"b", "", good, now},
	} {
		if user, _, err := tk.Verify(tc.bot, tc.channelToken, tc.token, tc.at); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: Verify = %q, %v; want ErrBadToken", name, user, err)
		}
	}
	var none *Tokens
	if _, _, err := none.Verify("b", token, good, now); !errors.Is(err, ErrBadToken) {
		t.Errorf("a nil signer verified a token: %v", err)
	}
}

func TestParseWithUserToken(t *testing.T) {
	tk := NewTokens([]byte("server-secret-0123456789"))
	a := New(Config{Tokens: tk})
	alice := "Bearer " + tk.Mint("b", token, "alice", now.Add(time.Hour))
	in, err := a.Parse(request(alice, `{"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev := in.Events[0]; ev.User != "alice" || ev.Conversation != "alice" {
		t.Fatalf("event = %+v", ev)
	}
	if in, err = a.Parse(request(alice, `{"user":"alice","conversation":"alice/support","text":"hi"}`)); err != nil ||
		in.Events[0].Conversation != "alice/support" {
		t.Fatalf("own second conversation: %v", err)
	}
	for name, tc := range map[string]struct {
		auth, body string
		status     int
	}{
		"other user":               {alice, `{"user":"bob","text":"x"}`, 403},
		"other user's convo":       {alice, `{"conversation":"bob","text":"x"}`, 403},
		"prefix is not ownership":  {alice, `{"conversation":"alicex","text":"x"}`, 403},
		"empty suffix":             {alice, `{"conversation":"alice/","text":"x"}`, 403},
		"other bot's token":        {"Bearer " + tk.Mint("b2", token, "alice", now.Add(time.Hour)), `{"text":"x"}`, 401},
		"expired":                  {"Bearer " + tk.Mint("b", token, "alice", now), `{"text":"x"}`, 401},
		"minted under old channel": {"Bearer " + tk.Mint("b", "old-token-0123456789", "alice", now.Add(time.Hour)), `{"text":"x"}`, 401},
	} {
		_, err := a.Parse(request(tc.auth, tc.body))
		var ce *channels.Error
		if !errors.As(err, &ce) || ce.Status != tc.status {
			t.Errorf("%s: err = %v, want status %d", name, err, tc.status)
		}
	}
	// The channel's token still acts as anyone.
	if in, err := a.Parse(request("Bearer "+token, `{"user":"bob","text":"x"}`)); err != nil || in.Events[0].User != "bob" {
		t.Fatalf("channel token: %v", err)
	}
}

func TestValidUserAndOwnership(t *testing.T) {
	for _, u := range []string{"alice", "a.b@c.d", "anon-0f", "X_1+2"} {
		if !ValidUser(u) {
			t.Errorf("ValidUser(%q) = false", u)
		}
	}
	for _, u := range []string{"", "a/b", "a b", "a\nb", "é", strings.Repeat("a", MaxUserLen+1)} {
		if ValidUser(u) {
			t.Errorf("ValidUser(%q) = true", u)
		}
	}
	if u, err := AnonymousUser(); err != nil || !ValidUser(u) || !strings.HasPrefix(u, "anon-") {
		t.Errorf("AnonymousUser = %q, %v", u, err)
	}
}

func TestOrigins(t *testing.T) {
	got, err := ParseOrigins(" https://Shop.Example.com , http://localhost:8080,https://a.example:443")
	if err != nil || strings.Join(got, " ") != "https://shop.example.com http://localhost:8080 https://a.example" {
		t.Fatalf("ParseOrigins = %q, %v", got, err)
	}
	for _, bad := range []string{"*", "https://*.example.com", "https://a.example/path", "https://a.example/", "ftp://a.example",
		"a.example", "https://user@a.example", "https://a.example?x=1", "null", "https://a.example,"} {
		if _, err := ParseOrigins(bad); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
	s := channels.Settings{"token": token, "allowed_origins": "https://shop.example.com"}
	if !OriginAllowed(s, "https://shop.example.com") || OriginAllowed(s, "https://evil.example") ||
		OriginAllowed(s, "https://shop.example.com.evil.example") || OriginAllowed(s, "") || OriginAllowed(s, "null") {
		t.Error("OriginAllowed answers wrong")
	}
	a := New(Config{})
	for name, tc := range map[string]struct {
		s  channels.Settings
		ok bool
	}{
		"origins":             {channels.Settings{"token": token, "allowed_origins": "https://a.example"}, true},
		"anonymous":           {channels.Settings{"token": token, "allowed_origins": "https://a.example", "allow_anonymous": "true"}, true},
		"anonymous no origin": {channels.Settings{"token": token, "allow_anonymous": "true"}, false},
		"wildcard":            {channels.Settings{"token": token, "allowed_origins": "*"}, false},
		"unknown":             {channels.Settings{"token": token, "origins": "https://a.example"}, false},
	} {
		if err := a.ValidateSettings(tc.s); (err == nil) != tc.ok {
			t.Errorf("%s: ValidateSettings = %v", name, err)
		}
	}
}

type fakeOutbox struct {
	bot, conversation string
	answer            []byte
	err               error
}

func (f *fakeOutbox) Append(_ context.Context, bot, conversation string, answer []byte) (string, error) {
	f.bot, f.conversation, f.answer = bot, conversation, answer
	return "1-0", f.err
}

func TestSendAppendsToOutbox(t *testing.T) {
	box := &fakeOutbox{}
	a := New(Config{Outbox: box})
	res := &msg.TurnResult{Event: &msg.Event{Bot: "b", Channel: Name, Conversation: "alice"}, Conversation: "alice",
		Replies: []msg.Reply{{Text: "Your pizza is ready", Buttons: []msg.Button{{Title: "Thanks", Payload: "Thanks"}}}}}
	if err := a.Send(context.Background(), channels.Settings{"token": token}, res); err != nil {
		t.Fatal(err)
	}
	var ans Answer
	if err := json.Unmarshal(box.answer, &ans); err != nil || box.bot != "b" || box.conversation != "alice" ||
		ans.Replies[0].Text != "Your pizza is ready" || ans.Replies[0].Buttons[0].Payload != "Thanks" {
		t.Fatalf("appended %s to %s/%s (%v)", box.answer, box.bot, box.conversation, err)
	}
	box.err = errors.New("store down")
	var se *channels.SendError
	if err := a.Send(context.Background(), nil, res); !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("failed append: %v, want a retryable SendError", err)
	}
	if err := New(Config{}).Send(context.Background(), nil, res); !errors.As(err, &se) || se.Retryable {
		t.Fatalf("no outbox: %v, want a permanent SendError", err)
	}
}
