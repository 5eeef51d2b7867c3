package testredis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// CPU is the CPU time the Redis server behind rdb has used so far (user
// and system, from INFO cpu), for benchmarks that report Redis's work per
// operation. It counts every client's commands: the figure means something
// on a Redis of the benchmark's own, not on the shared test Redis while
// other tests run. On a cluster it asks one node.
func CPU(tb testing.TB, rdb redis.UniversalClient) time.Duration {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatalf("redis INFO cpu: %v", err)
	}
	var total time.Duration
	for line := range strings.SplitSeq(info, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "used_cpu_user" && name != "used_cpu_sys") {
			continue
		}
		s, err := strconv.ParseFloat(v, 64)
		if err != nil {
			tb.Fatalf("redis INFO cpu: %s: %v", line, err)
		}
		total += time.Duration(s * float64(time.Second))
	}
	return total
}
