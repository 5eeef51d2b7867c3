package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidateReasons: a refused schedule says why.
func TestValidateReasons(t *testing.T) {
	for cron, want := range map[string]string{
		"TZ=0":                         `give the time zone in "timezone"`,
		"CRON_TZ=Europe/Berlin @daily": `give the time zone in "timezone"`,
		"@every 5s":                    "fires every 5s; the shortest interval is 1m0s",
		"0 0 30 2 *":                   "never fires",
		"every day":                    `cron "every day"`,
	} {
		err := (&Schedule{Cron: cron, Intent: "X"}).Validate("a")
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want a ValidationError with %q", cron, err, want)
		}
	}
	for _, cron := range []string{"@every 1m", "@every 90s", "* * * * *", "0 0 29 2 *", "0 9 1 * MON"} {
		if err := (&Schedule{Cron: cron, Intent: "X"}).Validate("a"); err != nil {
			t.Errorf("%q refused: %v", cron, err)
		}
	}
	err := (&Schedule{Cron: "@daily", Timezone: "Mars/Olympus", Intent: "X"}).Validate("a")
	if err == nil || !strings.Contains(err.Error(), `unknown timezone "Mars/Olympus"`) {
		t.Errorf("unknown zone: %v", err)
	}
}

// TestDayOfMonthOrDayOfWeek: with both restricted, a day matching either
// fires, as in cron(8).
func TestDayOfMonthOrDayOfWeek(t *testing.T) {
	spec, err := (&Schedule{Cron: "0 9 1 * MON", Intent: "X"}).spec()
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-01 is a Sunday (the 1st), 2026-03-02 a Monday.
	first := spec.Next(time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC))
	second := spec.Next(first)
	if !first.Equal(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) || !second.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("fires %v then %v; want Sunday 1 March and Monday 2 March", first, second)
	}
}

// TestPutRefusesIntentWithoutHandler: a schedule must name an intent the
// bot has a handler for; one whose handler was deleted later fails its runs
// instead of running the fallback.
func TestPutRefusesIntentWithoutHandler(t *testing.T) {
	f := newFixture(t)
	s := f.replica(t)
	_, err := s.Put(context.Background(), "b", "daily", Schedule{Cron: "@daily", Intent: "Nope"})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `bot b has no handler for intent "Nope"`) {
		t.Fatalf("put: %v", err)
	}

	if _, err := s.Put(context.Background(), "b", "hourly", Schedule{Cron: "@hourly", Intent: "News"}); err != nil {
		t.Fatal(err)
	}
	delete(s.cfg.Bots.(botSource)["b"].Handlers, "News")
	f.clock.add(time.Hour)
	f.check(t, s)
	if len(f.runner.events) != 0 {
		t.Fatalf("ran %d turns for an intent without a handler", len(f.runner.events))
	}
	runs, _ := s.Runs(context.Background(), "b", 1)
	if len(runs) != 1 || !strings.Contains(runs[0].Error, `no handler for intent "News"`) {
		t.Fatalf("runs = %+v", runs)
	}
}

// TestNextRun: the API's answers show the next fire time, in UTC; a paused
// schedule has none, and none is stored.
func TestNextRun(t *testing.T) {
	f := newFixture(t) // the clock is at 2026-03-02 08:00 UTC, a Monday
	s := f.replica(t)
	ctx := context.Background()
	saved, err := s.Put(ctx, "b", "morning", Schedule{Cron: "30 9 * * *", Timezone: "Europe/Berlin", Intent: "X",
		NextRun: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC) // 09:30 in Berlin (UTC+1)
	if !saved.NextRun.Equal(want) {
		t.Fatalf("put: next run %v, want %v", saved.NextRun, want)
	}
	got, _ := s.Get(ctx, "b", "morning")
	list, _ := s.List(ctx, "b")
	if !got.NextRun.Equal(want) || !list["morning"].NextRun.Equal(want) {
		t.Fatalf("get %v, list %v; want %v", got.NextRun, list["morning"].NextRun, want)
	}
	stored, _ := s.list(ctx, "b")
	if !stored["morning"].NextRun.IsZero() {
		t.Fatalf("next run stored: %v", stored["morning"].NextRun)
	}
	paused, _ := s.Put(ctx, "b", "paused", Schedule{Cron: "@daily", Intent: "X", Disabled: true})
	if !paused.NextRun.IsZero() {
		t.Fatalf("paused schedule has a next run: %v", paused.NextRun)
	}
}

// FuzzScheduleSpec: no cron expression or time zone makes validation panic,
// and an accepted one fires, in the future, at most once a DefaultMinInterval.
func FuzzScheduleSpec(f *testing.F) {
	for _, seed := range []string{"0 9 * * MON-FRI", "@daily", "@every 10m", "TZ=0", "TZ=", "CRON_TZ=", "TZ=UTC * * * * *",
		"@every 5s", "0 0 30 2 *", "*/0 * * * *", "1-0 * * * *", "@every -1m", "@every 1000000h", "0 0 ? * L", "60 * * * *"} {
		f.Add(seed, "")
		f.Add(seed, "Europe/Berlin")
	}
	f.Add("@hourly", "Local")
	f.Add("@hourly", "../../etc/passwd")
	from := time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC) // a DST change in Europe
	f.Fuzz(func(t *testing.T, cron, zone string) {
		sc := Schedule{Cron: cron, Timezone: zone, Intent: "X"}
		if sc.Validate("fuzz") != nil {
			return
		}
		spec, err := sc.spec()
		if err != nil {
			t.Fatalf("valid but no spec: %v", err)
		}
		next := spec.Next(from)
		if next.IsZero() {
			return // fires only in years past the search (29 February on a Monday)
		}
		if !next.After(from) {
			t.Fatalf("%q: next %v is not after %v", cron, next, from)
		}
		if after := spec.Next(next); !after.IsZero() && after.Sub(next) < DefaultMinInterval {
			t.Fatalf("%q: fires %v then %v", cron, next, after)
		}
	})
}
