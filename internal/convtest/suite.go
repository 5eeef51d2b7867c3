package convtest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/botdir"
)

// Suite is a bot directory and its tests.
type Suite struct {
	// Dir is the bot directory.
	Dir string
	// Bot is the bot, as bot.yaml and intents/ define it.
	Bot *botdir.Bot
	// Files are the test files of Dir/tests, sorted by name, with the
	// tests that were selected.
	Files []*File
}

// Tests counts the suite's tests.
func (s *Suite) Tests() int {
	n := 0
	for _, f := range s.Files {
		n += len(f.Tests)
	}
	return n
}

// LoadOptions configures Load.
type LoadOptions struct {
	// Env looks up the environment variables bot.yaml's secret channel
	// settings name. A variable it does not know gets a placeholder: tests
	// verify no webhook, so they need no real secret.
	Env func(name string) (string, bool)
	// Run, when set, selects the tests whose name it matches.
	Run *regexp.Regexp
}

// Load reads a bot directory and its tests (Dir/tests/*.yaml and *.yml).
// Every problem is a *SetupError with its file and line: a script that does
// not compile, a bot.yaml or test file that does not parse, an unknown key,
// a test for a channel the bot does not configure, or no test to run.
func Load(dir string, opts LoadOptions) (*Suite, error) {
	bot, err := readBot(dir, opts.Env)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, "tests", pattern))
		if err != nil {
			return nil, &SetupError{Err: err}
		}
		paths = append(paths, m...)
	}
	slices.Sort(paths)
	if len(paths) == 0 {
		return nil, setupErrorf("no tests: %s has no *.yaml files", filepath.Join(dir, "tests"))
	}
	s := &Suite{Dir: dir, Bot: bot}
	registry := app.ChannelSecrets()
	for _, p := range paths {
		f, err := ParseFile(p)
		if err != nil {
			return nil, err
		}
		kept := f.Tests[:0]
		for _, t := range f.Tests {
			if _, known := registry[t.Channel]; !known {
				return nil, setupErrorf("%s: test %q: unknown channel %q", t.Where(), t.Name, t.Channel)
			}
			if _, configured := bot.Channels[t.Channel]; !configured && t.Channel != "web" {
				return nil, setupErrorf("%s: test %q: channel %q is not configured in %s", t.Where(), t.Name, t.Channel,
					filepath.Join(dir, "bot.yaml"))
			}
			if opts.Run == nil || opts.Run.MatchString(t.Name) {
				kept = append(kept, t)
			}
		}
		if f.Tests = kept; len(kept) > 0 {
			s.Files = append(s.Files, f)
		}
	}
	if s.Tests() == 0 {
		return nil, setupErrorf("no tests match --run %q", opts.Run)
	}
	return s, nil
}

// readBot reads the bot directory, with placeholders for the secrets the
// environment does not hold.
func readBot(dir string, env func(string) (string, bool)) (*botdir.Bot, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	bot, err := botdir.Read(dir, botdir.Options{
		Env: func(name string) (string, bool) {
			if v, ok := env(name); ok {
				return v, true
			}
			return "parley-test-placeholder-" + name, true
		},
		Secrets: app.ChannelSecrets(),
	})
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	return bot, nil
}

// ParseRun compiles a --run pattern; an empty one selects every test.
func ParseRun(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("--run: %w", err)
	}
	return re, nil
}
