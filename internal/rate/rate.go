package rate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxCount is the largest count a [Rate] may have.
const MaxCount = 1_000_000

// Rate is a sustained rate of Count turns per Period, with bursts of up to
// Count turns at once. The zero Rate means no limit.
type Rate struct {
	// Count is how many turns fit in one Period.
	Count int
	// Period is one second, minute, hour or day.
	Period time.Duration
}

// periods are the units a rate may be written in.
var periods = map[string]time.Duration{
	"s": time.Second,
	"m": time.Minute,
	"h": time.Hour,
	"d": 24 * time.Hour,
}

// Parse parses a rate written as "count/unit" with unit s, m, h or d,
// e.g. "100/s" or "6000/m". The empty string is the zero Rate (no limit).
func Parse(s string) (Rate, error) {
	if s == "" {
		return Rate{}, nil
	}
	count, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	period, known := periods[strings.TrimSpace(unit)]
	if !ok || !known {
		return Rate{}, fmt.Errorf("rate %q must be a count per unit such as \"100/s\" or \"6000/m\" (units s, m, h, d)", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 1 || n > MaxCount {
		return Rate{}, fmt.Errorf("rate %q: the count must be a whole number between 1 and %d", s, MaxCount)
	}
	return Rate{Count: n, Period: period}, nil
}

// IsZero reports whether r is no limit.
func (r Rate) IsZero() bool { return r.Count <= 0 || r.Period <= 0 }

// String is r as [Parse] reads it.
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	for unit, p := range periods {
		if p == r.Period {
			return strconv.Itoa(r.Count) + "/" + unit
		}
	}
	return strconv.Itoa(r.Count) + "/" + r.Period.String()
}

// Limits are the rates one turn is checked against.
type Limits struct {
	// Bot limits all turns of the bot together; zero means no limit.
	Bot Rate
	// Conversation limits the turns of one conversation; zero means no limit.
	Conversation Rate
}
