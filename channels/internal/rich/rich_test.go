package rich

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/msg"
)

// TestMergePatch follows the examples of RFC 7396, appendix A.
func TestMergePatch(t *testing.T) {
	for _, tt := range []struct{ doc, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		{`{"n":12345678901234567890}`, `{"m":1.5}`, `{"m":1.5,"n":12345678901234567890}`},
		{`{"t":"<b>&"}`, `{}`, `{"t":"<b>&"}`},
	} {
		got, err := MergePatch([]byte(tt.doc), []byte(tt.patch))
		if err != nil || string(got) != tt.want {
			t.Errorf("MergePatch(%s, %s) = %s, %v; want %s", tt.doc, tt.patch, got, err, tt.want)
		}
	}
	for _, bad := range []string{`[1]`, `"x"`, `null`, `{`, strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)} {
		if _, err := MergePatch([]byte(`{}`), []byte(bad)); err == nil {
			t.Errorf("patch %.20s accepted", bad)
		}
	}
}

func TestURLs(t *testing.T) {
	for u, want := range map[string][2]bool{
		"https://x.example/a.png": {true, true},
		"http://x.example/a.png":  {true, false},
		"ftp://x.example/a":       {false, false},
		"//x.example/a":           {false, false},
		"https://":                {false, false},
		"https://u:p@x.example/":  {false, false},
		"javascript:alert(1)":     {false, false},
		"":                        {false, false},
	} {
		if WebURL(u) != want[0] || HTTPS(u) != want[1] {
			t.Errorf("%q: WebURL %v HTTPS %v, want %v", u, WebURL(u), HTTPS(u), want)
		}
	}
}

func TestChoicesResolve(t *testing.T) {
	replies := []msg.Reply{{Buttons: []msg.Button{{Title: "Order", Payload: "ORDER"}, {Title: "Menu", URL: "https://x.example"}},
		Options: []string{"Help"},
		Cards:   []msg.Card{{Title: "Margherita", Buttons: []msg.Button{{Title: "Add to cart", Payload: "ADD_M"}}}}}}
	cs := Choices(replies)
	if len(cs) != 2 || cs[1].Payload != "ADD_M" {
		t.Fatalf("choices = %+v", cs)
	}
	for answer, want := range map[string]string{"1": "ORDER", " 2 ": "ADD_M", "two": "ADD_M", "Number one.": "ORDER",
		"order": "ORDER", "ADD TO  CART!": "ADD_M", "3": "", "menu": "", "help": "", "": ""} {
		if got, ok := Resolve(answer, cs); got != want || ok != (want != "") {
			t.Errorf("Resolve(%q) = %q, %v; want %q", answer, got, ok, want)
		}
	}
	if got := DecodeChoices(EncodeChoices(cs)); len(got) != 2 || got[0].Title != cs[0].Title || got[0].Payload != cs[0].Payload {
		t.Errorf("round trip = %+v", got)
	}
	if DecodeChoices("not json") != nil || EncodeChoices(nil) != "" {
		t.Error("empty choices")
	}
}

// TestChoicesAreUnique: buttons of the same title (an "Order" on every card)
// are told apart by their card, then by their place, so that a title
// answers one of them.
func TestChoicesAreUnique(t *testing.T) {
	order := func(p string) []msg.Button { return []msg.Button{{Title: "Order", Payload: p}} }
	replies := []msg.Reply{{Buttons: order("ANY"),
		Cards: []msg.Card{{Title: "Margherita", Buttons: order("M")}, {Title: "Diavola", Buttons: order("D")}, {Title: "Diavola", Buttons: order("D2")}}}}
	cs := Choices(replies)
	want := []string{"Order", "Order Margherita", "Order Diavola", "Order Diavola (2)"} // "Order" is everyone's label
	for i, c := range cs {
		if c.Title != want[i] {
			t.Errorf("choice %d = %q, want %q", i, c.Title, want[i])
		}
	}
	for answer, payload := range map[string]string{"order": "ANY", "Order Diavola": "D", "order diavola (2)": "D2", "4": "D2",
		"Order Margheri": "M", "Order Diavo": "", "Order Diavola (": "D"} {
		if got, _ := Resolve(answer, cs); got != payload {
			t.Errorf("Resolve(%q) = %q, want %q", answer, got, payload)
		}
	}
	if n, c, ok := Find(cs, msg.Button{Title: "Order", Payload: "D"}); !ok || n != 3 || c.Title != "Order Diavola" {
		t.Errorf("Find = %d %+v %v", n, c, ok)
	}
	if got := Spoken(cs[:2]); got != "Say 1 for Order, or 2 for Order Margherita." {
		t.Errorf("Spoken = %q", got)
	}
}

// TestChoicesNumberAsMsgChoices: the numbers Parley's choices are said or
// written with are those the engine resolves, a payload offered twice
// keeping its first place.
func TestChoicesNumberAsMsgChoices(t *testing.T) {
	replies := []msg.Reply{{Buttons: []msg.Button{{Title: "Order", Payload: "OrderPizza"}, {Title: "Site", URL: "https://x.example"}},
		Cards: []msg.Card{{Title: "Diavola", Buttons: []msg.Button{{Title: "Add", Payload: "add:d"}, {Title: "Order now", Payload: "OrderPizza"}}}}},
		{Buttons: []msg.Button{{Title: "Help", Payload: "Help"}}}}
	cs, want := Choices(replies), msg.Choices(replies)
	if len(cs) != len(want) {
		t.Fatalf("%d choices, msg.Choices has %d", len(cs), len(want))
	}
	for i := range cs {
		if cs[i].Payload != want[i] {
			t.Errorf("choice %d = %q, msg.Choices has %q", i+1, cs[i].Payload, want[i])
		}
	}
}

// FuzzMergePatch: any patch either fails with an error or gives a JSON
// object; nothing panics.
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"message":{"text":"hi","quick_replies":null}}`))
	f.Add([]byte(`{"a":{"b":{"c":[1,{"d":null}]}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, patch []byte) {
		out, err := MergePatch([]byte(`{"recipient":{"id":"1"},"message":{"text":"x"}}`), patch)
		if err == nil && (len(out) == 0 || out[0] != '{') {
			t.Fatalf("MergePatch(%q) = %q", patch, out)
		}
	})
}

// FuzzResolve: choices carried through a platform decode or are ignored,
// and any answer resolves to one of them or to nothing.
func FuzzResolve(f *testing.F) {
	f.Add(`[{"t":"Order Margherita","p":"ORDER_M","l":"Order"}]`, "order")
	f.Add(`[{"t":"a","p":"b"}]`, "1")
	f.Add(`{}`, "two")
	f.Fuzz(func(t *testing.T, carried, answer string) {
		cs := DecodeChoices(carried)
		p, ok := Resolve(answer, cs)
		if !ok {
			return
		}
		for _, c := range cs {
			if c.Payload == p {
				return
			}
		}
		t.Fatalf("Resolve(%q) = %q, not among %+v", answer, p, cs)
	})
}
