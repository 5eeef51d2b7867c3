package bots

import "testing"

func TestLimitSettings(t *testing.T) {
	var zero Settings
	if zero.ConcurrentTurns() != 32 || zero.SessionBytes() != 64<<10 || zero.ReplyBytes() != 64<<10 ||
		zero.HTTPCalls() != 10 || zero.BusyText() != DefaultBusyReply {
		t.Errorf("defaults: %d %d %d %d %q", zero.ConcurrentTurns(), zero.SessionBytes(), zero.ReplyBytes(), zero.HTTPCalls(), zero.BusyText())
	}
	set := Settings{MaxConcurrentTurns: 2, MaxSessionBytes: 100, MaxReplyBytes: 200, MaxHTTPCalls: 3, BusyReply: "busy"}
	if set.ConcurrentTurns() != 2 || set.SessionBytes() != 100 || set.ReplyBytes() != 200 || set.HTTPCalls() != 3 || set.BusyText() != "busy" {
		t.Errorf("set values not used: %+v", set)
	}
	for _, ok := range []Settings{
		set,
		{HTTPAllow: []string{"api.example.com", "API.example.com:8443", "*.example.com", "127.0.0.1", "127.0.0.1:8080", "[::1]:80", "localhost"}},
		{MaxConcurrentTurns: 10000, MaxSessionBytes: 1 << 20, MaxReplyBytes: 1 << 20, MaxHTTPCalls: 100},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []Settings{
		{MaxConcurrentTurns: -1}, {MaxConcurrentTurns: 10001},
		{MaxSessionBytes: 1<<20 + 1}, {MaxReplyBytes: -5}, {MaxHTTPCalls: 101},
		{HTTPAllow: []string{"http://api.example.com"}}, {HTTPAllow: []string{"api.example.com/path"}},
		{HTTPAllow: []string{"*"}}, {HTTPAllow: []string{""}}, {HTTPAllow: make([]string, 65)},
		{BusyReply: string(make([]byte, 4097))},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
