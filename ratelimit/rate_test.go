package ratelimit

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	good := []struct {
		in   string
		want Rate
	}{
		{"", Rate{}},
		{"100/s", Rate{100, time.Second}},
		{"6000/m", Rate{6000, time.Minute}},
		{" 10 / h ", Rate{10, time.Hour}},
		{"1/d", Rate{1, 24 * time.Hour}},
		{"1000000/s", Rate{MaxCount, time.Second}},
	}
	for _, tc := range good {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if again, err := ParseRate(got.String()); err != nil || again != got {
			t.Errorf("ParseRate(%q.String()) = %v, %v", tc.in, again, err)
		}
	}
	bad := map[string]string{
		"100":       "count per unit",
		"100/x":     "count per unit",
		"100/sec":   "count per unit",
		"/s":        "whole number",
		"0/s":       "whole number",
		"-5/m":      "whole number",
		"1.5/s":     "whole number",
		"1000001/s": "between 1 and 1000000",
	}
	for in, want := range bad {
		if _, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRate(%q) error = %v; want one mentioning %q", in, err, want)
		}
	}
}

func TestRateGCRA(t *testing.T) {
	interval, tolerance := Rate{100, time.Second}.gcra()
	if interval != 10_000 || tolerance != 1_000_000 {
		t.Errorf("100/s: interval %dµs, tolerance %dµs", interval, tolerance)
	}
	if interval, tolerance := (Rate{}).gcra(); interval != 0 || tolerance != 0 {
		t.Errorf("no limit: interval %d, tolerance %d", interval, tolerance)
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "6000/m", "", "1/d", "0/s", "x/y", "99999999999999999999/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if s != "" && (r.Count < 1 || r.Count > MaxCount || r.Period < time.Second) {
			t.Fatalf("ParseRate(%q) = %v: out of range", s, r)
		}
		if interval, _ := r.gcra(); !r.IsZero() && interval < 1 {
			t.Fatalf("ParseRate(%q): interval %d", s, interval)
		}
	})
}
