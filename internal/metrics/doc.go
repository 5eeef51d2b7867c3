// Package metrics defines Parley's Prometheus metrics: turns and their
// stages, webhook refusals, the analytics recorder, the sandbox's pools, and
// a go-redis hook that times every round trip. A nil *Metrics records
// nothing, so any component may take one optionally.
//
//	m := metrics.New(prometheus.DefaultRegisterer, metrics.Options{MaxBots: 1000})
//	rdb.AddHook(m.RedisHook())
//	m.ObserveTurn(metrics.Turn{Bot: "pizzabot", Channel: "web", Intent: "Greet", Outcome: "handled"})
//
// Series labelled by bot are bounded by [Options.MaxBots]; the metric names
// and labels are listed for operators in docs/operations.md.
package metrics
