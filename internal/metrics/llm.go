package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// maxModelLabels bounds the model label values of the llm metrics: models
// are named by handlers, so the first ones seen keep their name and the
// others count as "_other".
const maxModelLabels = 100

// llmMetrics are the model calls and tokens, per bot and model.
type llmMetrics struct {
	calls  *prometheus.CounterVec
	tokens *prometheus.CounterVec

	mu     sync.Mutex
	models map[string]struct{}
}

func newLLMMetrics(reg prometheus.Registerer) *llmMetrics {
	m := &llmMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_llm_calls_total",
			Help: "llm.chat calls by bot, model and outcome (ok, error, timeout, refused, too_large).",
		}, []string{"bot", "model", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_llm_tokens_total",
			Help: "Model tokens used by llm.chat calls, by bot, model and kind (input, output).",
		}, []string{"bot", "model", "kind"}),
		models: make(map[string]struct{}),
	}
	reg.MustRegister(m.calls, m.tokens)
	return m
}

// model returns the label value of a model name.
func (m *llmMetrics) model(name string) string {
	if name == "" {
		return "(none)"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.models[name]; ok {
		return name
	}
	if len(m.models) >= maxModelLabels || len(name) > 100 {
		return OtherBots
	}
	m.models[name] = struct{}{}
	return name
}

// ObserveLLM counts one llm.chat call of bot to model, its outcome and the
// tokens it used.
func (m *Metrics) ObserveLLM(bot, model, outcome string, input, output int) {
	if m == nil {
		return
	}
	bot, model = m.bots.of(bot), m.llm.model(model)
	m.llm.calls.WithLabelValues(bot, model, outcome).Inc()
	if input > 0 {
		m.llm.tokens.WithLabelValues(bot, model, "input").Add(float64(input))
	}
	if output > 0 {
		m.llm.tokens.WithLabelValues(bot, model, "output").Add(float64(output))
	}
}
