package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Stages of a turn, as the parley_stage_duration_seconds histogram labels them.
const (
	// StageAdapter is a channel adapter verifying and parsing a webhook, and rendering the answer.
	StageAdapter = "adapter"
	// StageRouting is choosing the intent.
	StageRouting = "routing"
	// StageHandler is the Lua handler.
	StageHandler = "handler"
	// StageRedis is one Redis round trip (a command or a pipeline), of any component.
	StageRedis = "redis"
	// StageSend is writing the answer to the platform.
	StageSend = "send"
)

// durationBuckets are the bounds, in seconds, of every latency histogram.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// OtherBots is the bot label value of the bots beyond
// [Options.MaxBots].
const OtherBots = "_other"

// DefaultMaxBots is the default of [Options.MaxBots].
const DefaultMaxBots = 1000

// Options configure [New].
type Options struct {
	// MaxBots bounds the bots that get series of their own in the metrics
	// labelled by bot: the first MaxBots bots the process sees keep their
	// name as the label, and the others are counted together under
	// bot="_other" (OtherBots). Every labelled bot costs a few dozen series
	// (a latency histogram alone has 19 per channel), so this bounds what
	// one process exports however many bots it serves. The turns of the
	// other bots are also not split by intent (intent="_other"). Zero labels
	// every bot "_other"; negative means DefaultMaxBots.
	MaxBots int
}

// Metrics are Parley's Prometheus metrics. Create them with [New];
// a nil *Metrics records nothing.
type Metrics struct {
	bots          botLabels
	reg           prometheus.Registerer
	turns         *prometheus.CounterVec
	turnDuration  *prometheus.HistogramVec
	stages        *prometheus.HistogramVec
	dropped       *prometheus.CounterVec
	recorded      prometheus.Counter
	flushDuration prometheus.Histogram
	flushErrors   prometheus.Counter
	verification  *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	vmStarts      *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	scheduleRuns  *prometheus.CounterVec
	scheduleLate  prometheus.Histogram
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	llm           *llmMetrics
	stageOf       map[string]prometheus.Observer // the known stages, resolved once
}

// botLabels hands out the bot label values of the metrics.
type botLabels struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

// of returns bot's label value: its name if it is one of the first max bots
// asked for, else OtherBots.
func (b *botLabels) of(bot string) string {
	b.mu.RLock()
	_, ok := b.seen[bot]
	full := len(b.seen) >= b.max
	b.mu.RUnlock()
	switch {
	case ok:
		return bot
	case full:
		return OtherBots
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[bot]; ok {
		return bot
	}
	if len(b.seen) >= b.max {
		return OtherBots
	}
	b.seen[bot] = struct{}{}
	return bot
}

// New creates Parley's metrics and registers them with reg.
func New(reg prometheus.Registerer, opts Options) *Metrics {
	if opts.MaxBots < 0 {
		opts.MaxBots = DefaultMaxBots
	}
	m := &Metrics{
		bots: botLabels{max: opts.MaxBots, seen: make(map[string]struct{})},
		reg:  reg,
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_turns_total",
			Help: "Processed turns by bot, channel, intent and outcome (handled, fallback, error, timeout).",
		}, []string{"bot", "channel", "intent", "outcome"}),
		turnDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_turn_duration_seconds",
			Help:    "Duration of whole turns, from loading the bot to the commit, by bot and channel.",
			Buckets: durationBuckets,
		}, []string{"bot", "channel"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_stage_duration_seconds",
			Help:    "Duration of each stage of a turn: adapter, routing, handler, redis (one round trip), send.",
			Buckets: durationBuckets,
		}, []string{"stage"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_analytics_dropped_turns_total",
			Help: "Turns that analytics could not record: buffer_full (the recorder was behind) or store (Redis failed).",
		}, []string{"reason"}),
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_analytics_recorded_turns_total",
			Help: "Turns written to Redis by the analytics recorder.",
		}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_analytics_flush_duration_seconds",
			Help:    "Duration of one analytics flush (all round trips of one batch).",
			Buckets: durationBuckets,
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_analytics_flush_errors_total",
			Help: "Failed analytics flush attempts.",
		}),
		verification: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_webhook_verification_failures_total",
			Help: "Webhooks refused because their signature or token did not verify, by bot and channel.",
		}, []string{"bot", "channel"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_webhook_rejections_total",
			Help: "Webhooks to a configured bot and channel that did not become a turn, by HTTP status.",
		}, []string{"bot", "channel", "status"}),
	}
	reg.MustRegister(m.turns, m.turnDuration, m.stages, m.dropped, m.recorded, m.flushDuration,
		m.flushErrors, m.verification, m.rejected)
	m.vmStarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_sandbox_starts_total",
		Help: "Handler calls by bot and start: cold (the call built a Lua VM) or warm (it reused an idle one).",
	}, []string{"bot", "start"})
	reg.MustRegister(m.vmStarts)
	m.newOperationsMetrics()
	m.llm = newLLMMetrics(reg)
	m.stageOf = make(map[string]prometheus.Observer)
	for _, s := range []string{StageAdapter, StageRouting, StageHandler, StageRedis, StageSend} {
		m.stageOf[s] = m.stages.WithLabelValues(s)
	}
	return m
}

// Turn is what the metrics count of one processed turn.
type Turn struct {
	// Bot, Channel and Intent say where the turn happened; an empty Intent
	// (the built-in fallback) is counted as "(none)".
	Bot, Channel, Intent string
	// Outcome is handled, fallback, error or timeout; a rejected webhook
	// ("rejected") is counted by [Metrics.WebhookRejected] instead.
	Outcome string
	// Latency is the whole turn; HandlerTime the Lua handler's share and
	// RoutingTime the intent routing's.
	Latency, HandlerTime, RoutingTime time.Duration
}

// ObserveTurn counts a processed turn and its stage timings.
func (m *Metrics) ObserveTurn(t Turn) {
	if m == nil {
		return
	}
	if t.Outcome == "rejected" {
		return
	}
	bot, intent := m.bots.of(t.Bot), t.Intent
	if intent == "" {
		intent = "(none)"
	}
	if bot == OtherBots {
		intent = OtherBots // intents are named per bot: as many as the bots
	}
	m.turns.WithLabelValues(bot, t.Channel, intent, t.Outcome).Inc()
	m.turnDuration.WithLabelValues(bot, t.Channel).Observe(t.Latency.Seconds())
	if t.HandlerTime > 0 {
		m.stageOf[StageHandler].Observe(t.HandlerTime.Seconds())
	}
	if t.RoutingTime > 0 {
		m.stageOf[StageRouting].Observe(t.RoutingTime.Seconds())
	}
}

// ObserveStage records the duration of one stage.
func (m *Metrics) ObserveStage(stage string, d time.Duration) {
	if m == nil {
		return
	}
	if o, ok := m.stageOf[stage]; ok {
		o.Observe(d.Seconds())
		return
	}
	m.stages.WithLabelValues(stage).Observe(d.Seconds())
}

// WebhookRejected counts a webhook to a configured bot and channel that was
// answered with an error status instead of running a turn; 401 and 403 count
// as verification failures.
func (m *Metrics) WebhookRejected(bot, channel string, status int) {
	if m == nil {
		return
	}
	bot = m.bots.of(bot)
	m.rejected.WithLabelValues(bot, channel, strconv.Itoa(status)).Inc()
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		m.verification.WithLabelValues(bot, channel).Inc()
	}
}

// AnalyticsDropped counts turns the analytics recorder could not record:
// reason buffer_full (it was behind) or store (Redis failed).
func (m *Metrics) AnalyticsDropped(reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.dropped.WithLabelValues(reason).Add(float64(n))
}

// AnalyticsFlushed counts n turns written by one analytics flush that took d.
func (m *Metrics) AnalyticsFlushed(n int, d time.Duration) {
	if m == nil {
		return
	}
	m.recorded.Add(float64(n))
	m.flushDuration.Observe(d.Seconds())
}

// AnalyticsFlushFailed counts a failed analytics flush attempt.
func (m *Metrics) AnalyticsFlushFailed() {
	if m == nil {
		return
	}
	m.flushErrors.Inc()
}

// WatchQueue exports the depth of a queue as parley_queue_depth{queue=name}.
func (m *Metrics) WatchQueue(name string, depth func() int) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "parley_queue_depth",
		Help:        "Items waiting in an in-process queue.",
		ConstLabels: prometheus.Labels{"queue": name},
	}, func() float64 { return float64(depth()) }))
}

// ObserveVMStart counts a handler call of bot that built a Lua VM (cold)
// or reused an idle one.
func (m *Metrics) ObserveVMStart(bot string, cold bool) {
	if m == nil {
		return
	}
	start := "warm"
	if cold {
		start = "cold"
	}
	m.vmStarts.WithLabelValues(m.bots.of(bot), start).Inc()
}

// SandboxStats are the Lua sandbox's pool figures, as [Metrics.WatchSandbox] exports them.
type SandboxStats struct {
	// Pools is the number of handler pools, VMs the VMs in them, idle or busy.
	Pools, VMs int
	// IdleVMs is the VMs waiting in their pools for a call.
	IdleVMs int
	// ReapedVMs and ReapedPools count the VMs closed and the empty pools
	// forgotten after being idle.
	ReapedVMs, ReapedPools uint64
	// ColdStarts and WarmStarts count calls that built a VM or reused one.
	ColdStarts, WarmStarts uint64
	// Discarded counts VMs closed after a call instead of being reused.
	Discarded uint64
	// HeapInterrupts counts calls the heap guard interrupted.
	HeapInterrupts uint64
}

// WatchSandbox exports the sandbox's pool sizes, read from stats at each scrape.
func (m *Metrics) WatchSandbox(stats func() SandboxStats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_sandbox_pools", Help: "Live Lua VM pools (one per bot, intent and handler version)."},
			func() float64 { return float64(stats().Pools) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_sandbox_vms", Help: "Live Lua VMs, idle or busy."},
			func() float64 { return float64(stats().VMs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sandbox_cold_starts_total", Help: "Handler calls that had to build a new VM."},
			func() float64 { return float64(stats().ColdStarts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sandbox_warm_starts_total", Help: "Handler calls served by an idle pooled VM."},
			func() float64 { return float64(stats().WarmStarts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sandbox_discarded_vms_total", Help: "VMs closed after a call (timeout, limit, panic, retired pool)."},
			func() float64 { return float64(stats().Discarded) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_sandbox_idle_vms", Help: "Lua VMs idle in their pools, waiting for a call."},
			func() float64 { return float64(stats().IdleVMs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sandbox_reaped_vms_total", Help: "Idle Lua VMs closed by the reaper after the idle timeout."},
			func() float64 { return float64(stats().ReapedVMs) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sandbox_heap_interrupts_total", Help: "Handler calls the heap guard interrupted because the process heap reached its limit."},
			func() float64 { return float64(stats().HeapInterrupts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_sandbox_reaped_pools_total", Help: "Empty, idle pools forgotten by the reaper (scaled to zero)."},
			func() float64 { return float64(stats().ReapedPools) }),
	)
}

// RedisHook times every Redis round trip of the client it is added to as
// the redis stage.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.m.ObserveStage(StageRedis, time.Since(start))
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.m.ObserveStage(StageRedis, time.Since(start))
		return err
	}
}
