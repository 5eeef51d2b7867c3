package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestSettingTypes: the management API takes JSON booleans and numbers where
// a setting means one, keeps them in string form, and refuses a value of the
// wrong type with 400 naming the setting.
func TestSettingTypes(t *testing.T) {
	ta := startApp(t, appOptions{})
	u := ta.URL + "/v1/bots/typed"
	do(t, "PUT", u, adminKey, map[string]any{"timeout_ms": 800}).must(t, http.StatusCreated)

	r := do(t, "PUT", u+"/channels/alexa", adminKey, `{"skill_id": "amzn1.ask.skill.0123", "verify_signature": false}`).must(t, http.StatusOK)
	if r.Body["settings"].(map[string]any)["verify_signature"] != "false" {
		t.Fatalf("alexa settings = %s", r.Raw)
	}
	r = do(t, "PUT", u+"/channels/discord", adminKey, `{"public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "application_id": 1234567890123456789}`).must(t, http.StatusOK)
	if r.Body["settings"].(map[string]any)["application_id"] != "1234567890123456789" {
		t.Fatalf("discord settings = %s", r.Raw)
	}

	for _, tc := range []struct{ path, body, want string }{
		{"/channels/alexa", `{"skill_id": "amzn1.ask.skill.0123", "verify_signature": "abc"}`, `setting "verify_signature": want a boolean, got "abc"`},
		{"/channels/web", `{"token": 123456789012345}`, `setting "token": want a string, got 123456789012345`},
		{"", `{"timeout_ms": "abc"}`, `setting "timeout_ms": want a number, got "abc"`},
		{"", `{"display_name": true}`, `setting "display_name": want a string, got true`},
		{"", `{"timout_ms": 5}`, `unknown setting "timout_ms"`},
	} {
		r := do(t, "PUT", u+tc.path, adminKey, tc.body).must(t, http.StatusBadRequest)
		if msg := r.Body["error"].(map[string]any)["message"]; !strings.Contains(msg.(string), tc.want) {
			t.Errorf("PUT %s %s: %s; want %q", tc.path, tc.body, r.Raw, tc.want)
		}
	}
	// A refused update leaves the settings as they were.
	r = do(t, "GET", u, adminKey, nil).must(t, http.StatusOK)
	if r.Body["settings"].(map[string]any)["timeout_ms"] != float64(800) {
		t.Fatalf("settings after refused updates = %s", r.Raw)
	}
}
