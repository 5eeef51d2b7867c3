package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PartitionStats are one partition of the chat channels' durable queue, as
// [Metrics.WatchPartitions] exports them. The figures are the shared
// store's, so every replica exports the same values; aggregate with max.
type PartitionStats struct {
	// Partition is the partition's number.
	Partition int
	// Depth is the entries in the partition's stream: waiting or being processed.
	Depth int64
	// Lag is the age of the oldest entry, zero when the stream is empty.
	Lag time.Duration
	// Parked is the conversations parked in the partition by a rate limit.
	Parked int64
}

// partitionCollector reads the queue's partitions at scrape time, at most
// once every cacheFor, so that several scrapers cost one read.
type partitionCollector struct {
	read     func(ctx context.Context) ([]PartitionStats, error)
	cacheFor time.Duration
	timeout  time.Duration

	depth, lag, parked, up *prometheus.Desc

	mu    sync.Mutex
	at    time.Time
	last  []PartitionStats
	ok    bool
	nowFn func() time.Time
}

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.lag
	ch <- c.parked
	ch <- c.up
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if now := c.nowFn(); now.Sub(c.at) >= c.cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		stats, err := c.read(ctx)
		cancel()
		c.at, c.ok = now, err == nil
		if err == nil {
			c.last = stats
		}
	}
	stats, ok := c.last, c.ok
	c.mu.Unlock()
	up := 0.0
	if ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	if !ok {
		return
	}
	for _, s := range stats {
		p := strconv.Itoa(s.Partition)
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(s.Depth), p)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, s.Lag.Seconds(), p)
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(s.Parked), p)
	}
}

// WatchPartitions exports the durable queue's partitions, read with read
// at scrape time (at most every 5 s, within 2 s):
// parley_queue_partition_depth, parley_queue_partition_lag_seconds and
// parley_queue_parked_conversations by partition, and
// parley_queue_stats_up, 0 when the last read failed.
func (m *Metrics) WatchPartitions(read func(ctx context.Context) ([]PartitionStats, error)) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&partitionCollector{
		read: read, cacheFor: 5 * time.Second, timeout: 2 * time.Second, nowFn: time.Now,
		depth: prometheus.NewDesc("parley_queue_partition_depth",
			"Entries in a partition of the chat channels' durable queue, waiting or being processed.", []string{"partition"}, nil),
		lag: prometheus.NewDesc("parley_queue_partition_lag_seconds",
			"Age of the oldest entry in a partition of the durable queue; 0 when it is empty.", []string{"partition"}, nil),
		parked: prometheus.NewDesc("parley_queue_parked_conversations",
			"Conversations parked by a rate limit in a partition of the durable queue.", []string{"partition"}, nil),
		up: prometheus.NewDesc("parley_queue_stats_up",
			"1 when the last read of the durable queue's figures succeeded, else 0.", nil, nil),
	})
}

// WatchStore exports parley_redis_up: 1 when ping (the shared store's
// ping, within 1 s) succeeds at scrape time, else 0.
func (m *Metrics) WatchStore(ping func(ctx context.Context) error) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_redis_up",
		Help: "1 when this replica reaches the shared store (Redis), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ping(ctx) != nil {
			return 0
		}
		return 1
	}))
}

// DeadLettered counts an event of bot that the queue gave up on and moved
// to the dead letters.
func (m *Metrics) DeadLettered(bot string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(m.bots.of(bot)).Inc()
}

// ScheduleRun counts a schedule's fire time run by this replica, with its
// outcome (ok or error), and how late it ran.
func (m *Metrics) ScheduleRun(bot, outcome string, late time.Duration) {
	if m == nil {
		return
	}
	m.scheduleRuns.WithLabelValues(m.bots.of(bot), outcome).Inc()
	m.scheduleLate.Observe(max(late, 0).Seconds())
}

// ObserveHTTP counts one HTTP request by its route template (a path with
// its parameters, "/hooks/:bot/:channel"; "unmatched" for no route), method
// (methods other than the standard ones count as "other", so that clients
// cannot grow the series) and status, and its duration by route.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
	default:
		method = "other"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

// newOperationsMetrics creates and registers the counters and histograms
// of this file; New calls it.
func (m *Metrics) newOperationsMetrics() {
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_queue_dead_letters_total",
		Help: "Events the durable queue gave up on and moved to the dead letters, by bot.",
	}, []string{"bot"})
	m.scheduleRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_scheduler_runs_total",
		Help: "Schedule fire times run by this replica, by bot and outcome (ok, error).",
	}, []string{"bot", "outcome"})
	m.scheduleLate = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_scheduler_lateness_seconds",
		Help:    "How long after its fire time a schedule ran.",
		Buckets: durationBuckets,
	})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_http_requests_total",
		Help: "HTTP requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_http_request_duration_seconds",
		Help:    "Duration of HTTP requests by route template.",
		Buckets: durationBuckets,
	}, []string{"route"})
	m.reg.MustRegister(m.deadLetters, m.scheduleRuns, m.scheduleLate, m.httpRequests, m.httpDuration)
}
