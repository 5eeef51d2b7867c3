package convtest

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/botdir"
)

// Report is the outcome of a run.
type Report struct {
	// Passed and Failed count the tests.
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	// Tests are the tests' results, in file and test order.
	Tests []*Result `json:"tests"`
	// Target is where the turns ran: "in-process", or the server's URL.
	Target string `json:"target"`
}

// Result is one test's outcome.
type Result struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Passed bool   `json:"passed"`
	// Failures are what did not hold, in turn order; a test that failed
	// stops at its first failing turn, as the turns after it depend on it.
	Failures []Failure `json:"failures"`
	// Notes say what of the test could not apply (against a server).
	Notes []string `json:"notes,omitempty"`
	// DurationMS is the test's time in milliseconds.
	DurationMS float64 `json:"duration_ms"`
}

// Failure is one assertion that did not hold.
type Failure struct {
	// Turn is the turn's number, counted from 1.
	Turn int `json:"turn"`
	// Field is what was checked: intent, reply, options, session, slots,
	// end_conversation, outcome, http (a request no mock answered), render
	// (the channel's adapter refused the reply) or turn (the turn did not
	// run at all).
	Field string `json:"field"`
	Want  any    `json:"want"`
	Got   any    `json:"got"`
	// Line is the turn's line, Input what it sent.
	Line  int    `json:"line"`
	Input string `json:"input"`
}

// observed is what one turn produced.
type observed struct {
	intent  string
	texts   []string
	options []string
	end     bool
	outcome string
	err     string // the handler's failure
	slots   map[string]string
	// session is the conversation's session after the turn; nil when it
	// has none (or it ended).
	session map[string]any
	// unmocked are http requests no mock answered; render is the channel
	// adapter's refusal of the reply.
	unmocked []string
	render   string
}

// target runs the turns of tests: in this process, or on a server.
type target interface {
	// begin prepares a test and names its conversation; notes say what of
	// the test does not apply.
	begin(ctx context.Context, bot *botdir.Bot, t *Test) (conv string, notes []string, err error)
	// turn runs one turn of t. An error means the turn did not run at all.
	turn(ctx context.Context, bot *botdir.Bot, t *Test, conv string, turn *Turn) (*observed, error)
	// name is the target, for the report.
	name() string
}

// RunOptions configures a run.
type RunOptions struct {
	// OnTest, when set, is told of each test as it starts (a progress
	// line).
	OnTest func(*Test)
	// OnResult, when set, is given each test's result as soon as it is known.
	OnResult func(*Result)
}

// run runs the suite's tests one after another on tg.
func run(ctx context.Context, tg target, s *Suite, opts RunOptions) (*Report, error) {
	r := &Report{Target: tg.name(), Tests: []*Result{}}
	for _, f := range s.Files {
		for _, t := range f.Tests {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			if opts.OnTest != nil {
				opts.OnTest(t)
			}
			res, err := runTest(ctx, tg, s.Bot, t)
			if err != nil {
				return r, err
			}
			r.Tests = append(r.Tests, res)
			if opts.OnResult != nil {
				opts.OnResult(res)
			}
			if res.Passed {
				r.Passed++
			} else {
				r.Failed++
			}
		}
	}
	return r, nil
}

func runTest(ctx context.Context, tg target, bot *botdir.Bot, t *Test) (*Result, error) {
	start := time.Now()
	res := &Result{Name: t.Name, File: t.File, Line: t.Line, Failures: []Failure{}}
	conv, notes, err := tg.begin(ctx, bot, t)
	if err != nil {
		return nil, fmt.Errorf("%s: test %q: %w", t.Where(), t.Name, err)
	}
	res.Notes = notes
	for i, turn := range t.Turns {
		o, err := tg.turn(ctx, bot, t, conv, turn)
		var fails []Failure
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fails = []Failure{{Field: "turn", Want: "the turn runs", Got: err.Error()}}
		} else {
			fails = check(turn, o)
		}
		for j := range fails {
			fails[j].Turn, fails[j].Line, fails[j].Input = i+1, turn.Line, turn.Input()
		}
		res.Failures = append(res.Failures, fails...)
		if len(fails) > 0 {
			break
		}
	}
	res.Passed = len(res.Failures) == 0
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// check compares what a turn produced with what it must.
func check(turn *Turn, o *observed) []Failure {
	var out []Failure
	fail := func(field string, want, got any) { out = append(out, Failure{Field: field, Want: want, Got: got}) }

	failed := o.outcome == "error" || o.outcome == "timeout"
	switch {
	case turn.Outcome != nil && *turn.Outcome != o.outcome:
		fail("outcome", *turn.Outcome, outcomeText(o))
	case turn.Outcome == nil && failed:
		// A failing handler fails the test unless the test expects it.
		fail("outcome", "handled or fallback", outcomeText(o))
	}
	if len(o.unmocked) > 0 {
		fail("http", "only mocked requests", "unmocked: "+strings.Join(o.unmocked, ", "))
	}
	if o.render != "" {
		fail("render", "the channel's adapter renders the reply", o.render)
	}
	if turn.Intent != nil && *turn.Intent != o.intent {
		fail("intent", *turn.Intent, o.intent)
	}
	if turn.Reply != nil {
		if got := strings.Join(o.texts, "\n"); !turn.Reply.Match(got) {
			fail("reply", turn.Reply.Want(), got)
		}
	}
	if turn.HasOptions && !slices.Equal(turn.Options, nonNil(o.options)) {
		fail("options", turn.Options, nonNil(o.options))
	}
	if turn.Session != nil {
		got, _ := normalize(o.session)
		if got == nil {
			got = map[string]any{} // no session: a session without keys
		}
		if !subset(turn.Session, got) {
			fail("session", turn.Session, project(got, turn.Session))
		}
	}
	if turn.Slots != nil {
		slots := make(map[string]any, len(o.slots))
		for k, v := range o.slots {
			slots[k] = v
		}
		if !subset(turn.Slots, slots) {
			fail("slots", turn.Slots, project(slots, turn.Slots))
		}
	}
	if turn.EndConversation != nil && *turn.EndConversation != o.end {
		fail("end_conversation", *turn.EndConversation, o.end)
	}
	return out
}

func outcomeText(o *observed) string {
	if o.err != "" {
		return o.outcome + ": " + o.err
	}
	return o.outcome
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// subset reports whether want holds in got: every key of a wanted mapping
// has its wanted value in got (recursively; null wants the key absent or
// null), and every other value is equal.
func subset(want, got any) bool {
	if isEmpty(want) && isEmpty(got) {
		return true // Lua has one empty table: {} and [] are the same session value
	}
	wm, ok := want.(map[string]any)
	if !ok {
		if want == nil {
			return got == nil
		}
		wl, ok := want.([]any)
		gl, ok2 := got.([]any)
		if ok && ok2 {
			if len(wl) != len(gl) {
				return false
			}
			for i := range wl {
				if !subset(wl[i], gl[i]) {
					return false
				}
			}
			return true
		}
		return reflect.DeepEqual(want, got)
	}
	gm, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, wv := range wm {
		if !subset(wv, gm[k]) {
			return false
		}
	}
	return true
}

// isEmpty reports whether v is an empty list or mapping.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// project is got cut to the keys of want, for reports: what a subset
// check compared.
func project(got, want any) any {
	wm, ok := want.(map[string]any)
	gm, ok2 := got.(map[string]any)
	if !ok || !ok2 {
		if ok && got == nil {
			return map[string]any{}
		}
		return got
	}
	out := make(map[string]any, len(wm))
	for _, k := range slices.Sorted(maps.Keys(wm)) {
		if gv, has := gm[k]; has {
			out[k] = project(gv, wm[k])
		}
	}
	return out
}
