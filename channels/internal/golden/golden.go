// Package golden compares channel adapters' normalized events and rendered
// responses with golden files, for the adapters' tests: testdata/<case>.json
// (or .form) is the request as the platform sends it, testdata/<case>.golden
// what Parley made of it. Run the tests with -update to rewrite the golden
// files after a deliberate change, and review the diff.
package golden

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/msg"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Render formats an event and a response as a golden file: the event as
// indented JSON (without the raw payload, which is the request itself), and
// the response's status, content type and body (JSON indented).
func Render(ev *msg.Event, resp *channels.Response) []byte {
	var b bytes.Buffer
	b.WriteString("-- event --\n")
	if ev == nil {
		b.WriteString("none\n")
	} else {
		e := *ev
		e.Raw = nil
		out, _ := json.MarshalIndent(e, "", "  ")
		b.Write(out)
		b.WriteByte('\n')
	}
	b.WriteString("-- response --\n")
	if resp == nil {
		b.WriteString("none\n")
		return b.Bytes()
	}
	fmt.Fprintf(&b, "status: %d\ncontent-type: %s\n\n", resp.Status, resp.ContentType)
	var pretty bytes.Buffer
	if json.Indent(&pretty, resp.Body, "", "  ") == nil {
		b.Write(pretty.Bytes())
	} else {
		b.Write(resp.Body)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// Check compares got with testdata/<name>.golden, or rewrites it with -update.
func Check(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Read returns testdata/<file>.
func Read(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Handled is the result of a handler of intent answering ev.
func Handled(ev *msg.Event, intent string, replies ...msg.Reply) *msg.TurnResult {
	r := &msg.TurnResult{Event: ev, Conversation: ev.Conversation, Outcome: msg.OutcomeHandled,
		Decision: msg.Decision{Intent: intent, Source: msg.SourcePlatform, Confidence: ev.Confidence},
		Replies:  replies}
	if ev.Intent != intent {
		r.Decision.Source = msg.SourceExpect
	}
	for _, rep := range replies {
		r.EndConversation = r.EndConversation || rep.EndConversation
	}
	return r
}

// Builtin is the engine's answer when the bot has no handler for ev: the
// built-in greeting or goodbye for lifecycle intents, the fallback text
// otherwise.
func Builtin(ev *msg.Event) *msg.TurnResult {
	r := &msg.TurnResult{Event: ev, Conversation: ev.Conversation, Outcome: msg.OutcomeFallback,
		Decision: msg.Decision{Source: msg.SourceBuiltin},
		Replies:  []msg.Reply{{Text: intents.DefaultFallbackText}}}
	if text, end, ok := intents.BuiltinAnswer(ev.Intent); ok {
		r.Outcome, r.EndConversation = msg.OutcomeHandled, end
		r.Replies = []msg.Reply{{Text: text}}
	}
	return r
}

// Failed is a turn whose handler of intent failed: the bot's error reply.
func Failed(ev *msg.Event, intent string, outcome msg.Outcome) *msg.TurnResult {
	return &msg.TurnResult{Event: ev, Conversation: ev.Conversation, Outcome: outcome,
		Decision: msg.Decision{Intent: intent, Source: msg.SourcePlatform},
		Replies:  []msg.Reply{{Text: "Sorry, something went wrong. Please try again."}}}
}

// Turn parses req with a, which must make exactly one event of it, and
// renders answer's result for that event: what a golden file shows of a
// synchronous turn.
func Turn(t *testing.T, a channels.Adapter, req *channels.Request,
	answer func(*msg.Event) *msg.TurnResult) (*msg.Event, *channels.Response) {
	t.Helper()
	in, err := a.Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Events) != 1 {
		t.Fatalf("got %d events, want 1", len(in.Events))
	}
	ev := in.Events[0]
	resp, err := a.Render(req, []*msg.TurnResult{answer(ev)})
	if err != nil {
		t.Fatal(err)
	}
	return ev, resp
}

// Fuzzing names what FuzzParse needs of an adapter's test.
type Fuzzing struct {
	// Seeds are testdata files: the platform's own requests.
	Seeds []string
	// Request makes the request of a body, signed as the platform would.
	Request func(body []byte) *channels.Request
	// TypedErrors requires every Parse error to be a *channels.Error.
	TypedErrors bool
	// Check looks at each event parsed, typically rendering an answer to
	// it; every event must have a conversation before that.
	Check func(t *testing.T, req *channels.Request, ev *msg.Event)
}

// FuzzParse fuzzes a's Parse with the requests z makes of random bodies.
func FuzzParse(f *testing.F, a channels.Adapter, z Fuzzing) {
	for _, file := range z.Seeds {
		f.Add(Read(f, file))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := z.Request(body)
		in, err := a.Parse(req)
		if err != nil {
			if ce := (*channels.Error)(nil); z.TypedErrors && !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *channels.Error", err)
			}
			return
		}
		for _, ev := range in.Events {
			if ev.Conversation == "" {
				t.Fatalf("event without a conversation: %+v", ev)
			}
			if z.Check != nil {
				z.Check(t, req, ev)
			}
		}
	})
}

// BenchmarkParse measures a's Parse of req.
func BenchmarkParse(b *testing.B, a channels.Adapter, req *channels.Request) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Parse(req); err != nil {
			b.Fatal(err)
		}
	}
}

// Files names the testdata files of cases, with the extension ext.
func Files(cases []string, ext string) []string {
	out := make([]string, len(cases))
	for i, c := range cases {
		out[i] = c + ext
	}
	return out
}
