package analytics

import (
	"sort"
	"time"
)

// Latency histogram bins. Bin i counts latencies in (bounds[i-1], bounds[i]]
// (bin 0 starts at 0); the last bin counts everything above the last bound.
// The bounds run 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per decade from 0.1 ms
// to 8 s, then up to 60 s, so a bin is at most a third wider than its lower
// bound. They are fixed: buckets recorded at different times and on
// different replicas add up, and a percentile over any range comes from the
// summed bins.
var bounds = func() []int64 {
	steps := []int64{100, 125, 150, 200, 250, 300, 400, 500, 600, 800}
	var b []int64
	for scale := int64(1); scale <= 10000; scale *= 10 {
		for _, s := range steps {
			b = append(b, s*scale) // microseconds
		}
	}
	return append(b, 10_000_000, 12_500_000, 15_000_000, 20_000_000, 25_000_000, 30_000_000,
		40_000_000, 50_000_000, 60_000_000)
}()

// numBins is the number of histogram bins, the overflow bin included:
// len(bounds) + 1.
const numBins = 60

// Positions in counts after cPostback: figures added later keep the
// positions of the older ones, so stored buckets still read.
const (
	cLLMInput  = cPostback + 1 + iota // model input tokens of the turns' llm calls
	cLLMOutput                        // and their output tokens
	cHandoffs                         // conversations handed to a person
	cReleases                         // and given back to the bot
)

// numCounts is the length of [counts].
const numCounts = cReleases + 1

// binOf returns the bin of a latency.
func binOf(d time.Duration) int {
	us := d.Microseconds()
	return sort.Search(len(bounds), func(i int) bool { return bounds[i] >= us })
}

// binRange returns a bin's bounds in microseconds; the overflow bin's upper
// bound equals its lower bound.
func binRange(i int) (lo, hi int64) {
	if i > 0 {
		lo = bounds[i-1]
	}
	if i < len(bounds) {
		return lo, bounds[i]
	}
	return lo, lo
}

// percentile estimates the q-quantile (0 < q <= 1) of the counted latencies
// in milliseconds, by linear interpolation inside the bin that holds it. The
// estimate lies in the same bin as the exact value, so its error is at most
// that bin's width. It is 0 when nothing was counted.
func percentile(bins []int64, q float64) float64 {
	var total int64
	for _, n := range bins {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total) // how many values lie at or below the answer
	var cum int64
	for i, n := range bins {
		if n == 0 {
			continue
		}
		if float64(cum+n) >= rank {
			lo, hi := binRange(i)
			frac := (rank - float64(cum)) / float64(n)
			return (float64(lo) + frac*float64(hi-lo)) / 1000
		}
		cum += n
	}
	lo, _ := binRange(len(bins) - 1)
	return float64(lo) / 1000
}
