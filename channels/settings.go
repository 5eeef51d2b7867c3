package channels

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// Kind is the type of value a channel setting means. Settings are stored
// as strings whatever their kind.
type Kind int

// Setting kinds.
const (
	// KindString is text: only a JSON string is accepted.
	KindString Kind = iota
	// KindBool is true or false: a JSON boolean or a string strconv.ParseBool
	// reads, stored as "true" or "false".
	KindBool
	// KindNumber is a number or a numeric id: a JSON number or a string
	// holding one, stored with the digits as given (ids longer than a
	// float64 keeps exactly stay exact).
	KindNumber
)

func (k Kind) String() string {
	switch k {
	case KindBool:
		return "a boolean"
	case KindNumber:
		return "a number"
	}
	return "a string"
}

// Typed is a [Configurer] with settings that are not plain text. Settings it
// does not name are [KindString].
type Typed interface {
	SettingKinds() map[string]Kind
}

// Kinds returns the kinds of a's settings that are not strings; nil when
// all are.
func Kinds(a Adapter) map[string]Kind {
	if t, ok := a.(Typed); ok {
		return t.SettingKinds()
	}
	return nil
}

// DecodeSettings reads a JSON object of a's settings: strings for text
// settings, and booleans or numbers (or strings holding them) where the
// setting means one, all kept in their string form. A value of the wrong
// type is a 400 [Error] naming the setting; unknown setting names are left
// to [Validate].
func DecodeSettings(a Adapter, raw map[string]json.RawMessage) (Settings, error) {
	kinds := Kinds(a)
	out := make(Settings, len(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		v, err := SettingValue(name, kinds[name], raw[name])
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// SettingValue converts one JSON value of a setting of kind k to its string
// form, or refuses it with an [Error] naming the setting.
func SettingValue(name string, k Kind, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	wrong := func() error {
		return BadRequest("setting %q: want %s, got %s", name, k, Quote(raw))
	}
	if len(raw) == 0 {
		return "", wrong()
	}
	var text string
	isString := raw[0] == '"'
	if isString {
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", wrong()
		}
	}
	switch k {
	case KindBool:
		switch {
		case string(raw) == "true" || string(raw) == "false":
			return string(raw), nil
		case isString:
			b, err := strconv.ParseBool(text)
			if err != nil {
				return "", wrong()
			}
			return strconv.FormatBool(b), nil
		}
	case KindNumber:
		if !isString && json.Valid(raw) && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
			return string(raw), nil
		}
		if isString {
			if _, err := strconv.ParseFloat(text, 64); err != nil {
				return "", wrong()
			}
			return text, nil
		}
	default:
		if isString {
			return text, nil
		}
	}
	return "", wrong()
}

// Quote shows a JSON value in an error message, cut to 40 bytes.
func Quote(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}
