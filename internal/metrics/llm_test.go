package metrics

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLLMMetrics: calls and tokens are counted per bot and model, and
// model names beyond the first 100 share one label.
func TestLLMMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, Options{MaxBots: -1})
	m.ObserveLLM("faq", "gpt-x", "ok", 100, 20)
	m.ObserveLLM("faq", "gpt-x", "ok", 50, 10)
	m.ObserveLLM("faq", "gpt-x", "refused", 0, 0)
	for i := range 120 {
		m.ObserveLLM("other", "model-"+strconv.Itoa(i), "ok", 1, 1)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			key := f.GetName()
			for _, l := range metric.GetLabel() {
				key += "," + l.GetValue()
			}
			got[key] = metric.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"parley_llm_calls_total,faq,gpt-x,ok":          2,
		"parley_llm_calls_total,faq,gpt-x,refused":     1,
		"parley_llm_tokens_total,faq,input,gpt-x":      150,
		"parley_llm_tokens_total,faq,output,gpt-x":     30,
		"parley_llm_calls_total,other,_other,ok":       21,
		"parley_llm_tokens_total,other,input,_other":   21,
		"parley_llm_tokens_total,other,output,model-5": 1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
