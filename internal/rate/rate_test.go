package rate

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
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
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if again, err := Parse(got.String()); err != nil || again != got {
			t.Errorf("Parse(%q.String()) = %v, %v", tc.in, again, err)
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
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error = %v; want one mentioning %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"100/s", "6000/m", "", "1/d", "0/s", "x/y", "99999999999999999999/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if s != "" && (r.Count < 1 || r.Count > MaxCount || r.Period < time.Second) {
			t.Fatalf("Parse(%q) = %v: out of range", s, r)
		}
	})
}
