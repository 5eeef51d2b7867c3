package channels_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/msg"
)

// typedAdapter declares a boolean and a number setting.
type typedAdapter struct{}

func (typedAdapter) Name() string { return "typed" }
func (typedAdapter) Parse(*channels.Request) (*channels.Inbound, error) {
	return nil, nil
}
func (typedAdapter) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return nil, nil
}
func (typedAdapter) SettingKinds() map[string]channels.Kind {
	return map[string]channels.Kind{"verify": channels.KindBool, "id": channels.KindNumber}
}

func TestDecodeSettings(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: `{"verify": false, "id": 123456789012345678901, "token": "abc"}`, want: `{"id":"123456789012345678901","token":"abc","verify":"false"}`},
		{in: `{"verify": "TRUE", "id": "42"}`, want: `{"id":"42","verify":"true"}`},
		{in: `{"verify": "abc"}`, err: `setting "verify": want a boolean, got "abc"`},
		{in: `{"verify": 1}`, err: `setting "verify": want a boolean, got 1`},
		{in: `{"id": "abc"}`, err: `setting "id": want a number, got "abc"`},
		{in: `{"id": true}`, err: `setting "id": want a number, got true`},
		{in: `{"token": true}`, err: `setting "token": want a string, got true`},
		{in: `{"token": 12}`, err: `setting "token": want a string, got 12`},
		{in: `{"token": null}`, err: `setting "token": want a string, got null`},
		{in: `{"token": {"a": 1}}`, err: `setting "token": want a string`},
	} {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.in), &raw); err != nil {
			t.Fatal(err)
		}
		got, err := channels.DecodeSettings(typedAdapter{}, raw)
		if tc.err != "" {
			var ce *channels.Error
			if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want a 400 with %q", tc.in, err, tc.err)
			}
			continue
		}
		out, _ := json.Marshal(got)
		if err != nil || string(out) != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.in, out, err, tc.want)
		}
	}
}
