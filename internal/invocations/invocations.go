package invocations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
)

// Defaults for the zero values of [Config].
const (
	DefaultKeyPrefix     = redisx.DefaultPrefix
	DefaultMaxRecent     = 500
	DefaultBuffer        = 8192
	DefaultBatchSize     = 512
	DefaultFlushInterval = 250 * time.Millisecond
	DefaultRecentTTL     = 30 * 24 * time.Hour
	DefaultUsageTTL      = 400 * 24 * time.Hour
	// MaxUsageDays is the longest range Usage answers.
	MaxUsageDays = 400
	// DefaultLimit and MaxLimit bound the entries Recent returns.
	DefaultLimit = 50
	MaxLimit     = 500
	// maxErrorBytes and maxLogBytes cap what an entry keeps.
	maxErrorBytes = 2048
	maxLogBytes   = 8192
	// drainTimeout bounds the final flush after Run's context ended.
	drainTimeout = 5 * time.Second
)

// Config configures a [Recorder]. Zero values mean the defaults.
type Config struct {
	// KeyPrefix starts every key (default "parley:").
	KeyPrefix string
	// MaxRecent is how many invocations are kept per bot (default 500).
	MaxRecent int
	// Buffer bounds the invocations waiting to be written (default 8192);
	// beyond it they are dropped.
	Buffer int
	// BatchSize is the most invocations written in one pipeline (default 512).
	BatchSize int
	// FlushInterval is how long an invocation may wait to be written (default 250ms).
	FlushInterval time.Duration
	// RecentTTL and UsageTTL expire the recent lists and the daily totals
	// (defaults 30 and 400 days).
	RecentTTL time.Duration
	UsageTTL  time.Duration
	// Logger receives failed flushes; nil discards them.
	Logger *slog.Logger
}

// Entry is a recorded invocation as stored and served.
type Entry struct {
	// ID orders a bot's entries: "<ms>-<seq>", given when the entry is
	// written (see [ParseID]); empty for entries written before ids were.
	ID           string    `json:"id,omitempty"`
	Time         time.Time `json:"time"`
	Bot          string    `json:"bot"`
	Intent       string    `json:"intent"`
	Version      int       `json:"version"`
	Channel      string    `json:"channel,omitempty"`
	Conversation string    `json:"conversation,omitempty"`
	Outcome      string    `json:"outcome"`
	DurationMS   float64   `json:"duration_ms"`
	ComputeMS    float64   `json:"compute_ms"`
	Instructions int64     `json:"instructions"`
	HTTPCalls    int       `json:"http_calls,omitempty"`
	// LLMCalls, LLMInputTokens and LLMOutputTokens are the call's llm
	// calls that reached the model and the tokens they used.
	LLMCalls        int      `json:"llm_calls,omitempty"`
	LLMInputTokens  int      `json:"llm_input_tokens,omitempty"`
	LLMOutputTokens int      `json:"llm_output_tokens,omitempty"`
	ColdStart       bool     `json:"cold_start,omitempty"`
	Error           string   `json:"error,omitempty"`
	Line            int      `json:"line,omitempty"`
	Logs            []string `json:"logs,omitempty"`
}

// Day is one bot's usage on one UTC day. ColdStarts and WarmStarts count
// the calls that built a Lua VM and those that reused an idle one; the
// LLM figures count the llm calls that reached the model and their tokens.
type Day struct {
	Date            string           `json:"date"` // YYYY-MM-DD
	Invocations     int64            `json:"invocations"`
	ComputeMS       float64          `json:"compute_ms"`
	Instructions    int64            `json:"instructions"`
	HTTPCalls       int64            `json:"http_calls"`
	ColdStarts      int64            `json:"cold_starts"`
	WarmStarts      int64            `json:"warm_starts"`
	LLMCalls        int64            `json:"llm_calls"`
	LLMInputTokens  int64            `json:"llm_input_tokens"`
	LLMOutputTokens int64            `json:"llm_output_tokens"`
	Outcomes        map[string]int64 `json:"outcomes"`
}

// Query filters Recent.
type Query struct {
	// Intent and Outcome keep only matching entries when set.
	Intent  string
	Outcome string
	// Since keeps only entries recorded at or after it, when set.
	Since time.Time
	// Limit is the most entries returned (default 50, at most 500).
	Limit int
}

// matches reports whether e passes q's intent and outcome filters.
func (q Query) matches(e Entry) bool {
	return (q.Intent == "" || e.Intent == q.Intent) && (q.Outcome == "" || e.Outcome == q.Outcome)
}

// Recorder buffers invocations and writes them to Redis in batches. It
// implements the engine's invocation recorder.
type Recorder struct {
	rdb  redis.UniversalClient
	cfg  Config
	log  *slog.Logger
	ch   chan msg.Invocation
	full chan struct{} // signals Run that the buffer is half full
	// flushing makes one Flush at a time take and write, so a Flush waits
	// for the batch another is writing.
	flushing sync.Mutex
	dropped  atomic.Uint64
	flushed  atomic.Uint64
	now      func() time.Time
	// followed caches which bots have followers, to publish only theirs.
	followed followedView
}

// New returns a Recorder; call Run to write what it records.
func New(rdb redis.UniversalClient, cfg Config) *Recorder {
	cfg.KeyPrefix = redisx.Prefix(cfg.KeyPrefix)
	if cfg.MaxRecent <= 0 {
		cfg.MaxRecent = DefaultMaxRecent
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.RecentTTL <= 0 {
		cfg.RecentTTL = DefaultRecentTTL
	}
	if cfg.UsageTTL <= 0 {
		cfg.UsageTTL = DefaultUsageTTL
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{rdb: rdb, cfg: cfg, log: log, ch: make(chan msg.Invocation, cfg.Buffer),
		full: make(chan struct{}, 1), now: time.Now}
}

// Record queues inv for writing. It never blocks: when the buffer is full
// the invocation is dropped and counted.
func (r *Recorder) Record(_ context.Context, inv msg.Invocation) {
	select {
	case r.ch <- inv:
	default:
		r.dropped.Add(1)
	}
	if len(r.ch) >= r.cfg.Buffer/2 {
		select {
		case r.full <- struct{}{}: // the buffer is filling up: Run writes it now
		default:
		}
	}
}

// Dropped is the number of invocations lost to a full buffer or a failed write.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Written is the number of invocations written.
func (r *Recorder) Written() uint64 { return r.flushed.Load() }

// Run writes queued invocations until ctx ends, then writes what is left
// (bounded by a few seconds) and returns nil.
func (r *Recorder) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-r.full:
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
			defer cancel()
			r.Flush(dctx)
			return nil
		}
		r.Flush(ctx)
	}
}

// Flush writes everything queued now. When it returns, every invocation
// recorded before the call is written (or dropped on a failed write), even
// one Run was writing at the time. Of each bot's invocations, only the
// newest MaxRecent go into its recent list (older ones would be trimmed
// off at once); all of them count in the usage.
func (r *Recorder) Flush(ctx context.Context) {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	all := make([]msg.Invocation, 0, len(r.ch))
	for n := len(r.ch); len(all) < n; {
		all = append(all, <-r.ch)
	}
	if len(all) == 0 {
		return
	}
	listed := make([]bool, len(all))
	newer := make(map[string]int)
	for i := len(all) - 1; i >= 0; i-- {
		bot := all[i].Bot
		if newer[bot] < r.cfg.MaxRecent {
			listed[i] = true
			newer[bot]++
		}
	}
	for start := 0; start < len(all); start += r.cfg.BatchSize {
		end := min(start+r.cfg.BatchSize, len(all))
		r.write(ctx, all[start:end], listed[start:end])
	}
}

func (r *Recorder) recentKey(bot string) string { return r.cfg.KeyPrefix + "inv:" + bot + ":recent" }

// BotKeyPrefixes returns the prefixes of bot's invocation log and daily
// usage: every key that starts with one of them is the bot's (a bot name
// holds no ":").
func (r *Recorder) BotKeyPrefixes(bot string) []string {
	return []string{r.cfg.KeyPrefix + "inv:" + bot + ":"}
}

func (r *Recorder) dayKey(bot string, day time.Time) string {
	return r.cfg.KeyPrefix + "inv:" + bot + ":day:" + day.UTC().Format("20060102")
}

// NewEntry converts an invocation to its stored form.
func NewEntry(inv msg.Invocation) Entry {
	e := Entry{
		Time:            inv.Start.UTC(),
		Bot:             inv.Bot,
		Intent:          inv.Intent,
		Version:         inv.Version,
		Channel:         inv.Channel,
		Conversation:    inv.Conversation,
		Outcome:         string(inv.Outcome),
		DurationMS:      float64(inv.Duration.Microseconds()) / 1000,
		ComputeMS:       float64(inv.Compute.Microseconds()) / 1000,
		Instructions:    inv.Instructions,
		HTTPCalls:       inv.HTTPCalls,
		ColdStart:       inv.ColdStart,
		LLMCalls:        inv.LLMCalls,
		LLMInputTokens:  inv.LLMInput,
		LLMOutputTokens: inv.LLMOutput,
		Error:           truncate(inv.Error, maxErrorBytes),
		Line:            inv.Line,
	}
	size := 0
	for _, l := range inv.Logs {
		if size += len(l); size > maxLogBytes {
			e.Logs = append(e.Logs, "…")
			break
		}
		e.Logs = append(e.Logs, l)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

type usageKey struct {
	bot string
	day string
}

type usage struct {
	key                                   string
	n, computeUS, instructions, httpCalls int64
	coldStarts, warmStarts                int64
	llmCalls, llmInput, llmOutput         int64
	outcomes                              map[string]int64
}

// write stores one batch in one pipeline: the usage of every invocation,
// and the entries of those listed in the recent lists.
func (r *Recorder) write(ctx context.Context, batch []msg.Invocation, listed []bool) {
	recent := map[string][]any{} // each bot's listed entries, oldest first
	days := map[usageKey]*usage{}
	var order []string
	for i, inv := range batch {
		if listed[i] {
			raw, err := json.Marshal(NewEntry(inv))
			if err != nil {
				r.dropped.Add(1)
				continue
			}
			if _, ok := recent[inv.Bot]; !ok {
				order = append(order, inv.Bot)
			}
			recent[inv.Bot] = append(recent[inv.Bot], raw)
		}
		start := inv.Start
		if start.IsZero() {
			start = r.now()
		}
		k := usageKey{inv.Bot, start.UTC().Format("20060102")}
		u := days[k]
		if u == nil {
			u = &usage{key: r.dayKey(inv.Bot, start), outcomes: map[string]int64{}}
			days[k] = u
		}
		u.n++
		u.computeUS += inv.Compute.Microseconds()
		u.instructions += inv.Instructions
		u.httpCalls += int64(inv.HTTPCalls)
		if inv.ColdStart {
			u.coldStarts++
		}
		if inv.WarmStart {
			u.warmStarts++
		}
		u.llmCalls += int64(inv.LLMCalls)
		u.llmInput += int64(inv.LLMInput)
		u.llmOutput += int64(inv.LLMOutput)
		u.outcomes[string(inv.Outcome)]++
	}
	followed := r.followedBots(ctx)
	pushes := make([]*redis.Cmd, len(order))
	pushArgs := make([][]any, len(order))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, bot := range order {
			channel := ""
			if followed[bot] {
				channel = r.liveChannel(bot)
			}
			pushArgs[i] = append([]any{r.cfg.MaxRecent, r.cfg.RecentTTL.Milliseconds(), channel}, recent[bot]...)
			pushes[i] = recordScript.EvalSha(ctx, p, []string{r.recentKey(bot)}, pushArgs[i]...)
		}
		for _, u := range days {
			p.HIncrBy(ctx, u.key, "invocations", u.n)
			p.HIncrBy(ctx, u.key, "compute_us", u.computeUS)
			p.HIncrBy(ctx, u.key, "instructions", u.instructions)
			if u.httpCalls > 0 {
				p.HIncrBy(ctx, u.key, "http_calls", u.httpCalls)
			}
			if u.coldStarts > 0 {
				p.HIncrBy(ctx, u.key, "cold_starts", u.coldStarts)
			}
			if u.warmStarts > 0 {
				p.HIncrBy(ctx, u.key, "warm_starts", u.warmStarts)
			}
			if u.llmCalls > 0 || u.llmInput > 0 || u.llmOutput > 0 {
				p.HIncrBy(ctx, u.key, "llm_calls", u.llmCalls)
				p.HIncrBy(ctx, u.key, "llm_input_tokens", u.llmInput)
				p.HIncrBy(ctx, u.key, "llm_output_tokens", u.llmOutput)
			}
			for o, n := range u.outcomes {
				p.HIncrBy(ctx, u.key, "outcome:"+o, n)
			}
			p.Expire(ctx, u.key, r.cfg.UsageTTL)
		}
		return nil
	})
	if redisx.IsNoScript(err) {
		// Redis lost its scripts (a restart or a failover): send the
		// pushes that failed again, in full; the usage counts went through.
		err = nil
		for i, cmd := range pushes {
			if redisx.IsNoScript(cmd.Err()) {
				err = errors.Join(err, recordScript.Run(ctx, r.rdb, []string{r.recentKey(order[i])}, pushArgs[i]...).Err())
			} else if cmd.Err() != nil {
				err = errors.Join(err, cmd.Err())
			}
		}
	}
	if err != nil {
		r.dropped.Add(uint64(len(batch)))
		r.log.Warn("could not write invocation logs; dropped a batch", "invocations", len(batch), "err", err)
		return
	}
	r.flushed.Add(uint64(len(batch)))
}

// Recent returns a bot's most recent invocations, newest first, filtered by q.
func (r *Recorder) Recent(ctx context.Context, bot string, q Query) ([]Entry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	stop := int64(limit - 1)
	if q.Intent != "" || q.Outcome != "" || !q.Since.IsZero() {
		stop = int64(r.cfg.MaxRecent - 1)
	}
	raws, err := r.rdb.LRange(ctx, r.recentKey(bot), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("invocations: recent: %w", err)
	}
	out := make([]Entry, 0, min(len(raws), limit))
	for _, raw := range raws {
		var e Entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			continue
		}
		if !q.Since.IsZero() && e.Time.Before(q.Since) {
			break // newest first: the rest are older still
		}
		if !q.matches(e) {
			continue
		}
		out = append(out, e)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// ErrRange is returned by Usage for a range that is empty or too long.
var ErrRange = errors.New("invalid date range")

// Usage returns a bot's daily totals for the UTC days from from to to,
// inclusive, one entry per day (zero days included).
func (r *Recorder) Usage(ctx context.Context, bot string, from, to time.Time) ([]Day, error) {
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	to = time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	n := int(to.Sub(from).Hours()/24) + 1
	if n < 1 || n > MaxUsageDays {
		return nil, apierr.Wrap(http.StatusBadRequest, "invalid",
			fmt.Errorf("%w: from must not be after to, and the range is at most %d days", ErrRange, MaxUsageDays))
	}
	cmds := make([]*redis.MapStringStringCmd, n)
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			cmds[i] = p.HGetAll(ctx, r.dayKey(bot, from.AddDate(0, 0, i)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("invocations: usage: %w", err)
	}
	out := make([]Day, n)
	for i, cmd := range cmds {
		d := Day{Date: from.AddDate(0, 0, i).Format(time.DateOnly), Outcomes: map[string]int64{}}
		for k, v := range cmd.Val() {
			x, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "invocations":
				d.Invocations = x
			case "compute_us":
				d.ComputeMS = float64(x) / 1000
			case "instructions":
				d.Instructions = x
			case "http_calls":
				d.HTTPCalls = x
			case "cold_starts":
				d.ColdStarts = x
			case "warm_starts":
				d.WarmStarts = x
			case "llm_calls":
				d.LLMCalls = x
			case "llm_input_tokens":
				d.LLMInputTokens = x
			case "llm_output_tokens":
				d.LLMOutputTokens = x
			default:
				if o, ok := strings.CutPrefix(k, "outcome:"); ok {
					d.Outcomes[o] = x
				}
			}
		}
		out[i] = d
	}
	return out, nil
}
