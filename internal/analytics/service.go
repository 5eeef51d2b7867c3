package analytics

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/logctx"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/sessions"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	userScript  = redisx.NewScript(luaFS, "lua/user.lua")
	eraseScript = redisx.NewScript(luaFS, "lua/erase.lua")
	mergeScript = redisx.NewScript(luaFS, "lua/merge.lua")

	transcriptScript = redisx.NewScript(luaFS, "lua/transcript.lua")

	allScripts = []*redisx.Script{userScript, eraseScript, mergeScript, transcriptScript}

	// scriptSources finds a script's source by its SHA1, to send it in
	// full when Redis has forgotten it (NOSCRIPT).
	scriptSources = func() map[string]string {
		m := make(map[string]string, len(allScripts))
		for _, s := range allScripts {
			m[s.Hash()] = s.Source()
		}
		return m
	}()
)

// Defaults for [Config] fields left zero.
const (
	DefaultMinuteRetention     = 48 * time.Hour
	DefaultHourRetention       = 35 * 24 * time.Hour
	DefaultDayRetention        = 400 * 24 * time.Hour
	DefaultFallbackRetention   = 30 * 24 * time.Hour
	DefaultTranscriptRetention = 7 * 24 * time.Hour
	DefaultTranscriptMaxTurns  = 200
	DefaultFlushInterval       = time.Second
	DefaultBufferSize          = 100_000
	DefaultKeyPrefix           = redisx.DefaultPrefix
)

// Internal limits.
const (
	maxFlushBatch      = 10_000           // turns one write plans together (their users and conversations once each)
	maxScriptEntries   = 16               // users or conversations per script call, fields per merge call
	maxZAddMembers     = 512              // members per ZADD or PFADD
	maxFallbacksPerDay = 10_000           // distinct utterances kept per bot and day
	maxFallbackRefs    = 500              // fallback utterances remembered per user, for erasure
	erasureMarkerTTL   = time.Hour        // how long a late turn of an erased user is still recognized
	settingsTTL        = 10 * time.Second // how long a replica trusts its copy of a bot's settings
	flushTimeout       = 10 * time.Second // bound of one flush, the final one included
	flushAttempts      = 3
)

// Retention says how long each kind of aggregate is kept.
type Retention struct {
	// Minute, Hour and Day keep the buckets of each step (default 48 hours,
	// 35 days, 400 days).
	Minute, Hour, Day time.Duration
	// Fallbacks keeps the daily lists of unmatched utterances (default 30 days).
	Fallbacks time.Duration
}

// Config configures a [Service].
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// Retention bounds the aggregates' lifetime.
	Retention Retention
	// TranscriptRetention is how long a conversation's transcript is kept
	// after its last turn, for bots without a setting of their own (default
	// 7 days). Negative keeps no transcripts.
	TranscriptRetention time.Duration
	// TranscriptMaxTurns bounds a transcript to its latest turns, for bots
	// without a setting of their own (default 200).
	TranscriptMaxTurns int
	// FlushInterval is how often buffered turns are written (default 1s).
	FlushInterval time.Duration
	// BufferSize bounds the turns waiting to be written (default 100000).
	// When it is full, further turns are not recorded (counted in
	// parley_analytics_dropped_turns_total); a turn never waits for analytics.
	BufferSize int
	// EraseSettle is how long an erasure waits for turns that other replicas
	// still hold in their buffers (default twice FlushInterval). Negative
	// does not wait.
	EraseSettle time.Duration
	// Sessions, when set, is used to erase users' sessions and to show a
	// conversation's state with its transcript.
	Sessions *sessions.Store
	// Forget lists the other stores that keep records of a user's
	// conversations (invocation logs, dead letters); an erasure calls each,
	// and reports its count under the name it has here.
	Forget map[string]Forgetter
	// Metrics receives the turn metrics; nil records none.
	Metrics *metrics.Metrics
	// Logger receives flush failures and, at debug level, every turn; nil discards them.
	Logger *slog.Logger
	// Now is the clock that places turns in buckets and resolves relative
	// query times (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Retention.Minute, DefaultMinuteRetention)
	def(&c.Retention.Hour, DefaultHourRetention)
	def(&c.Retention.Day, DefaultDayRetention)
	def(&c.Retention.Fallbacks, DefaultFallbackRetention)
	def(&c.TranscriptRetention, DefaultTranscriptRetention)
	def(&c.FlushInterval, DefaultFlushInterval)
	def(&c.EraseSettle, 2*c.FlushInterval)
	c.KeyPrefix = redisx.Prefix(c.KeyPrefix)
	if c.TranscriptMaxTurns <= 0 {
		c.TranscriptMaxTurns = DefaultTranscriptMaxTurns
	}
	if c.BufferSize <= 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Service records turns and answers analytics queries. Create it with [New].
type Service struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys keys
	log  *slog.Logger
	m    *metrics.Metrics

	mu        sync.Mutex
	buf       []Turn // turns waiting for the next flush
	spare     []Turn // the previous buffer, reused
	highWater int
	wake      chan struct{}

	flushMu sync.Mutex // one flush at a time

	settingsMu sync.Mutex
	settings   map[string]cachedSettings

	known knownUsers // used by flushes, under flushMu
}

// New returns a Service over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Service {
	cfg = cfg.withDefaults()
	return &Service{
		rdb:       rdb,
		cfg:       cfg,
		keys:      keys{prefix: cfg.KeyPrefix},
		log:       cfg.Logger,
		m:         cfg.Metrics,
		highWater: max(1, min(cfg.BufferSize/2, maxFlushBatch)),
		wake:      make(chan struct{}, 1),
		settings:  make(map[string]cachedSettings),
		known:     knownUsers{m: make(map[[2]string]*knownUser)},
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Observe records a processed turn. It never blocks and never touches
// Redis: the turn waits in a bounded buffer for the next flush, and is
// counted as dropped when the buffer is full.
func (s *Service) Observe(ctx context.Context, t Turn) {
	if t.At.IsZero() {
		t.At = s.now()
	}
	if t.RequestID == "" {
		t.RequestID = logctx.RequestID(ctx)
	}
	if t.Kind == KindTurn {
		s.m.ObserveTurn(t.Metrics())
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "turn", "bot", t.Bot, "channel", t.Channel, "conversation", t.Conversation,
			"intent", t.Intent, "source", t.Source, "outcome", t.Outcome,
			"latency_ms", float64(t.Latency.Microseconds())/1000, "handler_ms", float64(t.HandlerTime.Microseconds())/1000)
	}
	s.enqueue(t)
}

// ObserveStage records a stage timing in the metrics.
func (s *Service) ObserveStage(stage string, d time.Duration) { s.m.ObserveStage(stage, d) }

// WebhookRejected records a webhook to a configured bot and channel that
// Parley refused before a turn could run, as a turn with outcome rejected.
func (s *Service) WebhookRejected(bot, channel string, status int) {
	s.m.WebhookRejected(bot, channel, status)
	s.enqueue(Turn{At: s.now(), Bot: bot, Channel: channel, Outcome: OutcomeRejected})
}

func (s *Service) enqueue(t Turn) {
	s.mu.Lock()
	if len(s.buf) >= s.cfg.BufferSize {
		s.mu.Unlock()
		s.m.AnalyticsDropped("buffer_full", 1)
		return
	}
	s.buf = append(s.buf, t)
	n := len(s.buf)
	s.mu.Unlock()
	if n == s.highWater {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Buffered is the number of turns waiting to be written.
func (s *Service) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// Load registers the service's scripts with Redis (on every shard of a
// cluster), so that the first flush does not pay for loading them.
func (s *Service) Load(ctx context.Context) error {
	if err := redisx.Preload(ctx, s.rdb, allScripts...); err != nil {
		return fmt.Errorf("load analytics scripts: %w", err)
	}
	return nil
}

// Run writes buffered turns every FlushInterval (sooner when the buffer
// fills up) until ctx ends, then writes what is left and returns. A failed
// flush is logged and its turns are counted as dropped.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Load(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("could not preload analytics scripts; they load on first use", "err", err)
	}
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			if err := s.flushDetached(ctx); err != nil {
				return fmt.Errorf("analytics: final flush: %w", err)
			}
			return nil
		case <-tick.C:
		case <-s.wake:
		}
		err := s.flushDetached(ctx)
		switch {
		case err != nil && !failing:
			s.log.Warn("analytics flush failed; turns of this batch are lost, later ones are retried", "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("analytics flush works again")
			failing = false
		}
	}
}

// flushDetached flushes under its own deadline, so that a flush started just
// before shutdown is finished rather than abandoned.
func (s *Service) flushDetached(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	return s.Flush(ctx)
}

// Flush writes every buffered turn now. A batch that still fails after a
// few attempts is dropped, counted, and its error returned.
func (s *Service) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := s.buf
	s.buf, s.spare = s.spare[:0], nil
	s.mu.Unlock()
	defer func() {
		clear(batch)
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()
	}()

	for rest := batch; len(rest) > 0; {
		n := min(len(rest), maxFlushBatch)
		start := time.Now()
		if err := s.writeRetrying(ctx, rest[:n]); err != nil {
			s.m.AnalyticsDropped("store", len(rest))
			return err
		}
		s.m.AnalyticsFlushed(n, time.Since(start))
		rest = rest[n:]
	}
	return nil
}

func (s *Service) writeRetrying(ctx context.Context, turns []Turn) error {
	w := &write{turns: turns, convKeys: make([]string, len(turns))}
	for i := range turns {
		yieldEvery(i)
		w.convKeys[i] = turns[i].key()
	}
	backoff := 100 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		if err = s.write(ctx, w); err == nil {
			return nil
		}
		s.m.AnalyticsFlushFailed()
		if attempt == flushAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 4
	}
}

// write is one batch on its way to Redis. The user index is updated once,
// even when the rest of the batch is retried.
type write struct {
	turns      []Turn
	convKeys   []string // each turn's conversation as stored (Turn.key)
	usersDone  bool
	suppressed []bool // the user was erased after this turn: keep no identity
}

// write sends a batch in two series of rounds (see pipe): first the user
// index (one script call per shard of users, which also tells who is new
// and who was erased), then counters, unique users, fallback utterances and
// transcripts.
func (s *Service) write(ctx context.Context, w *write) error {
	now := s.now()
	if !w.usersDone {
		if err := s.indexUsers(ctx, w); err != nil {
			return err
		}
		w.usersDone = true
	}
	agg := newAggregate(s.liveAt(now))
	for i := range w.turns {
		agg.add(&w.turns[i], !w.suppressed[i])
		yieldEvery(i)
	}
	settings := s.botSettings(ctx, w.turns)
	p := s.pipeline(ctx)
	s.writeAggregate(p, agg, now)
	s.writeTranscripts(p, w, settings)
	p.exec()
	if p.err != nil {
		return fmt.Errorf("write analytics: %w", p.err)
	}
	return nil
}

// WriteAggregates adds turns to the counters, unique users and fallback
// lists directly, as a flush would, without the user index or transcripts.
// The caller sets Turn.NewUser. It is meant for loading synthetic data.
func (s *Service) WriteAggregates(ctx context.Context, turns []Turn) error {
	now := s.now()
	agg := newAggregate(s.liveAt(now))
	for i := range turns {
		if turns[i].At.IsZero() {
			turns[i].At = now
		}
		agg.add(&turns[i], true)
	}
	p := s.pipeline(ctx)
	s.writeAggregate(p, agg, now)
	p.exec()
	if p.err != nil {
		return fmt.Errorf("write analytics: %w", p.err)
	}
	return nil
}

// indexUsers brings the user index up to date with the batch's turns,
// marks each user's first recorded turn as NewUser, and the turns of users
// erased after them as suppressed. A user this process indexed lately, with
// every conversation of the batch and no fallback utterance to remember,
// costs only reads (see knownUsers); the others run the user script, once
// per shard of users.
func (s *Service) indexUsers(ctx context.Context, w *write) error {
	w.suppressed = make([]bool, len(w.turns))
	now := s.now()
	users := make(map[[2]string]*batchUser)
	var all []*batchUser
	for i := range w.turns {
		yieldEvery(i)
		t := &w.turns[i]
		if t.User == "" || t.Outcome == OutcomeRejected || t.Kind != KindTurn {
			continue
		}
		id := [2]string{t.Bot, t.User}
		u := users[id]
		if u == nil {
			u = &batchUser{id: id, known: s.known.get(id, now)}
			if u.known != nil {
				u.keys = u.known.keys
			} else {
				u.keys = s.keys.user(t.Bot, t.User)
			}
			users[id] = u
			all = append(all, u)
		}
		u.turns = append(u.turns, i)
		if u.known != nil && (t.fallbackUtterance() != "" || !u.known.has(w.convKeys[i])) {
			u.known = nil // something to write
		}
	}
	var check, write []*batchUser
	for _, u := range all {
		if u.known != nil {
			check = append(check, u)
		} else {
			write = append(write, u)
		}
	}
	stale, err := s.checkKnown(ctx, w, check)
	if err != nil {
		return err
	}
	return s.runUserScript(ctx, w, append(write, stale...), now)
}

// batchUser is a user of a flush, with the indexes of their turns.
type batchUser struct {
	id    [2]string // bot, user
	keys  userKeys
	turns []int
	known *knownUser // what this process indexed lately, if all the batch needs is there
}

// checkKnown reads, for users this process indexed lately, whether their
// index is still the one it wrote (the time it was first seen, which an
// erasure, a purge or an expiry would change) and when they were last
// erased, in one round of plain reads. Turns up to an erasure are
// suppressed, as the user script would; users whose index changed are
// forgotten and returned, for the user script.
func (s *Service) checkKnown(ctx context.Context, w *write, users []*batchUser) ([]*batchUser, error) {
	if len(users) == 0 {
		return nil, nil
	}
	firsts := make([]*redis.StringCmd, len(users))
	markers := make([]*redis.SliceCmd, len(users))
	p := s.pipeline(ctx)
	// Erasure markers are read with one MGET per shard (a hash tag), in
	// pieces of at most maxZAddMembers keys.
	byShard := make(map[string][]int)
	var shards []string
	for i, u := range users {
		firsts[i] = p.p.HGet(ctx, u.keys.info, "first")
		if i%8 == 7 { // eight reads weigh one script entry, as eight PFADD members do
			p.add(1)
		}
		if _, ok := byShard[u.keys.shard]; !ok {
			shards = append(shards, u.keys.shard)
		}
		byShard[u.keys.shard] = append(byShard[u.keys.shard], i)
	}
	at := make([]int, len(users)) // where each user's marker is in its MGET's answer
	for _, sh := range shards {
		for rest := byShard[sh]; len(rest) > 0; {
			n := min(len(rest), maxZAddMembers)
			keys := make([]string, n)
			for j, i := range rest[:n] {
				keys[j] = users[i].keys.erased
				at[i] = j
			}
			cmd := p.p.MGet(ctx, keys...)
			for _, i := range rest[:n] {
				markers[i] = cmd
			}
			p.add(n/8 + 1)
			rest = rest[n:]
		}
	}
	p.exec()
	if p.err != nil {
		return nil, fmt.Errorf("check users: %w", p.err)
	}
	var stale []*batchUser
	for i, u := range users {
		yieldEvery(i)
		first, err := firsts[i].Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("check users: %w", err)
		}
		if first != u.known.first {
			s.known.forget(u.id)
			stale = append(stale, u)
			continue
		}
		var erased int64
		if vals := markers[i].Val(); at[i] < len(vals) {
			if v, ok := vals[at[i]].(string); ok {
				erased, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		for _, ti := range u.turns {
			if w.turns[ti].At.UnixMilli() <= erased {
				w.suppressed[ti] = true
			}
		}
	}
	return stale, nil
}

// runUserScript runs the user script for users, once per shard and at most
// maxScriptEntries users per call, and remembers what it indexed.
func (s *Service) runUserScript(ctx context.Context, w *write, users []*batchUser, now time.Time) error {
	if len(users) == 0 {
		return nil
	}
	byShard := make(map[string][]*batchUser)
	var shards []string
	for i, u := range users {
		yieldEvery(i)
		if _, ok := byShard[u.keys.shard]; !ok {
			shards = append(shards, u.keys.shard)
		}
		byShard[u.keys.shard] = append(byShard[u.keys.shard], u)
	}
	var calls [][]*batchUser
	for _, sh := range shards {
		for rest := byShard[sh]; len(rest) > 0; {
			n := min(len(rest), maxScriptEntries)
			calls = append(calls, rest[:n])
			rest = rest[n:]
		}
	}
	retention := max(s.cfg.Retention.Day, s.cfg.TranscriptRetention).Milliseconds()
	cmds := make([]*redis.Cmd, len(calls))
	p := s.pipeline(ctx)
	for i, users := range calls {
		keys := make([]string, 0, 4*len(users))
		args := []any{retention, maxFallbackRefs}
		for _, u := range users {
			keys = append(keys, u.keys.info, u.keys.conversations, u.keys.fallbacks, u.keys.erased)
			args = append(args, len(u.turns))
			for _, ti := range u.turns {
				t := &w.turns[ti]
				ref := ""
				if f := t.fallbackUtterance(); f != "" {
					ref = Day.stamp(t.At) + "\x1f" + f
				}
				args = append(args, t.At.UnixMilli(), w.convKeys[ti], ref)
			}
		}
		cmds[i] = userScript.EvalSha(ctx, p.p, keys, args...)
		p.add(len(users))
	}
	p.exec()
	if p.err != nil {
		return fmt.Errorf("index users: %w", p.err)
	}
	seen := 0
	for i, users := range calls {
		res, err := p.result(cmds[i]).Int64Slice()
		if err != nil || len(res) != 3*len(users) {
			return fmt.Errorf("index users: unexpected answer %v: %w", cmds[i].Val(), err)
		}
		for j, u := range users {
			yieldEvery(seen)
			seen++
			isNew, erased, first := res[3*j] == 1, res[3*j+1], res[3*j+2]
			earliest := -1
			var convs []string
			for _, ti := range u.turns {
				if w.turns[ti].At.UnixMilli() <= erased {
					w.suppressed[ti] = true
					continue
				}
				convs = append(convs, w.convKeys[ti])
				if earliest < 0 || w.turns[ti].At.Before(w.turns[earliest].At) {
					earliest = ti
				}
			}
			if isNew && earliest >= 0 {
				w.turns[earliest].NewUser = true
			}
			if first != 0 {
				s.known.add(u.id, u.keys, first, convs, now)
			}
		}
	}
	return nil
}

// transcriptConv is a conversation of a bot, as stored (Turn.key).
type transcriptConv struct{ bot, id string }

// indexDay is a bot's daily index of active conversations.
type indexDay struct {
	bot string
	day int64 // Unix seconds
}

// writeTranscripts appends the batch's turns to their conversations'
// transcripts and updates their descriptions and the daily indexes: one
// script call per shard of a bot, for at most maxScriptEntries
// conversations each. Preparing them costs one map lookup per turn: a
// conversation's turns are chained through next, and conversations are
// grouped by their bot and shard as they first appear.
func (s *Service) writeTranscripts(p *pipe, w *write, settings map[string]resolvedSettings) {
	ctx := p.ctx
	type conv struct {
		transcriptConv
		first, last int // the conversation's turns, chained by next in batch order
	}
	type botConvs struct {
		bot    string
		set    resolvedSettings
		shards [shards][]int // conversations (indexes into convs) by shard
	}
	var (
		convs  []conv
		byBot  []*botConvs
		bot    *botConvs // the previous turn's
		at     = make(map[transcriptConv]int)
		next   = make([]int, len(w.turns))
		botsAt = make(map[string]*botConvs)
	)
	for i := range w.turns {
		yieldEvery(i)
		t := &w.turns[i]
		if w.suppressed[i] || t.Outcome == OutcomeRejected || t.Conversation == "" || t.Kind == KindHandoff || t.Kind == KindRelease {
			continue
		}
		if bot == nil || bot.bot != t.Bot {
			if bot = botsAt[t.Bot]; bot == nil {
				bot = &botConvs{bot: t.Bot, set: settings[t.Bot]}
				botsAt[t.Bot] = bot
				byBot = append(byBot, bot)
			}
		}
		if bot.set.retention <= 0 {
			continue
		}
		c := transcriptConv{t.Bot, w.convKeys[i]}
		next[i] = -1
		k, ok := at[c]
		if !ok {
			k = len(convs)
			at[c] = k
			convs = append(convs, conv{transcriptConv: c, first: i, last: i})
			sh := shardNum(c.id)
			bot.shards[sh] = append(bot.shards[sh], k)
		} else {
			next[convs[k].last] = i
			convs[k].last = i
		}
	}
	// The daily indexes get their conversations in few ZADDs each.
	index := make(map[indexDay][]redis.Z)
	var buf []byte
	var idx []int
	for _, b := range byBot {
		for _, shard := range b.shards {
			for len(shard) > 0 {
				n := min(len(shard), maxScriptEntries)
				keys := make([]string, 0, 2*n)
				args := make([]any, 2, 2+8*n)
				args[0], args[1] = b.set.retention.Milliseconds(), b.set.maxTurns
				for _, k := range shard[:n] {
					c := &convs[k]
					idx = idx[:0]
					for i := c.first; i >= 0; i = next[i] {
						idx = append(idx, i)
					}
					if len(idx) > 1 {
						slices.SortStableFunc(idx, func(a, b int) int { return w.turns[a].At.Compare(w.turns[b].At) })
					}
					first, last := &w.turns[idx[0]], &w.turns[idx[len(idx)-1]]
					var sessions int64
					ended := ""
					args = append(args, len(idx), first.At.UnixMilli(), last.User, last.Channel, last.At.UnixMilli(), nil, nil)
					head := len(args) - 2 // ended and sessions, known after the entries
					for j, i := range idx {
						t := &w.turns[i]
						e := entryOf(t)
						buf = e.appendJSON(buf[:0])
						args = append(args, string(buf))
						if t.NewConversation {
							sessions++
						}
						if t.EndConversation {
							ended = strconv.FormatInt(t.At.UnixMilli(), 10)
						}
						day := Day.Floor(t.At).Unix()
						if j == len(idx)-1 || Day.Floor(w.turns[idx[j+1]].At).Unix() != day {
							d := indexDay{c.bot, day}
							index[d] = append(index[d], redis.Z{Score: float64(t.At.UnixMilli()), Member: c.id})
						}
					}
					args[head], args[head+1] = ended, sessions
					keys = append(keys, s.keys.transcript(c.bot, c.id), s.keys.conversation(c.bot, c.id))
				}
				transcriptScript.EvalSha(ctx, p.p, keys, args...)
				p.add(n)
				shard = shard[n:]
			}
		}
	}
	for k, members := range index {
		start := time.Unix(k.day, 0).UTC()
		key := s.keys.conversationIndex(k.bot, start)
		for rest := members; len(rest) > 0; {
			n := min(len(rest), maxZAddMembers)
			p.p.ZAddGT(ctx, key, rest[:n]...)
			p.add(n/8 + 1)
			rest = rest[n:]
		}
		p.p.ExpireAt(ctx, key, start.Add(24*time.Hour).Add(settings[k.bot].retention))
		p.add(1)
	}
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// BotKeyPrefixes returns the prefixes of every key analytics keeps for bot:
// counters, unique users, latency histograms, fallbacks, transcripts,
// conversation records and indexes, user indexes and erasure markers, and
// the bot's analytics settings. Every key that starts with one of them is
// the bot's. Turns still buffered in a process are written within the flush
// interval.
func (s *Service) BotKeyPrefixes(bot string) []string { return s.keys.botPrefixes(bot) }
