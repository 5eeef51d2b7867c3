package sandbox

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkColdStart measures what a cold start adds to a call: the same
// compiled program runs on a VM built for the call (its pool was dropped
// before) and on a warm pooled VM, and the difference of the medians is
// reported as extra-ms/cold-start. Only the Run is timed, not the Drop.
func BenchmarkColdStart(b *testing.B) {
	b.Run("target=extra<1ms", func(b *testing.B) {
		rt := New(Config{})
		defer rt.Close()
		call := benchCall(b, PoolKey{Bot: "pizzeria", Intent: "OrderPizza", Version: 1})
		ctx := context.Background()
		cold := make([]time.Duration, 0, 1<<14)
		warm := make([]time.Duration, 0, 1<<14)
		b.ReportAllocs()
		for b.Loop() {
			rt.Drop(call.Key)
			t0 := time.Now()
			res, err := rt.Run(ctx, call)
			cold = append(cold, time.Since(t0))
			if err != nil || !res.ColdStart {
				b.Fatalf("cold: %+v, %v", res, err)
			}
			t0 = time.Now()
			res, err = rt.Run(ctx, call)
			warm = append(warm, time.Since(t0))
			if err != nil || !res.WarmStart {
				b.Fatalf("warm: %+v, %v", res, err)
			}
		}
		slices.Sort(cold)
		slices.Sort(warm)
		coldMed, warmMed := cold[len(cold)/2], warm[len(warm)/2]
		coldP90 := cold[len(cold)*9/10]
		extra := coldMed - warmMed
		b.ReportMetric(float64(coldMed.Nanoseconds())/1e6, "cold-ms")
		b.ReportMetric(float64(coldP90.Nanoseconds())/1e6, "cold-p90-ms")
		b.ReportMetric(float64(warmMed.Nanoseconds())/1e6, "warm-ms")
		b.ReportMetric(float64(extra.Nanoseconds())/1e6, "extra-ms/cold-start")
		b.Logf("cold start: median %v, p90 %v; warm call: median %v; extra %v (target < 1ms); %d pairs",
			coldMed, coldP90, warmMed, extra, len(cold))
	})
}
