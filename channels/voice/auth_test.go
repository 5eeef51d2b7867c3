package voice

import (
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/channels"
)

func TestValidateAuth(t *testing.T) {
	good := []channels.Settings{
		{"username": "dialogflow", "password": "a-long-password"},
		{"header_name": "X-Parley-Secret", "header_value": "a-long-secret-value"},
	}
	for _, s := range good {
		if err := ValidateAuth("dialogflow", s); err != nil {
			t.Errorf("ValidateAuth(%v) = %v", s, err)
		}
	}
	bad := []channels.Settings{
		{},
		{"username": "u", "password": "short"},
		{"username": "a:b", "password": "a-long-password"},
		{"password": "a-long-password"},
		{"header_name": "X Bad", "header_value": "a-long-secret-value"},
		{"header_name": "X-Secret", "header_value": "short"},
		{"username": "u", "password": "a-long-password", "header_name": "X-Secret", "header_value": "a-long-secret-value"},
	}
	for _, s := range bad {
		if err := ValidateAuth("dialogflow", s); err == nil {
			t.Errorf("ValidateAuth(%v) accepted", s)
		}
	}
	if err := channels.CheckSettingNames("lex", channels.Settings{"usernme": "x"}, SettingUsername); err == nil {
		t.Error("a misspelt setting was accepted")
	}
}

func TestCheckAuth(t *testing.T) {
	basic := channels.Settings{"username": "dialogflow", "password": "a-long-password"}
	header := channels.Settings{"header_name": "X-Parley-Secret", "header_value": "a-long-secret-value"}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name string
		s    channels.Settings
		h    http.Header
		ok   bool
	}{
		{"basic ok", basic, http.Header{"Authorization": {"Basic " + b64("dialogflow:a-long-password")}}, true},
		{"basic scheme case", basic, http.Header{"Authorization": {"basic " + b64("dialogflow:a-long-password")}}, true},
		{"basic wrong password", basic, http.Header{"Authorization": {"Basic " + b64("dialogflow:wrong")}}, false},
		{"basic wrong user", basic, http.Header{"Authorization": {"Basic " + b64("other:a-long-password")}}, false},
		{"basic missing", basic, http.Header{}, false},
		{"basic bearer", basic, http.Header{"Authorization": {"Bearer a-long-password"}}, false},
		{"basic not base64", basic, http.Header{"Authorization": {"Basic !!!"}}, false},
		{"header ok", header, http.Header{"X-Parley-Secret": {"a-long-secret-value"}}, true},
		{"header wrong", header, http.Header{"X-Parley-Secret": {"a-long-secret-valuE"}}, false},
		{"header twice", header, http.Header{"X-Parley-Secret": {"a-long-secret-value", "x"}}, false},
		{"header missing", header, http.Header{}, false},
		{"nothing configured", channels.Settings{}, http.Header{"Authorization": {"Basic " + b64(":")}}, false},
	}
	for _, tt := range tests {
		err := CheckAuth("dialogflow", tt.s, tt.h)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckAuth = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if ce := (*channels.Error)(nil); err != nil && (!errors.As(err, &ce) || ce.Status != http.StatusUnauthorized) {
			t.Errorf("%s: %v is not a 401 channels.Error", tt.name, err)
		}
	}
}
