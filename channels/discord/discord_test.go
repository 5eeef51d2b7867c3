package discord

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// The key of vector D1: RFC 8032's test key 1.
const (
	seedHex   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	publicHex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	d1        = "f0bd878adcef1f6d475c9644421905bd02b5de38e0d3ecfc6f58a711962c69ccc8dd7c9db312f9bdf08b1e1b8182e27a844da728c5e0dbb5507bf9931c1ed80b"
	appID     = "1200000000000000001"
)

var now = time.Unix(1700000000, 0)

func privateKey(t testing.TB) ed25519.PrivateKey {
	seed, err := hex.DecodeString(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func settings() channels.Settings {
	return channels.Settings{SettingPublicKey: publicHex, SettingApplicationID: appID}
}

func signed(t testing.TB, body []byte, ts string) *channels.Request {
	h := http.Header{}
	h.Set(TimestampHeader, ts)
	h.Set(SignatureHeader, hex.EncodeToString(ed25519.Sign(privateKey(t), append([]byte(ts), body...))))
	return &channels.Request{Bot: "pizzabot", Method: http.MethodPost, URL: &url.URL{Path: "/hooks/pizzabot/discord"},
		Header: h, Body: body, Settings: settings(), Now: now}
}

// TestSignatureVector: D1 (RFC 8032 key 1 over the PING sample), its
// negatives, and the key's sanity check.
func TestSignatureVector(t *testing.T) {
	if got := hex.EncodeToString(privateKey(t).Public().(ed25519.PublicKey)); got != publicHex {
		t.Fatalf("public key = %s", got)
	}
	if got := hex.EncodeToString(ed25519.Sign(privateKey(t), nil)); got != "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" {
		t.Fatalf("RFC 8032 test 1 = %s", got)
	}
	body := golden.Read(t, "ping.json")
	if !ValidSignature(publicHex, "1700000000", body, d1) {
		t.Error("D1 refused")
	}
	if !ValidSignature(publicHex, "1700000000", body, strings.ToUpper(d1)) {
		t.Error("D1 in upper-case hex refused")
	}
	flipped := []byte(d1)
	flipped[10] = 'a'
	for name, tt := range map[string]struct{ ts, sig string }{
		"one hex digit changed": {"1700000000", string(flipped)},
		"other timestamp":       {"1700000001", d1},
		"63-byte signature":     {"1700000000", d1[:126]},
		"no timestamp":          {"", d1},
		"no signature":          {"1700000000", ""},
	} {
		if ValidSignature(publicHex, tt.ts, body, tt.sig) {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSignatureAgreesWithDiscordgo checks verification against discordgo's
// VerifyInteraction, an independent implementation.
func TestSignatureAgreesWithDiscordgo(t *testing.T) {
	pub := privateKey(t).Public().(ed25519.PublicKey)
	for _, name := range cases {
		body := golden.Read(t, name+".json")
		req := signed(t, body, "1700000000")
		hr := httptest.NewRequest(http.MethodPost, "/hooks/pizzabot/discord", bytes.NewReader(body))
		hr.Header = req.Header
		if !discordgo.VerifyInteraction(hr, pub) {
			t.Errorf("%s: discordgo refuses our test signature", name)
		}
		if _, err := New(Config{}).Parse(req); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRefusesBadRequests(t *testing.T) {
	body := golden.Read(t, "ping.json")
	a := New(Config{})
	for name, mutate := range map[string]func(*channels.Request){
		"wrong signature": func(r *channels.Request) { r.Header.Set(SignatureHeader, d1[:127]+"0") },
		"no signature":    func(r *channels.Request) { r.Header.Del(SignatureHeader) },
		"changed body":    func(r *channels.Request) { r.Body = bytes.Replace(r.Body, []byte(`"type":1`), []byte(`"type":2`), 1) },
		"old timestamp":   func(r *channels.Request) { r.Now = now.Add(6 * time.Minute) },
		"future":          func(r *channels.Request) { r.Now = now.Add(-6 * time.Minute) },
		"no public key":   func(r *channels.Request) { r.Settings = channels.Settings{} },
	} {
		req := signed(t, body, "1700000000")
		mutate(req)
		var ce *channels.Error
		if _, err := a.Parse(req); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
			t.Errorf("%s: err = %v, want 401", name, err)
		}
	}
	// The skew check can be turned off.
	req := signed(t, body, "1700000000")
	req.Now = now.Add(time.Hour)
	if _, err := New(Config{MaxSkew: -1}).Parse(req); err != nil {
		t.Errorf("skew check off: %v", err)
	}
	// An interaction for another application is refused.
	other := bytes.Replace(golden.Read(t, "button.json"), []byte(appID), []byte("1200000000000000002"), 1)
	if _, err := a.Parse(signed(t, other, "1700000000")); err == nil {
		t.Error("an interaction for another application was accepted")
	}
}

func TestPingPong(t *testing.T) {
	in, err := New(Config{}).Parse(signed(t, golden.Read(t, "ping.json"), "1700000000"))
	if err != nil || len(in.Events) != 0 || string(in.Response.Body) != `{"type":1}` {
		t.Fatalf("ping = %+v, %v", in, err)
	}
	var r discordgo.InteractionResponse
	if err := json.Unmarshal(in.Response.Body, &r); err != nil || r.Type != discordgo.InteractionResponsePong {
		t.Fatalf("discordgo reads %+v, %v", r, err)
	}
}

// echo is the answer the golden files show: the text back, with options.
func echo(ev *msg.Event) *msg.TurnResult {
	return golden.Handled(ev, "Echo", msg.Reply{Text: "You said: " + ev.Text, Options: []string{"Small", "Large"}})
}

var cases = []string{"ping", "command", "command_options", "subcommand", "button", "button_payload", "select", "dm_command",
	"autocomplete"}

// TestGolden parses each testdata/<case>.json and renders the echo answer
// (or the immediate response); discordgo must read the response.
func TestGolden(t *testing.T) {
	a := New(Config{})
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			req := signed(t, golden.Read(t, name+".json"), "1700000000")
			in, err := a.Parse(req)
			if err != nil {
				t.Fatal(err)
			}
			var ev *msg.Event
			resp := in.Response
			if len(in.Events) == 1 {
				ev = in.Events[0]
				if resp, err = a.Render(req, []*msg.TurnResult{echo(ev)}); err != nil {
					t.Fatal(err)
				}
			}
			readWithDiscordgo(t, resp.Body)
			golden.Check(t, name, golden.Render(ev, resp))
		})
	}
}

// readWithDiscordgo decodes an interaction response with discordgo's types
// (the components through its ActionsRow decoder) and checks the buttons.
func readWithDiscordgo(t *testing.T, body []byte) {
	t.Helper()
	var r struct {
		Type discordgo.InteractionResponseType `json:"type"`
		Data *struct {
			Content    string                    `json:"content"`
			Flags      discordgo.MessageFlags    `json:"flags"`
			Embeds     []*discordgo.MessageEmbed `json:"embeds"`
			Components []discordgo.ActionsRow    `json:"components"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Type == 0 {
		t.Fatalf("discordgo cannot read %s: %v", body, err)
	}
	if r.Data == nil {
		return
	}
	for _, row := range r.Data.Components {
		for _, c := range row.Components {
			b, ok := c.(*discordgo.Button)
			if !ok || b.Label == "" || b.Style == discordgo.LinkButton && (b.URL == "" || b.CustomID != "") ||
				b.Style != discordgo.LinkButton && (b.CustomID == "" || b.Style != discordgo.PrimaryButton) {
				t.Fatalf("discordgo reads a component %#v", c)
			}
		}
	}
}

func TestButtonsAndEmptyAnswers(t *testing.T) {
	opts := make([]string, 30)
	for i := range opts {
		opts[i] = "option " + strconv.Itoa(i) + strings.Repeat("x", 100)
	}
	r := NewResponse(&msg.TurnResult{Replies: []msg.Reply{{Text: strings.Repeat("a", 3000), Options: opts}}})
	if len([]rune(r.Data.Content)) != maxContent || len(r.Data.Components) != maxRows {
		t.Fatalf("response = %+v", r.Data)
	}
	for _, row := range r.Data.Components {
		if len(row.Components) != maxButtonsPerRow {
			t.Fatalf("row = %+v", row)
		}
		for _, b := range row.Components {
			if len([]rune(b.Label)) > maxLabel || len([]rune(b.CustomID)) > maxCustomID {
				t.Fatalf("button = %+v", b)
			}
		}
	}
	empty := NewResponse(&msg.TurnResult{})
	if empty.Type != responseMessage || empty.Data.Content == "" || empty.Data.Flags != flagEphemeral {
		t.Fatalf("empty = %+v", empty.Data)
	}
	apology := New(Config{}).RenderError(nil, errors.New("store down"))
	if !strings.Contains(string(apology.Body), `"flags":64`) {
		t.Fatalf("apology = %s", apology.Body)
	}
}

func TestValidateSettings(t *testing.T) {
	a := New(Config{})
	if err := a.ValidateSettings(settings()); err != nil {
		t.Fatal(err)
	}
	push := settings()
	push[SettingBotToken], push[SettingAPIBaseURL] = "MTIz.abc.def", "https://discord.example/api/v10"
	if err := a.ValidateSettings(push); err != nil {
		t.Fatalf("push settings: %v", err)
	}
	for name, s := range map[string]channels.Settings{
		"short key":  {SettingPublicKey: publicHex[:62]},
		"no key":     {},
		"bad app id": {SettingPublicKey: publicHex, SettingApplicationID: "pizzabot"},
		"unknown":    {SettingPublicKey: publicHex, "token": "x"},
		"bad token":  {SettingPublicKey: publicHex, SettingBotToken: "two words"},
		"bad base":   {SettingPublicKey: publicHex, SettingBotToken: "x", SettingAPIBaseURL: "discord.com"},
	} {
		if a.ValidateSettings(s) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if a.Budget() != DefaultBudget || DefaultBudget >= 3*time.Second {
		t.Errorf("budget %v must stay under Discord's 3 s", a.Budget())
	}
}

func FuzzParse(f *testing.F) {
	a := New(Config{})
	golden.FuzzParse(f, a, golden.Fuzzing{
		Seeds:   golden.Files(cases, ".json"),
		Request: func(body []byte) *channels.Request { return signed(f, body, "1700000000") },
		Check: func(t *testing.T, req *channels.Request, ev *msg.Event) {
			if ev.ID == "" || ev.User == "" {
				t.Fatalf("incomplete event %+v", ev)
			}
			if _, err := a.Render(req, []*msg.TurnResult{echo(ev)}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// BenchmarkParse includes the Ed25519 verification, the dominant cost.
func BenchmarkParse(b *testing.B) {
	golden.BenchmarkParse(b, New(Config{}), signed(b, golden.Read(b, "command_options.json"), "1700000000"))
}

// smallOrderKeys are encodings of points of small order (1, 2, 4 and 8),
// canonical and not: under any of them forged signatures verify.
var smallOrderKeys = map[string]string{
	"identity":                "0100000000000000000000000000000000000000000000000000000000000000",
	"identity, non-canonical": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"order 2":                 "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"order 4":                 "0000000000000000000000000000000000000000000000000000000000000000",
	"order 4, sign bit":       "0000000000000000000000000000000000000000000000000000000000000080",
	"order 8":                 "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"order 8, sign bit":       "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"another of order 8":      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
}

// TestSmallOrderKeysRefused: a channel cannot be saved with a public key of
// small order, and a request is not verified under one, even with the
// signature such a key accepts for any message (R the identity, S zero).
func TestSmallOrderKeysRefused(t *testing.T) {
	a := New(Config{})
	forged := "01" + strings.Repeat("00", 63)
	body := []byte(`{"id":"787053080478613556","token":"t","type":2,"version":1,"data":{"id":"1","name":"test"}}`)
	for name, key := range smallOrderKeys {
		if err := a.ValidateSettings(channels.Settings{SettingPublicKey: key}); err == nil {
			t.Errorf("%s: saved", name)
		}
		if ValidSignature(key, "1700000000", body, forged) {
			t.Errorf("%s: a forged signature verified", name)
		}
		req := signed(t, body, "1700000000")
		req.Settings[SettingPublicKey] = key
		req.Header.Set(SignatureHeader, forged)
		if _, err := a.Parse(req); err == nil {
			t.Errorf("%s: a forged request was accepted", name)
		}
	}
	// A real key still works.
	if _, err := a.Parse(signed(t, body, "1700000000")); err != nil {
		t.Fatal(err)
	}
}

// TestRichGolden renders a rich answer: buttons (a payload, a link, a
// payload too long for a custom_id), cards as embeds with their buttons
// labelled by card, an image embed, a file as a link, channel data
// merged; discordgo reads it.
func TestRichGolden(t *testing.T) {
	a := New(Config{})
	req := signed(t, golden.Read(t, "command_options.json"), "1700000000")
	ev, resp := golden.Turn(t, a, req, func(ev *msg.Event) *msg.TurnResult {
		return golden.Handled(ev, "Menu", msg.Reply{
			Text:    "Here is our menu",
			Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Website", URL: "https://example.com"}},
			Cards: []msg.Card{
				{Title: "Margherita", Subtitle: "Tomato, mozzarella", Image: "https://example.com/m.jpg",
					Buttons: []msg.Button{{Title: "Add", Payload: "add:margherita"}}},
				{Title: "Diavola", Buttons: []msg.Button{{Title: "Add", Payload: strings.Repeat("x", 150)}}},
			},
			Media: []msg.Media{{Type: msg.MediaImage, URL: "https://example.com/menu.png", Caption: "Menu"},
				{Type: msg.MediaFile, URL: "https://example.com/menu.pdf", Caption: "Menu (PDF)"}},
			ChannelData: map[string]json.RawMessage{"discord": json.RawMessage(`{"tts":false,"allowed_mentions":{"parse":[]}}`)},
		})
	})
	readWithDiscordgo(t, resp.Body)
	golden.Check(t, "rich", golden.Render(ev, resp))
}

// TestRichOverflow: past 25 buttons and 10 embeds, what does not fit is
// written under the text rather than left out.
func TestRichOverflow(t *testing.T) {
	var cards []msg.Card
	for i := range 14 {
		n := strconv.Itoa(i)
		cards = append(cards, msg.Card{Title: "Pizza " + n, Buttons: []msg.Button{{Title: "Add", Payload: "add:" + n},
			{Title: "More", Payload: "more:" + n}}})
	}
	r := NewResponse(&msg.TurnResult{Replies: []msg.Reply{{Text: "All our pizzas", Cards: cards}}})
	buttons := 0
	for _, row := range r.Data.Components {
		buttons += len(row.Components)
	}
	if len(r.Data.Embeds) != maxEmbeds || buttons != 25 || len(r.Data.Components) != maxRows {
		t.Fatalf("%d embeds, %d buttons in %d rows", len(r.Data.Embeds), buttons, len(r.Data.Components))
	}
	for _, want := range []string{"Pizza 13", "• More · Pizza 13", "• More · Pizza 12"} {
		if !strings.Contains(r.Data.Content, want) {
			t.Errorf("content lacks %q:\n%s", want, r.Data.Content)
		}
	}
}
