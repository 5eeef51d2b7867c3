package scheduler

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/netresearch/go-cron"
)

// Missed-run policies.
const (
	// MissedRunLate runs a fire time missed during an outage as soon as a
	// replica is back (once, however many were missed).
	MissedRunLate = "run_late"
	// MissedSkip drops fire times older than the grace period.
	MissedSkip = "skip"
)

// Target is one conversation a schedule runs in and pushes its reply to.
type Target struct {
	// Channel must be a channel the bot has connected that can push messages.
	Channel string `json:"channel"`
	// Conversation is the platform's conversation id (chat id, phone, PSID...).
	Conversation string `json:"conversation"`
	// User is the platform user id; it defaults to Conversation.
	User string `json:"user,omitempty"`
}

// Schedule is one cron trigger of a bot.
type Schedule struct {
	// Cron is a standard five-field cron expression ("0 9 * * MON-FRI") or a
	// descriptor such as "@hourly" or "@every 10m".
	Cron string `json:"cron"`
	// Timezone is an IANA zone name for the expression (default UTC).
	Timezone string `json:"timezone,omitempty"`
	// Intent is the handler to run.
	Intent string `json:"intent"`
	// Missed is "run_late" (default) or "skip".
	Missed string `json:"missed,omitempty"`
	// Targets are the conversations to run in; empty runs the handler once in
	// a conversation of its own ("schedule:<name>") with nothing pushed.
	Targets []Target `json:"targets,omitempty"`
	// Disabled pauses the schedule without deleting it.
	Disabled bool `json:"disabled,omitempty"`
	// Created is set when the schedule is first stored; fire times before it
	// are never run.
	Created time.Time `json:"created"`
	// NextRun is the schedule's next fire time after now, in UTC, in the
	// API's answers; unset for a paused schedule, and never stored.
	NextRun time.Time `json:"next_run,omitzero"`
}

// DefaultMinInterval is the shortest time between two runs of a schedule
// unless [Config.MinInterval] says otherwise.
const DefaultMinInterval = time.Minute

var (
	// parser reads standard five-field expressions and descriptors, with a
	// restricted day of month OR day of week matching, as cron(8) does.
	parser       = cron.MustNewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom)
	scheduleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// MaxTargets bounds the conversations one schedule pushes to.
const MaxTargets = 1000

// ValidationError is a schedule the scheduler refuses.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

// HTTPStatus is 400.
func (e *ValidationError) HTTPStatus() int { return http.StatusBadRequest }

// ErrorCode is "invalid".
func (e *ValidationError) ErrorCode() string { return "invalid" }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the schedule and its name, with [DefaultMinInterval].
func (s *Schedule) Validate(name string) error { return s.validate(name, DefaultMinInterval) }

// validate checks the schedule and its name; it must fire, and at most once
// every minInterval.
func (s *Schedule) validate(name string, minInterval time.Duration) error {
	if !scheduleName.MatchString(name) {
		return invalid("schedule name %q must be 1-64 letters, digits, '_', '.' or '-'", name)
	}
	if s.Intent == "" {
		return invalid("schedule %s: \"intent\" is required", name)
	}
	spec, err := s.spec()
	if err != nil {
		return invalid("schedule %s: %v", name, err)
	}
	// Two consecutive fire times from a fixed instant show a schedule that
	// never fires (30 February) or fires too often (@every 5s).
	first := spec.Next(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if first.IsZero() {
		return invalid("schedule %s: cron %q never fires", name, s.Cron)
	}
	if second := spec.Next(first); !second.IsZero() && second.Sub(first) < minInterval {
		return invalid("schedule %s: cron %q fires every %s; the shortest interval is %s", name, s.Cron, second.Sub(first), minInterval)
	}
	switch s.Missed {
	case "", MissedRunLate, MissedSkip:
	default:
		return invalid("schedule %s: \"missed\" must be %q or %q", name, MissedRunLate, MissedSkip)
	}
	if len(s.Targets) > MaxTargets {
		return invalid("schedule %s: at most %d targets", name, MaxTargets)
	}
	for i, t := range s.Targets {
		if t.Channel == "" || t.Conversation == "" {
			return invalid("schedule %s: target %d needs \"channel\" and \"conversation\"", name, i)
		}
	}
	return nil
}

// spec parses the cron expression in the schedule's time zone.
func (s *Schedule) spec() (sched cron.Schedule, err error) {
	loc := time.UTC
	if s.Timezone != "" {
		if loc, err = time.LoadLocation(s.Timezone); err != nil {
			return nil, fmt.Errorf("unknown timezone %q", s.Timezone)
		}
	}
	expr := strings.TrimSpace(s.Cron)
	if upper := strings.ToUpper(expr); strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=") {
		return nil, fmt.Errorf("cron %q: give the time zone in \"timezone\", not in the expression", s.Cron)
	}
	// The parser is a third-party parser of untrusted text: a panic in it
	// is a refused expression, never a crash.
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("cron %q: not a cron expression", s.Cron)
		}
	}()
	spec, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", s.Cron, err)
	}
	return inZone{spec, loc}, nil
}

// next is the schedule's next fire time after now; zero when it is paused
// or cannot be read.
func (s *Schedule) next(now time.Time) time.Time {
	if s.Disabled {
		return time.Time{}
	}
	spec, err := s.spec()
	if err != nil {
		return time.Time{}
	}
	return spec.Next(now).UTC()
}

// inZone evaluates a cron schedule in a time zone.
type inZone struct {
	cron.Schedule
	loc *time.Location
}

func (z inZone) Next(t time.Time) time.Time { return z.Schedule.Next(t.In(z.loc)) }
