package botdir

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/scheduler"
	"go.yaml.in/yaml/v3"
)

// File is bot.yaml: a bot's name, settings, channels, NLU data and
// schedules. Every key must be one Parley knows; a misspelt one is an error
// with its line, never ignored.
type File struct {
	Name string
	// Settings are the bot's settings as the API takes them; nil when
	// bot.yaml has no settings section, which leaves a deployed bot's
	// settings as they are.
	Settings json.RawMessage
	// Channels are each channel's settings, with ${VAR} references in its
	// secret settings replaced from the environment.
	Channels map[string]map[string]string
	// NLU is the classifier's training data: in bot.yaml either the API's
	// shape (intents, slots, threshold) or, for short, just the intents'
	// examples by intent name.
	NLU *bots.NLU
	// Schedules are cron triggers by name, in the API's JSON shape.
	Schedules map[string]map[string]any
}

// botFileParser reads one bot.yaml.
type botFileParser struct {
	path string
	env  func(name string) (string, bool)
	// secrets names each channel's secret settings, the only ones that
	// take ${VAR} references.
	secrets map[string][]string
	// keepVars leaves ${VAR} references in secret settings unexpanded
	// (still refusing them elsewhere).
	keepVars bool
}

// lineError is a problem at a line of bot.yaml.
func (p *botFileParser) lineError(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.path, n.Line, fmt.Sprintf(format, args...))
}

// varRef is an environment variable reference in bot.yaml.
var varRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// parse reads bot.yaml's text.
func (p *botFileParser) parse(raw []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a mapping with name, settings, channels, nlu and schedules", p.path)
	}
	var b File
	err := p.eachKey(doc.Content[0], func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			if err = p.noVars(v); err == nil {
				err = p.decode(v, &b.Name)
			}
		case "settings":
			b.Settings, err = p.settings(v)
		case "channels":
			b.Channels, err = p.channels(v)
		case "nlu":
			b.NLU, err = p.nlu(v)
		case "schedules":
			b.Schedules, err = p.schedules(v)
		default:
			err = p.lineError(k, "unknown field %q (known: name, settings, channels, nlu, schedules)", key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := bots.ValidateBotName(b.Name); err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	return &b, nil
}

// eachKey calls fn with each key of a mapping; duplicate keys are an error.
func (p *botFileParser) eachKey(n *yaml.Node, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.lineError(n, "want a mapping")
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.lineError(k, "a key must be a plain name")
		}
		if seen[k.Value] {
			return p.lineError(k, "%q is given twice", k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// decode decodes a node, with the file and line in its error.
func (p *botFileParser) decode(n *yaml.Node, v any) error {
	if err := n.Decode(v); err != nil {
		return p.lineError(n, "%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return nil
}

// settings converts the settings section to the API's JSON, checking each
// setting's name and type. Values are taken as written (timeout_ms: 1000
// is the number 1000, display_name: 2048 the text "2048").
func (p *botFileParser) settings(n *yaml.Node) (json.RawMessage, error) {
	if err := p.noVars(n); err != nil {
		return nil, err
	}
	if n.Tag == "!!null" {
		return json.RawMessage("{}"), nil
	}
	out := make(map[string]any)
	err := p.eachKey(n, func(key string, k, v *yaml.Node) error {
		var val any
		switch {
		case v.Tag == "!!null":
		case v.Kind == yaml.ScalarNode:
			val = v.Value
		case v.Kind == yaml.SequenceNode:
			list := make([]any, 0, len(v.Content))
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return p.lineError(item, "setting %q: want a list of strings", key)
				}
				list = append(list, item.Value)
			}
			val = list
		default:
			val = map[string]any{}
		}
		one, _ := json.Marshal(map[string]any{key: val})
		if _, err := bots.ParseSettings(one); err != nil {
			return p.lineError(k, "%v", err)
		}
		out[key] = val
		return nil
	})
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(out)
	s, err := bots.ParseSettings(raw)
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		return nil, p.lineError(n, "settings: %v", err)
	}
	return raw, nil
}

// channels reads each channel's settings as text, replacing ${VAR} in
// secret settings from the environment.
func (p *botFileParser) channels(n *yaml.Node) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string)
	err := p.eachKey(n, func(channel string, k, v *yaml.Node) error {
		secrets, known := p.secrets[channel]
		if !known {
			return p.lineError(k, "unknown channel %q (known: %s)", channel, strings.Join(slices.Sorted(maps.Keys(p.secrets)), ", "))
		}
		settings := make(map[string]string)
		out[channel] = settings
		return p.eachKey(v, func(name string, _, v *yaml.Node) error {
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return p.lineError(v, "channel %s setting %q: want a value (text, a number or true/false)", channel, name)
			}
			val, err := p.expand(v, channel, name, slices.Contains(secrets, name))
			settings[name] = val
			return err
		})
	})
	return out, err
}

// expand replaces ${VAR} references in a secret setting with the
// environment's values. A reference anywhere else, to an unset variable, or
// to one of Parley's own PARLEY_* variables is an error.
func (p *botFileParser) expand(n *yaml.Node, channel, setting string, secret bool) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := ref[2 : len(ref)-1]
		switch {
		case err != nil:
		case !secret:
			err = p.lineError(n, "channel %s setting %q: ${%s} is not expanded: environment variables are only read into secret settings (tokens, secrets, keys)", channel, setting, name)
		case p.keepVars:
		case strings.HasPrefix(name, "PARLEY_"):
			err = p.lineError(n, "channel %s setting %q: ${%s} is not expanded: Parley's own PARLEY_* variables never are", channel, setting, name)
		default:
			val, ok := p.env(name)
			if !ok {
				err = p.lineError(n, "channel %s setting %q: environment variable %s is not set", channel, setting, name)
			}
			return val
		}
		return ref
	})
	return out, err
}

// noVars refuses ${VAR} references under n: only secret channel settings
// take them.
func (p *botFileParser) noVars(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if m := varRef.FindStringSubmatch(n.Value); m != nil {
			return p.lineError(n, "${%s} is not expanded: environment variables are only read into secret channel settings (tokens, secrets, keys)", m[1])
		}
	}
	for _, c := range n.Content {
		if err := p.noVars(c); err != nil {
			return err
		}
	}
	return nil
}

// nlu reads the NLU section, in either of its shapes.
func (p *botFileParser) nlu(n *yaml.Node) (*bots.NLU, error) {
	if err := p.noVars(n); err != nil {
		return nil, err
	}
	full := false
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			full = full || n.Content[i].Value == "intents"
		}
	}
	var out bots.NLU
	if !full {
		return &out, p.decode(n, &out.Intents)
	}
	if err := p.known(n, reflect.TypeFor[bots.NLU]()); err != nil {
		return nil, err
	}
	var v any
	if err := p.decode(n, &v); err != nil {
		return nil, err
	}
	if err := remarshal(v, &out); err != nil {
		return nil, p.lineError(n, "nlu: %v", err)
	}
	return &out, nil
}

// schedules reads the schedules section, checking each schedule's fields.
func (p *botFileParser) schedules(n *yaml.Node) (map[string]map[string]any, error) {
	if err := p.noVars(n); err != nil {
		return nil, err
	}
	out := make(map[string]map[string]any)
	err := p.eachKey(n, func(name string, _, v *yaml.Node) error {
		if err := p.known(v, reflect.TypeFor[scheduler.Schedule]()); err != nil {
			return err
		}
		var sc map[string]any
		if err := p.decode(v, &sc); err != nil {
			return err
		}
		out[name] = sc
		return nil
	})
	return out, err
}

// known refuses mapping keys under n that are not JSON field names of t, for
// structs at any depth (through maps, slices and pointers).
func (p *botFileParser) known(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := make(map[string]reflect.Type, t.NumField())
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = t.Field(i).Type
			}
		}
		return p.eachKey(n, func(key string, k, v *yaml.Node) error {
			ft, ok := fields[key]
			if !ok {
				return p.lineError(k, "unknown field %q (known: %s)", key, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			return p.known(v, ft)
		})
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := p.known(n.Content[i], t.Elem()); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			if err := p.known(item, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}
