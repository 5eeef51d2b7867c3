package meta

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/channels"
)

func TestHandshake(t *testing.T) {
	get := func(method, q string) (*channels.Response, bool) {
		u, _ := url.Parse("/hooks/b/messenger?" + q)
		return Handshake(&channels.Request{Method: method, URL: u}, "meatyhamhock")
	}
	if r, ok := get(http.MethodGet, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock"); !ok ||
		r.Status != http.StatusOK || string(r.Body) != "1158201444" {
		t.Errorf("handshake = %+v", r)
	}
	if r, ok := get(http.MethodGet, "hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhocks"); !ok || r.Status != http.StatusForbidden {
		t.Errorf("wrong token = %+v", r)
	}
	if _, ok := get(http.MethodPost, "hub.mode=subscribe"); ok {
		t.Error("a POST is not a handshake")
	}
	u, _ := url.Parse("/?hub.mode=subscribe&hub.challenge=1&hub.verify_token=")
	if r, _ := Handshake(&channels.Request{Method: http.MethodGet, URL: u}, ""); r.Status != http.StatusForbidden {
		t.Error("an unset verify token must never match")
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{{"hello", 10, "hello"}, {"hello", 3, "hel"}, {"größer", 3, "grö"}, {"🍕🍕", 1, "🍕"}, {"x", 0, ""}} {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q", tt.s, tt.n, got)
		}
	}
}

func TestCheckSettings(t *testing.T) {
	ok := channels.Settings{SettingAppSecret: "s", SettingVerifyToken: "v", SettingAccessToken: "t"}
	if err := CheckSettings("messenger", ok, nil); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"ftp://x", "https://user:pw@graph.example", "https://graph.example/?a=1", "graph.example"} {
		s := channels.Settings{SettingAppSecret: "s", SettingVerifyToken: "v", SettingAccessToken: "t", SettingAPIBaseURL: base}
		if CheckSettings("messenger", s, nil) == nil {
			t.Errorf("api_base_url %q accepted", base)
		}
	}
	if CheckSettings("whatsapp", ok, []string{"phone_number_id"}) == nil {
		t.Error("a missing extra setting was accepted")
	}
}
