package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.t.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }

// runner records the events it ran and answers with a fixed reply.
type runner struct {
	mu     sync.Mutex
	events []*msg.Event
	fail   error
}

func (r *runner) Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.fail != nil {
		return nil, r.fail
	}
	return &engine.Turn{TurnResult: msg.TurnResult{Event: ev, Conversation: ev.Conversation,
		Replies: []msg.Reply{{Text: "reminder for " + ev.User}}}}, nil
}

func (r *runner) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// pusher is a channel adapter that can push messages.
type pusher struct {
	mu   sync.Mutex
	sent []string
	// fail lists, per conversation, the errors its next sends return.
	fail map[string][]error
}

func (*pusher) Name() string                                       { return "push" }
func (*pusher) Parse(*channels.Request) (*channels.Inbound, error) { return nil, errors.New("unused") }
func (*pusher) Render(*channels.Request, []*msg.TurnResult) (*channels.Response, error) {
	return nil, errors.New("unused")
}
func (p *pusher) Send(ctx context.Context, s channels.Settings, res *msg.TurnResult) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if errs := p.fail[res.Conversation]; len(errs) > 0 {
		p.fail[res.Conversation] = errs[1:]
		return errs[0]
	}
	p.sent = append(p.sent, s["token"]+"|"+res.Conversation+"|"+res.Replies[0].Text)
	return nil
}

type botSource map[string]*bots.Bot

func (b botSource) Bot(ctx context.Context, name string) (*bots.Bot, error) {
	if bot, ok := b[name]; ok {
		return bot, nil
	}
	return nil, bots.ErrBotNotFound
}

type fixture struct {
	clock  *clock
	runner *runner
	pusher *pusher
	prefix string
}

func newFixture(t *testing.T) *fixture {
	c := &clock{}
	c.set(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC))
	return &fixture{clock: c, runner: &runner{}, pusher: &pusher{}, prefix: testredis.Prefix(t)}
}

// replica returns a scheduler as one gateway replica would run it.
func (f *fixture) replica(t *testing.T) *Scheduler {
	reg, err := channels.NewRegistry(f.pusher)
	if err != nil {
		t.Fatal(err)
	}
	return New(testredis.Client(t), Config{KeyPrefix: f.prefix, Now: f.clock.now, Runner: f.runner, Channels: reg,
		SendBackoff: time.Millisecond,
		Bots: botSource{"b": {Name: "b", Channels: map[string]map[string]string{"push": {"token": "T"}},
			Handlers: map[string]bots.Handler{"Remind": {}, "Tick": {}, "News": {}, "X": {}}}}})
}

func (f *fixture) check(t *testing.T, replicas ...*Scheduler) {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Check(context.Background()); err != nil {
				t.Error(err)
			}
			r.Wait()
		}()
	}
	wg.Wait()
}

func TestEachFireTimeRunsOnceAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	replicas := []*Scheduler{f.replica(t), f.replica(t), f.replica(t)}
	if _, err := replicas[0].Put(context.Background(), "b", "daily", Schedule{Cron: "0 9 * * *", Intent: "Remind"}); err != nil {
		t.Fatal(err)
	}
	f.check(t, replicas...)
	if n := f.runner.count(); n != 0 {
		t.Fatalf("ran %d times before the first fire time", n)
	}
	f.clock.add(time.Hour) // 09:00
	for i := 0; i < 3; i++ {
		f.check(t, replicas...)
	}
	if n := f.runner.count(); n != 1 {
		t.Fatalf("09:00 ran %d times across 3 replicas, want 1", n)
	}
	ev := f.runner.events[0]
	if ev.Intent != "Remind" || ev.Channel != "schedule" || ev.Conversation != "schedule:daily" ||
		!ev.Timestamp.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("event = %+v", ev)
	}
	f.clock.add(24 * time.Hour)
	f.check(t, replicas...)
	if n := f.runner.count(); n != 2 {
		t.Fatalf("next day: %d runs, want 2", n)
	}
	runs, err := replicas[1].Runs(context.Background(), "b", 10)
	if err != nil || len(runs) != 2 || runs[0].Late || runs[0].Skipped {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
}

func TestMissedRunPolicies(t *testing.T) {
	for _, policy := range []string{MissedRunLate, MissedSkip} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t)
			s := f.replica(t)
			if _, err := s.Put(context.Background(), "b", "every5", Schedule{Cron: "*/5 * * * *", Intent: "Tick", Missed: policy}); err != nil {
				t.Fatal(err)
			}
			// An outage: nothing checked for three hours.
			f.clock.add(3*time.Hour + 2*time.Minute)
			f.check(t, s)
			f.check(t, s)
			runs, _ := s.Runs(context.Background(), "b", 10)
			if len(runs) != 1 {
				t.Fatalf("runs after the outage = %+v, want one record", runs)
			}
			wantFire := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
			if !runs[0].Fire.Equal(wantFire) {
				t.Errorf("fire = %v, want the latest missed one %v", runs[0].Fire, wantFire)
			}
			switch policy {
			case MissedRunLate:
				if f.runner.count() != 1 || !runs[0].Late {
					t.Errorf("run_late: %d runs, record %+v; want 1 late run", f.runner.count(), runs[0])
				}
			case MissedSkip:
				if f.runner.count() != 0 || !runs[0].Skipped {
					t.Errorf("skip: %d runs, record %+v; want none, recorded as skipped", f.runner.count(), runs[0])
				}
			}
			// Back to normal: the next fire time runs on time.
			f.clock.set(time.Date(2026, 3, 2, 11, 5, 0, 0, time.UTC))
			f.check(t, s)
			runs, _ = s.Runs(context.Background(), "b", 10)
			if len(runs) != 2 || runs[0].Late || runs[0].Skipped {
				t.Errorf("after recovery runs = %+v", runs)
			}
		})
	}
}

func TestTargetsGetPushedReplies(t *testing.T) {
	f := newFixture(t)
	s := f.replica(t)
	_, err := s.Put(context.Background(), "b", "news", Schedule{Cron: "@hourly", Intent: "News", Targets: []Target{
		{Channel: "push", Conversation: "chat-1"},
		{Channel: "push", Conversation: "chat-2", User: "u2"},
		{Channel: "nowhere", Conversation: "x"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(time.Hour)
	f.check(t, s)
	want := []string{"T|chat-1|reminder for chat-1", "T|chat-2|reminder for u2"}
	if strings.Join(f.pusher.sent, ",") != strings.Join(want, ",") {
		t.Fatalf("sent %v, want %v", f.pusher.sent, want)
	}
	runs, _ := s.Runs(context.Background(), "b", 1)
	if runs[0].Targets != 3 || runs[0].Failed != 1 || !strings.Contains(runs[0].Error, "nowhere") {
		t.Fatalf("run record = %+v", runs[0])
	}
}

func TestDisabledAndDeleted(t *testing.T) {
	f := newFixture(t)
	s := f.replica(t)
	ctx := context.Background()
	if _, err := s.Put(ctx, "b", "off", Schedule{Cron: "@every 1m", Intent: "X", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	f.clock.add(5 * time.Minute)
	f.check(t, s)
	if f.runner.count() != 0 {
		t.Fatal("a disabled schedule ran")
	}
	if err := s.Delete(ctx, "b", "off"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "b", "off"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Get(ctx, "b", "off"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := Schedule{Cron: "30 8 * * MON-FRI", Timezone: "Europe/Berlin", Intent: "X"}
	if err := good.Validate("weekday-morning"); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		name string
		s    Schedule
	}{
		"bad name":     {"no spaces", good},
		"no intent":    {"a", Schedule{Cron: "@daily"}},
		"bad cron":     {"a", Schedule{Cron: "61 * * * *", Intent: "X"}},
		"seconds cron": {"a", Schedule{Cron: "* * * * * *", Intent: "X"}},
		"bad zone":     {"a", Schedule{Cron: "@daily", Timezone: "Mars/Olympus", Intent: "X"}},
		"bad policy":   {"a", Schedule{Cron: "@daily", Intent: "X", Missed: "sometimes"}},
		"bad target":   {"a", Schedule{Cron: "@daily", Intent: "X", Targets: []Target{{Channel: "telegram"}}}},
		"TZ prefix":    {"a", Schedule{Cron: "TZ=UTC 0 9 * * *", Intent: "X"}},
		"TZ=0":         {"a", Schedule{Cron: "TZ=0", Intent: "X"}},
		"CRON_TZ":      {"a", Schedule{Cron: "CRON_TZ=Europe/Berlin @daily", Intent: "X"}},
		"every 5s":     {"a", Schedule{Cron: "@every 5s", Intent: "X"}},
		"every 59s":    {"a", Schedule{Cron: "@every 59s", Intent: "X"}},
		"never fires":  {"a", Schedule{Cron: "0 0 30 2 *", Intent: "X"}},
	} {
		if err := tc.s.Validate(tc.name); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTimezone(t *testing.T) {
	sc := Schedule{Cron: "0 9 * * *", Timezone: "America/New_York", Intent: "X"}
	spec, err := sc.spec()
	if err != nil {
		t.Fatal(err)
	}
	next := spec.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 1, 13, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("09:00 New York in July = %v UTC, want %v", next.UTC(), want)
	}
}

// TestPushRetriesWhatThePlatformRefusesForNow: a push refused with 429 or
// 5xx is tried again (up to three tries); a permanent refusal is not.
func TestPushRetriesWhatThePlatformRefusesForNow(t *testing.T) {
	f := newFixture(t)
	s := f.replica(t)
	_, err := s.Put(context.Background(), "b", "news", Schedule{Cron: "@hourly", Intent: "News", Targets: []Target{
		{Channel: "push", Conversation: "chat-1"},
		{Channel: "push", Conversation: "chat-2"},
		{Channel: "push", Conversation: "chat-3"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	later := &channels.SendError{Status: 429, Retryable: true, RetryAfter: time.Millisecond, Err: errors.New("slow down")}
	down := &channels.SendError{Status: 503, Retryable: true, Err: errors.New("unavailable")}
	forbidden := &channels.SendError{Status: 403, Err: errors.New("blocked by the user")}
	// chat-1: two refusals for now, then sent; chat-2: refused for good;
	// chat-3: sent at once.
	f.pusher.fail = map[string][]error{"chat-1": {later, down}, "chat-2": {forbidden}}
	f.clock.add(time.Hour)
	f.check(t, s)
	want := []string{"T|chat-1|reminder for chat-1", "T|chat-3|reminder for chat-3"}
	if strings.Join(f.pusher.sent, ",") != strings.Join(want, ",") {
		t.Fatalf("sent %v, want %v", f.pusher.sent, want)
	}
	runs, _ := s.Runs(context.Background(), "b", 1)
	if runs[0].Targets != 3 || runs[0].Failed != 1 || !strings.Contains(runs[0].Error, "blocked") {
		t.Fatalf("run record = %+v", runs[0])
	}
}
