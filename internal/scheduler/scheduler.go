package scheduler

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

var advanceScript = redisx.NewScript(luaFS, "lua/advance.lua")

// ErrNotFound is an unknown schedule.
var ErrNotFound error = apierr.New(http.StatusNotFound, "schedule_not_found", "unknown schedule")

// Runner runs one turn; *engine.Engine implements it.
type Runner interface {
	Run(ctx context.Context, ev *msg.Event) (*engine.Turn, error)
}

// BotSource resolves bots, for their channel settings.
type BotSource interface {
	Bot(ctx context.Context, name string) (*bots.Bot, error)
}

// Config configures a [Scheduler].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// Tick is how often due schedules are checked (default 1s).
	Tick time.Duration
	// Grace is how late a fire time may run under the "skip" policy (default 1m).
	Grace time.Duration
	// RunTimeout bounds one schedule run with all its targets (default 5m).
	RunTimeout time.Duration
	// SendBackoff is the first wait before a pushed reply that the
	// platform refused for now (429, 5xx, network) is tried again; each
	// further try waits twice as long, or the platform's Retry-After
	// (default 1s).
	SendBackoff time.Duration
	// MinInterval is the shortest time between two runs a schedule may ask
	// for (default [DefaultMinInterval]).
	MinInterval time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// OnRun, when set, is called after every fire time this replica ran
	// (not skipped), with its bot, "ok" or "error" (a target failed), and
	// how long after the fire time it started (for metrics).
	OnRun func(bot, outcome string, late time.Duration)
	// Logger receives run outcomes; nil discards them.
	Logger   *slog.Logger
	Runner   Runner
	Bots     BotSource
	Channels *channels.Registry
}

// Scheduler stores schedules and runs them. Create it with [New].
type Scheduler struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger
	wg  sync.WaitGroup
}

// New returns a Scheduler over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Scheduler {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = time.Minute
	}
	if cfg.RunTimeout <= 0 {
		cfg.RunTimeout = 5 * time.Minute
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{rdb: rdb, cfg: cfg, log: log}
}

func (s *Scheduler) indexKey() string { return s.cfg.KeyPrefix + "sched:bots" }
func (s *Scheduler) botKey(bot string) string {
	return s.cfg.KeyPrefix + "sched:{" + bot + "}"
}
func (s *Scheduler) lastKey(bot, name string) string {
	return s.cfg.KeyPrefix + "sched:{" + bot + "}:last:" + name
}
func (s *Scheduler) claimKey(bot, name string, fire time.Time) string {
	return s.cfg.KeyPrefix + "sched:{" + bot + "}:claim:" + name + ":" + strconv.FormatInt(fire.Unix(), 10)
}
func (s *Scheduler) runsKey(bot string) string { return s.cfg.KeyPrefix + "sched:{" + bot + "}:runs" }

// BotKeyPrefixes returns the prefixes of the keys of bot's schedules, their
// last fire times, claims and recorded runs: every key that starts with one
// of them is the bot's (a bot name holds no "}"). Once they are gone, no
// replica runs the bot's schedules: every replica reads them from Redis at
// each tick.
func (s *Scheduler) BotKeyPrefixes(bot string) []string {
	return []string{s.botKey(bot)}
}

// PurgeBot drops bot from the index of bots with schedules, which the
// replicas would otherwise drop at their next tick, and reports how many
// entries it removed.
func (s *Scheduler) PurgeBot(ctx context.Context, bot string) (int64, error) {
	n, err := s.rdb.SRem(ctx, s.indexKey(), bot).Result()
	if err != nil {
		return 0, fmt.Errorf("forget schedules of %s: %w", bot, err)
	}
	return n, nil
}

// Put stores a schedule (created or replaced).
func (s *Scheduler) Put(ctx context.Context, bot, name string, sc Schedule) (Schedule, error) {
	if err := sc.validate(name, s.cfg.MinInterval); err != nil {
		return Schedule{}, err
	}
	if s.cfg.Bots != nil {
		b, err := s.cfg.Bots.Bot(ctx, bot)
		if err != nil {
			return Schedule{}, err
		}
		if !b.Has(sc.Intent) {
			return Schedule{}, invalid("schedule %s: bot %s has no handler for intent %q; upload it first", name, bot, sc.Intent)
		}
	}
	sc.NextRun = time.Time{}
	if old, err := s.Get(ctx, bot, name); err == nil && !old.Created.IsZero() {
		sc.Created = old.Created
	} else {
		sc.Created = s.cfg.Now().UTC().Truncate(time.Second)
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		return Schedule{}, err
	}
	if err := s.rdb.HSet(ctx, s.botKey(bot), name, raw).Err(); err != nil {
		return Schedule{}, fmt.Errorf("save schedule: %w", err)
	}
	if err := s.rdb.SAdd(ctx, s.indexKey(), bot).Err(); err != nil {
		return Schedule{}, fmt.Errorf("save schedule: %w", err)
	}
	sc.NextRun = sc.next(s.cfg.Now())
	return sc, nil
}

// Get returns one schedule.
func (s *Scheduler) Get(ctx context.Context, bot, name string) (Schedule, error) {
	raw, err := s.rdb.HGet(ctx, s.botKey(bot), name).Bytes()
	if errors.Is(err, redis.Nil) {
		return Schedule{}, ErrNotFound
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("read schedule: %w", err)
	}
	var sc Schedule
	if err := json.Unmarshal(raw, &sc); err != nil {
		return Schedule{}, fmt.Errorf("decode schedule %s: %w", name, err)
	}
	sc.NextRun = sc.next(s.cfg.Now())
	return sc, nil
}

// List returns a bot's schedules by name, with their next run.
func (s *Scheduler) List(ctx context.Context, bot string) (map[string]Schedule, error) {
	out, err := s.list(ctx, bot)
	now := s.cfg.Now()
	for name, sc := range out {
		sc.NextRun = sc.next(now)
		out[name] = sc
	}
	return out, err
}

// list returns a bot's schedules as stored.
func (s *Scheduler) list(ctx context.Context, bot string) (map[string]Schedule, error) {
	all, err := s.rdb.HGetAll(ctx, s.botKey(bot)).Result()
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := make(map[string]Schedule, len(all))
	for name, raw := range all {
		var sc Schedule
		if err := json.Unmarshal([]byte(raw), &sc); err != nil {
			return nil, fmt.Errorf("decode schedule %s: %w", name, err)
		}
		out[name] = sc
	}
	return out, nil
}

// Delete removes a schedule.
func (s *Scheduler) Delete(ctx context.Context, bot, name string) error {
	n, err := s.rdb.HDel(ctx, s.botKey(bot), name).Result()
	if err != nil {
		return fmt.Errorf("delete schedule: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	s.rdb.Del(ctx, s.lastKey(bot, name))
	return nil
}

// Run is one recorded schedule run.
type RunRecord struct {
	Schedule string    `json:"schedule"`
	Fire     time.Time `json:"fire"`
	Started  time.Time `json:"started"`
	Late     bool      `json:"late,omitempty"`
	Skipped  bool      `json:"skipped,omitempty"`
	Targets  int       `json:"targets"`
	Failed   int       `json:"failed"`
	Error    string    `json:"error,omitempty"`
}

// maxRuns bounds the recorded runs per bot.
const maxRuns = 200

// Runs returns a bot's recent schedule runs, newest first.
func (s *Scheduler) Runs(ctx context.Context, bot string, limit int) ([]RunRecord, error) {
	if limit <= 0 || limit > maxRuns {
		limit = maxRuns
	}
	raws, err := s.rdb.LRange(ctx, s.runsKey(bot), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("read schedule runs: %w", err)
	}
	out := make([]RunRecord, 0, len(raws))
	for _, raw := range raws {
		var r RunRecord
		if json.Unmarshal([]byte(raw), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// Run checks for due fire times every Tick until ctx ends, then waits for
// runs in progress.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		if err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("check schedules", "err", err)
		}
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Check starts every fire time that is due now and claimed by this replica.
// It returns once the runs are started; Wait waits for them.
func (s *Scheduler) Check(ctx context.Context) error {
	botNames, err := s.rdb.SMembers(ctx, s.indexKey()).Result()
	if err != nil {
		return err
	}
	sort.Strings(botNames)
	now := s.cfg.Now()
	for _, bot := range botNames {
		schedules, err := s.list(ctx, bot)
		if err != nil {
			return err
		}
		if len(schedules) == 0 {
			s.rdb.SRem(ctx, s.indexKey(), bot)
			continue
		}
		for name, sc := range schedules {
			if sc.Disabled {
				continue
			}
			if err := s.due(ctx, bot, name, sc, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// Wait blocks until the runs started by Check have finished.
func (s *Scheduler) Wait() { s.wg.Wait() }

// due runs the latest fire time not yet run, if it is due. Older missed fire
// times collapse into that one run.
func (s *Scheduler) due(ctx context.Context, bot, name string, sc Schedule, now time.Time) error {
	spec, err := sc.spec()
	if err != nil {
		return nil // validated at Put; a zone database change is not worth failing the loop for
	}
	last := sc.Created
	if v, err := s.rdb.Get(ctx, s.lastKey(bot, name)).Int64(); err == nil {
		last = time.Unix(v, 0)
	} else if !errors.Is(err, redis.Nil) {
		return err
	}
	fire := spec.Next(last)
	if fire.After(now) {
		return nil
	}
	missed := 0
	for next := spec.Next(fire); !next.After(now); next = spec.Next(next) {
		fire = next
		if missed++; missed > 100000 {
			break
		}
	}
	claimed, err := s.rdb.SetNX(ctx, s.claimKey(bot, name, fire), "1", 7*24*time.Hour).Result()
	if err != nil || !claimed {
		return err
	}
	if err := advanceScript.Run(ctx, s.rdb, []string{s.lastKey(bot, name)}, fire.Unix()).Err(); err != nil {
		return err
	}
	rec := RunRecord{Schedule: name, Fire: fire.UTC(), Started: now.UTC(), Late: now.Sub(fire) > s.cfg.Tick+time.Second}
	if sc.Missed == MissedSkip && now.Sub(fire) > s.cfg.Grace {
		rec.Skipped = true
		s.record(ctx, bot, rec)
		s.log.Info("skipped a missed schedule run", "bot", bot, "schedule", name, "fire", fire)
		return nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RunTimeout)
		defer cancel()
		s.execute(runCtx, bot, name, sc, rec)
	}()
	return nil
}

// execute runs the schedule's intent once, or once per target with the reply pushed.
func (s *Scheduler) execute(ctx context.Context, bot, name string, sc Schedule, rec RunRecord) {
	targets := sc.Targets
	if len(targets) == 0 {
		targets = []Target{{Channel: "schedule", Conversation: "schedule:" + name, User: "scheduler"}}
	}
	rec.Targets = len(targets)
	if s.cfg.Bots != nil {
		// An intent deleted since the schedule was saved would run the
		// fallback handler instead; the run fails, saying why.
		if b, err := s.cfg.Bots.Bot(ctx, bot); err == nil && !b.Has(sc.Intent) {
			rec.Failed, rec.Error = len(targets), fmt.Sprintf("bot %s has no handler for intent %q", bot, sc.Intent)
			if s.cfg.OnRun != nil {
				s.cfg.OnRun(bot, "error", rec.Started.Sub(rec.Fire))
			}
			s.record(ctx, bot, rec)
			s.log.Warn("schedule names an intent without a handler", "bot", bot, "schedule", name, "intent", sc.Intent)
			return
		}
	}
	var firstErr error
	for i, tg := range targets {
		if err := s.runTarget(ctx, bot, name, sc, rec.Fire, i, tg); err != nil {
			rec.Failed++
			if firstErr == nil {
				firstErr = err
			}
			s.log.Warn("schedule run failed", "bot", bot, "schedule", name, "channel", tg.Channel, "err", err)
		}
	}
	outcome := "ok"
	if firstErr != nil {
		rec.Error, outcome = firstErr.Error(), "error"
	}
	if s.cfg.OnRun != nil {
		s.cfg.OnRun(bot, outcome, rec.Started.Sub(rec.Fire))
	}
	s.record(ctx, bot, rec)
	s.log.Info("schedule ran", "bot", bot, "schedule", name, "fire", rec.Fire, "targets", rec.Targets, "failed", rec.Failed)
}

func (s *Scheduler) runTarget(ctx context.Context, bot, name string, sc Schedule, fire time.Time, i int, tg Target) error {
	user := tg.User
	if user == "" {
		user = tg.Conversation
	}
	ev := &msg.Event{
		ID:           fmt.Sprintf("schedule:%s:%d:%d", name, fire.Unix(), i),
		Bot:          bot,
		Channel:      tg.Channel,
		User:         user,
		Conversation: tg.Conversation,
		Intent:       sc.Intent,
		Confidence:   1,
		Timestamp:    fire.UTC(),
	}
	var sender channels.Sender
	var settings channels.Settings
	if tg.Channel != "schedule" {
		a, ok := s.cfg.Channels.Get(tg.Channel)
		if !ok {
			return fmt.Errorf("unknown channel %q", tg.Channel)
		}
		if sender, ok = a.(channels.Sender); !ok {
			return fmt.Errorf("channel %s cannot push messages", tg.Channel)
		}
		b, err := s.cfg.Bots.Bot(ctx, bot)
		if err != nil {
			return err
		}
		if settings, ok = b.Channels[tg.Channel]; !ok {
			return fmt.Errorf("channel %s is not connected to bot %s", tg.Channel, bot)
		}
	}
	t, err := s.cfg.Runner.Run(ctx, ev)
	if err != nil {
		return err
	}
	if t.Err != nil {
		return fmt.Errorf("handler: %w", t.Err)
	}
	if sender == nil || len(t.Replies) == 0 || (len(t.Replies) == 1 && t.Replies[0].Text == "" && t.Replies[0].SSML == "") {
		return nil
	}
	return s.push(ctx, sender, settings, &t.TurnResult)
}

// sendTries is how often a pushed reply is tried in all.
const sendTries = 3

// push sends res, trying again when the platform refuses it for now.
func (s *Scheduler) push(ctx context.Context, sender channels.Sender, settings channels.Settings, res *msg.TurnResult) error {
	backoff := s.cfg.SendBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	for try := 1; ; try++ {
		err := sender.Send(ctx, settings, res)
		var se *channels.SendError
		if err == nil || !errors.As(err, &se) || !se.Retryable || try == sendTries {
			return err
		}
		wait := min(max(se.RetryAfter, backoff<<(try-1)), 30*time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

func (s *Scheduler) record(ctx context.Context, bot string, rec RunRecord) {
	raw, _ := json.Marshal(rec)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, s.runsKey(bot), raw)
		p.LTrim(ctx, s.runsKey(bot), 0, maxRuns-1)
		return nil
	})
	if err != nil {
		s.log.Warn("record schedule run", "bot", bot, "err", err)
	}
}
