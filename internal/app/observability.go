package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/analytics"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/handoff"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/queue"
	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/msg"
	"github.com/parleyhq/parley/sandbox"
	"github.com/parleyhq/parley/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// observability is the process's metrics registry and analytics service.
type observability struct {
	cfg       config.Config
	registry  *prometheus.Registry
	metrics   *metrics.Metrics
	analytics *analytics.Service
}

// newObservability creates the registry (no global default registry), the
// metrics and the analytics service, and times every Redis round trip of rdb.
// An erasure also removes what the stores in forget keep of the user.
func newObservability(cfg config.Config, rdb redis.UniversalClient, sess *sessions.Store,
	forget map[string]analytics.Forgetter, log *slog.Logger) *observability {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, metrics.Options{MaxBots: cfg.MetricsMaxBots})
	rdb.AddHook(m.RedisHook())
	if cfg.Tracing {
		rdb.AddHook(redisx.TracingHook())
	}
	svc := analytics.New(rdb, analytics.Config{
		KeyPrefix: cfg.KeyPrefix,
		Retention: analytics.Retention{Minute: cfg.AnalyticsMinuteRetention, Hour: cfg.AnalyticsHourRetention,
			Day: cfg.AnalyticsDayRetention, Fallbacks: cfg.AnalyticsFallbackRetention},
		TranscriptRetention: cfg.TranscriptRetention,
		TranscriptMaxTurns:  cfg.TranscriptMaxTurns,
		FlushInterval:       cfg.AnalyticsFlushInterval,
		BufferSize:          cfg.AnalyticsBuffer,
		Sessions:            sess,
		Forget:              forget,
		Metrics:             m,
		Logger:              log.With("component", "analytics"),
	})
	m.WatchQueue("analytics", svc.Buffered)
	return &observability{cfg: cfg, registry: reg, metrics: m, analytics: svc}
}

// watchSandbox exports the sandbox's pool sizes.
func (o *observability) watchSandbox(rt *sandbox.Runtime) {
	o.metrics.WatchSandbox(func() metrics.SandboxStats {
		st := rt.Stats()
		return metrics.SandboxStats{Pools: st.Pools, VMs: st.VMs, IdleVMs: st.IdleVMs, ColdStarts: st.ColdStarts,
			WarmStarts: st.WarmStarts, Discarded: st.Discarded, HeapInterrupts: st.HeapInterrupts,
			ReapedVMs: st.ReapedVMs, ReapedPools: st.ReapedPools}
	})
}

// watchQueue exports the durable queue's partitions.
func (o *observability) watchQueue(q *queue.Queue) {
	o.metrics.WatchPartitions(func(ctx context.Context) ([]metrics.PartitionStats, error) {
		stats, err := q.Stats(ctx)
		out := make([]metrics.PartitionStats, len(stats))
		for i, s := range stats {
			out[i] = metrics.PartitionStats{Partition: s.Partition, Depth: s.Depth, Lag: s.Lag, Parked: s.Parked}
		}
		return out, err
	})
}

// countStarts returns next with every handler call's cold or warm start
// counted per bot in the metrics first.
func (o *observability) countStarts(next engine.InvocationRecorder) engine.InvocationRecorder {
	return startCounter{next: next, metrics: o.metrics}
}

// startCounter is an engine.InvocationRecorder that counts VM starts per
// bot before passing the invocation on.
type startCounter struct {
	next    engine.InvocationRecorder
	metrics *metrics.Metrics
}

// Record implements engine.InvocationRecorder.
func (s startCounter) Record(ctx context.Context, inv msg.Invocation) {
	if inv.ColdStart || inv.WarmStart {
		s.metrics.ObserveVMStart(inv.Bot, inv.ColdStart)
	}
	s.next.Record(ctx, inv)
}

// handler serves GET /metrics; nil when PARLEY_METRICS is off.
func (o *observability) handler() http.Handler {
	if o.cfg.MetricsAccess == "off" {
		return nil
	}
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{Registry: o.registry})
}

// run writes recorded turns until ctx ends; with analytics off there is nothing to write.
func (o *observability) run(ctx context.Context) error {
	if !o.cfg.Analytics {
		<-ctx.Done()
		return nil
	}
	return o.analytics.Run(ctx)
}

// close writes turns recorded after run stopped.
func (o *observability) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return o.analytics.Flush(ctx)
}

// TurnDone implements engine.Observer: every processed turn goes to the
// metrics, and to analytics when recording is on.
func (o *observability) TurnDone(ctx context.Context, t *engine.Turn) {
	rec := analyticsTurn(t)
	if !o.cfg.Analytics {
		o.metrics.ObserveTurn(rec.Metrics())
		return
	}
	o.analytics.Observe(ctx, rec)
}

// analyticsTurn is an engine turn as analytics records it.
func analyticsTurn(t *engine.Turn) analytics.Turn {
	rec := analytics.Turn{Conversation: t.Conversation, Intent: t.Decision.Intent, Source: string(t.Decision.Source),
		Confidence: t.Decision.Confidence, Outcome: string(t.Outcome), Latency: t.Duration, HandlerTime: t.HandlerTime,
		RoutingTime: t.RoutingTime, NewConversation: t.NewConversation, EndConversation: t.EndConversation,
		LLMInputTokens: t.LLMInputTokens, LLMOutputTokens: t.LLMOutputTokens, Handoff: t.HandedOff}
	if ev := t.Event; ev != nil {
		rec.Bot, rec.Channel, rec.User, rec.Text = ev.Bot, ev.Channel, ev.User, ev.Text
	}
	var texts []string
	var rich []richReply
	for _, r := range t.Replies {
		if r.Text != "" {
			texts = append(texts, r.Text)
		}
		if len(r.Options)+len(r.Buttons)+len(r.Cards)+len(r.Media) > 0 {
			rich = append(rich, richReply{Options: r.Options, Buttons: r.Buttons, Cards: r.Cards, Media: r.Media})
		}
		rec.Sensitive = rec.Sensitive || r.Sensitive
	}
	rec.Reply = strings.Join(texts, "\n")
	if len(rich) > 0 && !rec.Sensitive {
		if raw, err := json.Marshal(rich); err == nil && len(raw) <= maxTranscriptRich {
			rec.Rich = raw
		}
	}
	return rec
}

// richReply is what a transcript keeps of a reply besides its text: the
// parts the console shows as buttons, cards and media.
type richReply struct {
	Options []string     `json:"options,omitempty"`
	Buttons []msg.Button `json:"buttons,omitempty"`
	Cards   []msg.Card   `json:"cards,omitempty"`
	Media   []msg.Media  `json:"media,omitempty"`
}

// maxTranscriptRich bounds the rich parts a transcript keeps of one turn;
// a turn with more keeps its text only.
const maxTranscriptRich = 16 << 10

// llmMeter passes the llm module's calls to the metrics, which are made
// after the sandbox that holds the llm client.
type llmMeter struct{ metrics *metrics.Metrics }

// ObserveLLM implements llm.Meter.
func (m *llmMeter) ObserveLLM(bot, model, outcome string, input, output int) {
	m.metrics.ObserveLLM(bot, model, outcome, input, output)
}

// RecordHandoff counts handoffs and releases in analytics and puts agents'
// messages in the transcripts.
func (o *observability) RecordHandoff(ctx context.Context, e handoff.Event) {
	if !o.cfg.Analytics {
		return
	}
	rec := analytics.Turn{At: e.Time, Bot: e.Bot, Channel: e.Channel, User: e.User, Conversation: e.Conversation,
		Intent: e.Intent}
	switch e.Event {
	case handoff.EventHandoff:
		if e.Intent != "" {
			return // counted with the turn whose handler handed over
		}
		rec.Kind = analytics.KindHandoff
	case handoff.EventRelease:
		rec.Kind = analytics.KindRelease
	case handoff.EventMessage:
		rec.Kind, rec.Agent, rec.Reply = analytics.KindAgent, e.Agent, e.Text
	default:
		return
	}
	o.analytics.Observe(ctx, rec)
}
