package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// PartitionStats are one partition's figures, for monitoring.
type PartitionStats struct {
	// Partition is the partition's number.
	Partition int
	// Depth is the entries in the stream: waiting or being processed
	// (entries are deleted once processed).
	Depth int64
	// Lag is the age of the oldest entry; zero when the stream is empty.
	Lag time.Duration
	// Parked is the conversations parked in the partition.
	Parked int64
}

// Stats reads every partition's figures in one pipelined round trip (split
// per node on Redis Cluster).
func (q *Queue) Stats(ctx context.Context) ([]PartitionStats, error) {
	n := q.cfg.Partitions
	lens := make([]*redis.IntCmd, n)
	heads := make([]*redis.XMessageSliceCmd, n)
	parked := make([]*redis.StringCmd, n)
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			lens[i] = p.XLen(ctx, q.streamKey(i))
			heads[i] = p.XRangeN(ctx, q.streamKey(i), "-", "+", 1)
			parked[i] = p.Get(ctx, q.parkedNKey(i))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue stats: %w", err)
	}
	now := time.Now()
	out := make([]PartitionStats, n)
	for i := range n {
		out[i] = PartitionStats{Partition: i, Depth: lens[i].Val()}
		if msgs := heads[i].Val(); len(msgs) > 0 {
			out[i].Lag = max(now.Sub(entryTime(msgs[0].ID)), 0)
		}
		if v, err := parked[i].Int64(); err == nil {
			out[i].Parked = v
		}
	}
	return out, nil
}

// entryTime is when a stream entry was added, from its id ("ms-seq").
func entryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Now()
	}
	return time.UnixMilli(v)
}
