package convtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is one test file.
type File struct {
	// Path is the file's path as given.
	Path string
	// Tests are the file's tests, in order.
	Tests []*Test
}

// Test is one conversation test.
type Test struct {
	// Name identifies the test (--run matches it).
	Name string
	// File and Line are where the test starts.
	File string
	Line int
	// User is the sender of every turn (default "tester"); the
	// conversation is the user's, as on the web channel.
	User string
	// Channel is the channel kind the turns come from (default "web").
	Channel string
	// Locale is the events' locale; empty means none.
	Locale string
	// Now, when set, freezes the handlers' clock (os.time, os.date,
	// time.now) and the events' timestamps at this time.
	Now time.Time
	// HTTP are the answers of the http module: it answers these requests
	// and refuses every other.
	HTTP []*HTTPMock
	// Turns are the test's turns, in order.
	Turns []*Turn
}

// Where is the test's file and line.
func (t *Test) Where() string { return fmt.Sprintf("%s:%d", t.File, t.Line) }

// HTTPMock is one recorded answer of the http module.
type HTTPMock struct {
	// Method is GET (the default) or POST.
	Method string
	// URL is the request's URL, matched exactly.
	URL string
	// Status is the answer's status (default 200).
	Status int
	// Headers are the answer's headers.
	Headers map[string]string
	// Body is the answer's body; a mapping or list in the file is sent as JSON.
	Body string
	// Line is where the mock is written.
	Line int
}

// Turn is one user turn and what it must produce.
type Turn struct {
	// Line is where the turn is written.
	Line int
	// Say is what the user says; Postback, instead, the payload of a
	// button the user pressed (the event's Postback field).
	Say      string
	Postback string
	// The assertions; nil (or a nil map) checks nothing.
	Intent          *string
	Reply           *TextMatch
	Options         []string // with HasOptions: the quick replies, exactly
	HasOptions      bool
	Session         map[string]any
	Slots           map[string]any
	EndConversation *bool
	Outcome         *string
}

// Input describes what the turn sends, for messages.
func (t *Turn) Input() string {
	if t.Postback != "" {
		return fmt.Sprintf("postback %q", t.Postback)
	}
	return fmt.Sprintf("say %q", t.Say)
}

// TextMatch is a reply assertion: exact text, a substring or a regular
// expression.
type TextMatch struct {
	Exact    *string
	Contains *string
	Matches  *regexp.Regexp
}

// Match reports whether s satisfies m.
func (m *TextMatch) Match(s string) bool {
	switch {
	case m.Exact != nil:
		return s == *m.Exact
	case m.Contains != nil:
		return strings.Contains(s, *m.Contains)
	default:
		return m.Matches.MatchString(s)
	}
}

// Want describes m for reports.
func (m *TextMatch) Want() any {
	switch {
	case m.Exact != nil:
		return *m.Exact
	case m.Contains != nil:
		return map[string]string{"contains": *m.Contains}
	default:
		return map[string]string{"matches": m.Matches.String()}
	}
}

// Outcomes a turn may assert.
var outcomes = []string{"handled", "fallback", "error", "timeout"}

// SetupError is a problem with the tests or the bot, not a failing test:
// a file that cannot be read or parsed, an unknown key, a script that does
// not compile. parley test exits 2 for it.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

func setupErrorf(format string, args ...any) error {
	return &SetupError{Err: fmt.Errorf(format, args...)}
}

// ParseFile reads and parses one test file.
func ParseFile(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	return Parse(path, raw)
}

// Parse parses a test file's text; path names it in errors. Every problem
// is a *SetupError naming the file and line.
func Parse(path string, raw []byte) (*File, error) {
	p := parser{path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, setupErrorf("%s: %w", path, err)
	}
	f := &File{Path: path}
	if len(doc.Content) == 0 {
		return nil, setupErrorf("%s: no tests", path)
	}
	root := doc.Content[0]
	var items []*yaml.Node
	single := false
	switch {
	case root.Kind == yaml.SequenceNode:
		items = root.Content
	case root.Kind == yaml.MappingNode && hasKey(root, "tests"):
		err := p.eachKey(root, func(key string, k, v *yaml.Node) error {
			if key != "tests" {
				return p.errorf(k, "unknown key %q (a file holds tests: a list of tests, or is one test)", key)
			}
			if v.Kind != yaml.SequenceNode {
				return p.errorf(v, "tests: want a list of tests")
			}
			items = v.Content
			return nil
		})
		if err != nil {
			return nil, err
		}
	case root.Kind == yaml.MappingNode:
		items, single = []*yaml.Node{root}, true
	default:
		return nil, p.errorf(root, "want a list of tests, a mapping with tests, or one test")
	}
	if len(items) == 0 {
		return nil, p.errorf(root, "no tests")
	}
	seen := make(map[string]int)
	for _, n := range items {
		t, err := p.test(n, single)
		if err != nil {
			return nil, err
		}
		if line, dup := seen[t.Name]; dup {
			return nil, p.errorf(n, "test %q is already defined at line %d", t.Name, line)
		}
		seen[t.Name] = t.Line
		f.Tests = append(f.Tests, t)
	}
	return f, nil
}

// parser reads one test file's nodes.
type parser struct{ path string }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	return setupErrorf("%s:%d: %s", p.path, n.Line, fmt.Sprintf(format, args...))
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// eachKey calls fn with each key of a mapping; duplicate keys are errors.
func (p *parser) eachKey(n *yaml.Node, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errorf(n, "want a mapping")
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errorf(k, "a key must be a plain name")
		}
		if seen[k.Value] {
			return p.errorf(k, "%q is given twice", k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// unknown is the error for a key that is none of known.
func (p *parser) unknown(k *yaml.Node, what string, known []string) error {
	return p.errorf(k, "unknown key %q in a %s (known: %s)", k.Value, what, strings.Join(known, ", "))
}

// str reads a scalar as text.
func (p *parser) str(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errorf(n, "%s: want text", key)
	}
	return n.Value, nil
}

var (
	testKeys = []string{"name", "user", "channel", "locale", "now", "mocks", "turns"}
	turnKeys = []string{"say", "postback", "intent", "reply", "options", "session", "slots", "end_conversation", "outcome"}
	mockKeys = []string{"method", "url", "status", "headers", "body"}
)

func (p *parser) test(n *yaml.Node, single bool) (*Test, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, "a test must be a mapping with %s", strings.Join(testKeys, ", "))
	}
	t := &Test{File: p.path, Line: n.Line, User: "tester", Channel: "web"}
	var turns *yaml.Node
	err := p.eachKey(n, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			t.Name, err = p.str(v, key)
		case "user":
			t.User, err = p.str(v, key)
			if err == nil && (t.User == "" || len(t.User) > 256) {
				err = p.errorf(v, "user: want 1 to 256 characters")
			}
		case "channel":
			t.Channel, err = p.str(v, key)
		case "locale":
			t.Locale, err = p.str(v, key)
		case "now":
			var s string
			if s, err = p.str(v, key); err == nil {
				t.Now, err = parseNow(s)
				if err != nil {
					err = p.errorf(v, "now: %v", err)
				}
			}
		case "mocks":
			t.HTTP, err = p.mocks(v)
		case "turns":
			turns = v
		default:
			err = p.unknown(k, "test", testKeys)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if t.Name == "" {
		if !single {
			return nil, p.errorf(n, "the test has no name")
		}
		t.Name = strings.TrimSuffix(filepath.Base(p.path), filepath.Ext(p.path))
	}
	if turns == nil || turns.Kind != yaml.SequenceNode || len(turns.Content) == 0 {
		return nil, p.errorf(n, "test %q: want turns, a list of at least one turn", t.Name)
	}
	for _, tn := range turns.Content {
		turn, err := p.turn(tn)
		if err != nil {
			return nil, err
		}
		t.Turns = append(t.Turns, turn)
	}
	return t, nil
}

// parseNow reads a test's frozen time: RFC 3339, or a date and time
// without a zone (UTC), or a date (midnight UTC).
func parseNow(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateTime, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339, such as 2026-12-01T10:00:00Z)", s)
}

func (p *parser) mocks(n *yaml.Node) ([]*HTTPMock, error) {
	var out []*HTTPMock
	err := p.eachKey(n, func(key string, k, v *yaml.Node) error {
		if key != "http" {
			return p.unknown(k, "mocks section", []string{"http"})
		}
		if v.Kind != yaml.SequenceNode {
			return p.errorf(v, "mocks.http: want a list of requests and their answers")
		}
		for _, mn := range v.Content {
			m, err := p.mock(mn)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

func (p *parser) mock(n *yaml.Node) (*HTTPMock, error) {
	m := &HTTPMock{Method: http.MethodGet, Status: http.StatusOK, Line: n.Line}
	err := p.eachKey(n, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "method":
			if m.Method, err = p.str(v, key); err == nil {
				m.Method = strings.ToUpper(m.Method)
				if m.Method != http.MethodGet && m.Method != http.MethodPost {
					err = p.errorf(v, "method: the http module sends GET and POST only")
				}
			}
		case "url":
			m.URL, err = p.str(v, key)
		case "status":
			if err = v.Decode(&m.Status); err != nil || m.Status < 100 || m.Status > 599 {
				err = p.errorf(v, "status: want an HTTP status, 100 to 599")
			}
		case "headers":
			if err = v.Decode(&m.Headers); err != nil {
				err = p.errorf(v, "headers: want a mapping of names to values")
			}
		case "body":
			m.Body, err = p.body(v)
		default:
			err = p.unknown(k, "mock", mockKeys)
		}
		return err
	})
	if err == nil && m.URL == "" {
		err = p.errorf(n, "a mock needs a url")
	}
	return m, err
}

// body reads a mock's body: text as is, a mapping or list as JSON.
func (p *parser) body(n *yaml.Node) (string, error) {
	if n.Kind == yaml.ScalarNode {
		return n.Value, nil
	}
	v, err := p.value(n)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "", p.errorf(n, "body: %v", err)
	}
	return string(raw), nil
}

func (p *parser) turn(n *yaml.Node) (*Turn, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, "a turn must be a mapping with say (or postback) and what to check")
	}
	t := &Turn{Line: n.Line}
	hasSay, hasPostback := false, false
	err := p.eachKey(n, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "say":
			hasSay = true
			t.Say, err = p.str(v, key)
		case "postback":
			hasPostback = true
			t.Postback, err = p.str(v, key)
		case "intent":
			var s string
			if v.Tag == "!!null" {
				t.Intent = &s // no handler ran
			} else if s, err = p.str(v, key); err == nil {
				t.Intent = &s
			}
		case "reply":
			t.Reply, err = p.reply(v)
		case "options":
			t.HasOptions = true
			t.Options = []string{}
			if v.Kind != yaml.SequenceNode {
				return p.errorf(v, "options: want a list of texts")
			}
			for _, o := range v.Content {
				s, err := p.str(o, "options")
				if err != nil {
					return err
				}
				t.Options = append(t.Options, s)
			}
		case "session":
			t.Session, err = p.mapping(v, key)
		case "slots":
			t.Slots, err = p.mapping(v, key)
			for name, val := range t.Slots {
				if _, ok := val.(string); !ok && val != nil && err == nil {
					err = p.errorf(v, "slots: slot %q: want its value as text, or null for no value", name)
				}
			}
		case "end_conversation":
			var b bool
			if err = v.Decode(&b); err != nil {
				err = p.errorf(v, "end_conversation: want true or false")
			}
			t.EndConversation = &b
		case "outcome":
			var s string
			if s, err = p.str(v, key); err == nil {
				if !slices.Contains(outcomes, s) {
					err = p.errorf(v, "outcome: want one of %s", strings.Join(outcomes, ", "))
				}
				t.Outcome = &s
			}
		default:
			err = p.unknown(k, "turn", turnKeys)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case hasSay == hasPostback:
		return nil, p.errorf(n, "a turn needs say or postback (one of them)")
	case hasSay && t.Say == "":
		return nil, p.errorf(n, "say: want text")
	case hasPostback && t.Postback == "":
		return nil, p.errorf(n, "postback: want a payload")
	}
	return t, nil
}

// reply reads a reply assertion: text, {contains: text} or {matches: regex}.
func (p *parser) reply(n *yaml.Node) (*TextMatch, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		s := n.Value
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			s = strings.TrimSuffix(s, "\n") // a block's final line break is the block's, not the reply's
		}
		return &TextMatch{Exact: &s}, nil
	}
	m := &TextMatch{}
	count := 0
	err := p.eachKey(n, func(key string, k, v *yaml.Node) error {
		count++
		if key != "contains" && key != "matches" {
			return p.unknown(k, "reply", []string{"contains", "matches"})
		}
		s, err := p.str(v, "reply."+key)
		if err != nil {
			return err
		}
		switch key {
		case "contains":
			m.Contains = &s
		case "matches":
			re, err := regexp.Compile(s)
			if err != nil {
				return p.errorf(v, "reply.matches: %v", err)
			}
			m.Matches = re
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if count != 1 {
		return nil, p.errorf(n, "reply: want text, {contains: text} or {matches: regex}")
	}
	return m, nil
}

// mapping reads a mapping of values, as JSON would hold them.
func (p *parser) mapping(n *yaml.Node, key string) (map[string]any, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, "%s: want a mapping", key)
	}
	v, err := p.value(n)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// value decodes a node to the values JSON holds: maps with text keys,
// lists, text, float64 numbers, booleans and nil.
func (p *parser) value(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, p.errorf(n, "%v", err)
	}
	out, err := normalize(v)
	if err != nil {
		return nil, p.errorf(n, "%v", err)
	}
	return out, nil
}

// normalize turns v into the values encoding/json decodes to.
func normalize(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("not a JSON value: %w", err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// knownKeys lists the keys of every section, for the docs' test.
func knownKeys() map[string][]string {
	return map[string][]string{"test": testKeys, "turn": turnKeys, "mock": mockKeys}
}
