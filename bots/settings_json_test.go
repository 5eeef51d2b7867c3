package bots

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSettings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Settings
		err  string
	}{
		{in: `{}`},
		{in: `null`},
		{in: `{"timeout_ms": 500, "display_name": "Pizza"}`, want: Settings{TimeoutMS: 500, DisplayName: "Pizza"}},
		{in: `{"timeout_ms": "500"}`, want: Settings{TimeoutMS: 500}},
		{in: `{"timeout_ms": 1e3}`, want: Settings{TimeoutMS: 1000}},
		{in: `{"timeout_ms": null}`},
		{in: `{"nlu_threshold": 0.7}`, want: Settings{NLUThreshold: 0.7}},
		{in: `{"nlu_threshold": "0.7"}`, want: Settings{NLUThreshold: 0.7}},
		{in: `{"http_allow": ["api.example.com"]}`, want: Settings{HTTPAllow: []string{"api.example.com"}}},
		{in: `{"timeout_ms": "abc"}`, err: `setting "timeout_ms": want a number, got "abc"`},
		{in: `{"timeout_ms": true}`, err: `setting "timeout_ms": want a number, got true`},
		{in: `{"timeout_ms": 1.5}`, err: `setting "timeout_ms": want a whole number, got 1.5`},
		{in: `{"timeout_ms": "0x10"}`, err: `setting "timeout_ms": want a number`},
		{in: `{"nlu_threshold": "NaN"}`, err: `setting "nlu_threshold": want a number`},
		{in: `{"display_name": 2048}`, err: `setting "display_name": want a string, got 2048`},
		{in: `{"display_name": false}`, err: `setting "display_name": want a string, got false`},
		{in: `{"http_allow": "api.example.com"}`, err: `setting "http_allow": want a list of strings`},
		{in: `{"http_allow": [1]}`, err: `setting "http_allow": want a list of strings`},
		{in: `{"timout_ms": 5}`, err: `unknown setting "timout_ms"`},
		{in: `[1]`, err: `settings must be a JSON object`},
	} {
		got, err := ParseSettings([]byte(tc.in))
		if tc.err != "" {
			var ve *ValidationError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want a ValidationError with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestParseSettingsCoversEveryField: every field of Settings has a JSON name
// and a type ParseSettings reads, so a new setting cannot be silently refused.
func TestParseSettingsCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Settings]()
	if len(SettingNames()) != typ.NumField() {
		t.Fatalf("%d setting names for %d fields", len(SettingNames()), typ.NumField())
	}
	samples := map[reflect.Kind]string{reflect.String: `"x"`, reflect.Int: `1`, reflect.Float64: `0.5`, reflect.Slice: `["a.example"]`}
	for i := range typ.NumField() {
		name := SettingNames()[0]
		for n, idx := range settingFields {
			if idx == i {
				name = n
			}
		}
		sample, ok := samples[typ.Field(i).Type.Kind()]
		if !ok {
			t.Fatalf("setting %s has a type ParseSettings does not read: %s", name, typ.Field(i).Type)
		}
		s, err := ParseSettings([]byte(`{"` + name + `":` + sample + `}`))
		if err != nil || reflect.ValueOf(s).Field(i).IsZero() {
			t.Errorf("setting %s = %s: %+v, %v", name, sample, s, err)
		}
	}
}
