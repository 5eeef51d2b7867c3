package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BenchmarkSnapshot measures a snapshot of 10,000 keys of mixed types, and
// how long commands wait for it.
func BenchmarkSnapshot(b *testing.B) {
	s := openT(b, Config{DataDir: b.TempDir()})
	ctx := context.Background()
	const n = 10_000
	pipe := s.Client().Pipeline()
	for i := range n {
		k := fmt.Sprintf("k%05d", i)
		switch i % 5 {
		case 0:
			pipe.Set(ctx, k, "some conversation state", time.Hour)
		case 1:
			pipe.HSet(ctx, k, "state", "ordering", "step", "2", "lang", "en")
		case 2:
			pipe.RPush(ctx, k, "hello", "how can I help?", "a pizza please")
		case 3:
			pipe.SAdd(ctx, k, "a", "b")
		case 4:
			pipe.ZAdd(ctx, k, redis.Z{Score: float64(i), Member: "m"})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
	var paused time.Duration
	for b.Loop() {
		start := time.Now()
		snap, err := s.emb.capture(ctx) // commands wait during this part
		paused += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if err := writeSnapshot(s.emb.dir, s.emb.file, snap); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(paused.Milliseconds())/float64(b.N), "ms-paused/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkEmbeddedGet measures a GET through the embedded client,
// snapshot gate included.
func BenchmarkEmbeddedGet(b *testing.B) {
	s := openT(b, Config{DataDir: b.TempDir()})
	ctx := context.Background()
	s.Client().Set(ctx, "k", "v", 0)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Client().Get(ctx, "k").Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
