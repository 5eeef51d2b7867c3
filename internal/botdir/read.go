package botdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/sandbox"
)

// Bot is a bot directory, read and checked.
type Bot struct {
	File
	// Dir is the directory read.
	Dir string
	// Handlers are the intents' scripts, sorted by intent.
	Handlers []Handler
}

// Handler is one intent's script.
type Handler struct {
	// Intent is the intent's name: the file's name without .lua.
	Intent string
	// Path is the file's path, for messages.
	Path string
	// Source is the script.
	Source string
}

// Options configures Read.
type Options struct {
	// Env looks up the environment variables that ${VAR} references in
	// secret channel settings name; nil means none is set. A reference to a
	// variable it does not know is an error.
	Env func(name string) (string, bool)
	// Secrets names each channel kind's secret settings (the only ones that
	// take ${VAR} references); a channel kind it does not list is an error.
	Secrets map[string][]string
	// KeepVars leaves ${VAR} references in secret settings as they are
	// (still refusing them elsewhere), for readers that deploy no channels.
	KeepVars bool
}

// EnvOf is an Options.Env that reads environ, a list of "KEY=value".
func EnvOf(environ []string) func(string) (string, bool) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// Read reads and checks a bot directory: bot.yaml and intents/*.lua. Every
// script must compile, so a broken file fails before anything is deployed,
// with its file and line.
func Read(dir string, opts Options) (*Bot, error) {
	f, err := ReadFile(filepath.Join(dir, "bot.yaml"), opts)
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "intents", "*.lua"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no handlers: %s has no *.lua files", filepath.Join(dir, "intents"))
	}
	sort.Strings(paths)
	b := &Bot{File: *f, Dir: dir}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		intent := strings.TrimSuffix(filepath.Base(p), ".lua")
		if err := bots.ValidateIntentName(intent); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if _, err := sandbox.Compile(intent+".lua", string(src)); err != nil {
			var se *sandbox.ScriptError
			if errors.As(err, &se) && se.Line > 0 {
				return nil, fmt.Errorf("%s:%d: %s", p, se.Line, se.Message)
			}
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		b.Handlers = append(b.Handlers, Handler{Intent: intent, Path: p, Source: string(src)})
	}
	return b, nil
}

// ReadFile reads and checks a bot.yaml.
func ReadFile(path string, opts Options) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bot file: %w", err)
	}
	env := opts.Env
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	p := &botFileParser{path: path, env: env, secrets: opts.Secrets, keepVars: opts.KeepVars}
	return p.parse(raw)
}

// remarshal converts between two shapes through JSON; unknown fields are errors.
func remarshal(in, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}
