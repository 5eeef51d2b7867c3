package bots

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPoolSettings(t *testing.T) {
	for _, ok := range []Settings{{}, {MinVMs: 2, MaxVMs: 4}, {MinVMs: 32}, {MaxVMs: 256}, {MinVMs: 3, MaxVMs: 3}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, tt := range []struct {
		s    Settings
		want string
	}{
		{Settings{MinVMs: -1}, "min_vms must be between 0 and 32"},
		{Settings{MinVMs: 33}, "min_vms must be between 0 and 32"},
		{Settings{MaxVMs: -1}, "max_vms must be between 1 and 256"},
		{Settings{MaxVMs: 257}, "max_vms must be between 1 and 256"},
		{Settings{MinVMs: 5, MaxVMs: 4}, "min_vms (5) must not be larger than max_vms (4)"},
	} {
		err := tt.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.s, err, tt.want)
		}
	}
	var s Settings
	if err := json.Unmarshal([]byte(`{"min_vms":1,"max_vms":8}`), &s); err != nil || s.MinVMs != 1 || s.MaxVMs != 8 {
		t.Errorf("decoded %+v, %v", s, err)
	}
}
