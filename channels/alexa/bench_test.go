package alexa

import (
	"testing"

	"github.com/parleyhq/parley/channels/internal/golden"
	"github.com/parleyhq/parley/msg"
)

// BenchmarkParseVerified is the cost of a verified request once the signing
// certificate is cached: the certificate URL check, the RSA-SHA256 signature
// over the body, the timestamp and skill id, and the JSON decoding.
func BenchmarkParseVerified(b *testing.B) {
	p := newPKI(b)
	a := p.adapter()
	req := p.signedRequest(b, golden.Read(b, "intent_entity_resolution.json"))
	if _, err := a.Parse(req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Parse(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender is the cost of answering a turn with an elicit-slot
// directive.
func BenchmarkRender(b *testing.B) {
	p := newPKI(b)
	a := p.adapter()
	req := p.signedRequest(b, golden.Read(b, "intent_entity_resolution.json"))
	in, err := a.Parse(req)
	if err != nil {
		b.Fatal(err)
	}
	r := []*msg.TurnResult{golden.Handled(in.Events[0], "OrderPizza",
		msg.Reply{Text: "A large one. Thin or thick crust?", Reprompt: "Thin or thick?", Expect: "crust"})}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Render(req, r); err != nil {
			b.Fatal(err)
		}
	}
}
