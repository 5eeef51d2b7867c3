package bots

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// settingFields maps each setting's JSON name to its field index in
// [Settings].
var settingFields = func() map[string]int {
	t := reflect.TypeFor[Settings]()
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = i
	}
	return out
}()

// SettingNames lists the settings a bot has, sorted.
func SettingNames() []string { return slices.Sorted(maps.Keys(settingFields)) }

// ParseSettings reads settings from a JSON object strictly: an unknown
// name, or a value of the wrong type, is a *ValidationError naming the
// setting ("setting \"timeout_ms\": want a number, got \"abc\"").
// Numbers may also come as strings holding them ("1000"); null leaves a
// setting at its default. The ranges are checked by [Settings.Validate].
func ParseSettings(data []byte) (Settings, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Settings{}, invalid("settings must be a JSON object of setting names and values")
	}
	var out Settings
	v := reflect.ValueOf(&out).Elem()
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		i, ok := settingFields[name]
		if !ok {
			return Settings{}, invalid("unknown setting %q (known: %s)", name, strings.Join(SettingNames(), ", "))
		}
		if err := setSetting(v.Field(i), name, bytes.TrimSpace(raw[name])); err != nil {
			return Settings{}, err
		}
	}
	return out, nil
}

// setSetting stores one JSON value in the field of the setting name.
func setSetting(f reflect.Value, name string, raw []byte) error {
	if string(raw) == "null" {
		return nil
	}
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Int: "a number",
		reflect.Float64: "a number", reflect.Slice: "a list of strings"}[f.Kind()]
	wrong := func() error {
		got := string(raw)
		if len(got) > 40 {
			got = got[:37] + "..."
		}
		return invalid("setting %q: want %s, got %s", name, want, got)
	}
	// text is the value as a string: a JSON string's content or a number's digits.
	text, isString := "", len(raw) > 0 && raw[0] == '"'
	if isString {
		if json.Unmarshal(raw, &text) != nil {
			return wrong()
		}
	} else if isNumber(string(raw)) {
		text = string(raw)
	}
	if f.Kind() == reflect.Int || f.Kind() == reflect.Float64 {
		text = strings.TrimSpace(text)
		if !isNumber(text) {
			return wrong()
		}
	}
	switch f.Kind() {
	case reflect.String:
		if !isString {
			return wrong()
		}
		f.SetString(text)
	case reflect.Int:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			// 1e3 and 1000.0 are whole numbers too.
			x, ferr := strconv.ParseFloat(text, 64)
			if ferr != nil || x != float64(int64(x)) || x > 1<<53 || x < -(1<<53) {
				want = "a whole number"
				return wrong()
			}
			n = int64(x)
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return wrong()
		}
		f.SetFloat(x)
	case reflect.Slice:
		var list []string
		if raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
			return wrong()
		}
		f.Set(reflect.ValueOf(list))
	default:
		return wrong()
	}
	return nil
}

// isNumber reports whether s is a JSON number literal.
func isNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}
