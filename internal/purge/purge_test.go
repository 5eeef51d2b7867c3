package purge

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/bots"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// fakeRegistry is one deletion under way, in memory.
type fakeRegistry struct {
	mu       sync.Mutex
	pending  map[string]*bots.Deletion
	finished []string
}

func (f *fakeRegistry) DeleteBot(_ context.Context, bot string) (*bots.Deletion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &bots.Deletion{Bot: bot, Status: bots.DeletionStatus, Started: time.Now(), Removed: map[string]int64{}}
	f.pending[bot] = d
	return d, nil
}

func (f *fakeRegistry) Deletion(_ context.Context, bot string) (*bots.Deletion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending[bot], nil
}

func (f *fakeRegistry) PendingDeletions(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.pending)), nil
}

func (f *fakeRegistry) ClaimDeletion(_ context.Context, bot, _ string, _ time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending[bot] == nil {
		return false, bots.ErrNotDeleting
	}
	return true, nil
}

func (f *fakeRegistry) ReleaseDeletion(context.Context, string, string) error { return nil }

func (f *fakeRegistry) RecordDeletion(_ context.Context, bot string, removed map[string]int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, n := range removed {
		f.pending[bot].Removed[k] += n
	}
	return nil
}

func (f *fakeRegistry) FinishDeletion(_ context.Context, bot string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pending, bot)
	f.finished = append(f.finished, bot)
	return nil
}

// countingCleaner counts its calls.
type countingCleaner struct{ calls int }

func (c *countingCleaner) PurgeBot(context.Context, string) (int64, error) {
	c.calls++
	return 1, nil
}

// TestPurgeRemovesOnlyTheBotsKeys: a purge removes the keys under the bot's
// prefixes, in batches, and none of bots whose names start alike, of keys
// that merely mention the name elsewhere, or outside the key prefix; a key
// prefix with glob characters is matched literally.
func TestPurgeRemovesOnlyTheBotsKeys(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t) + "[x]*:"
		families := func(bot string) []Family {
			return []Family{
				{Kind: "catalog", Prefixes: []string{prefix + "bot:{" + bot + "}:"}},
				{Kind: "sessions", Prefixes: []string{prefix + "{" + bot + ":"}},
				{Kind: "logs", Prefixes: []string{prefix + "inv:" + bot + ":"}},
			}
		}
		var doomed []string
		for i := range 2500 { // several SCAN batches
			doomed = append(doomed, prefix+"{acme:"+string(rune('a'+i%26))+"}:"+string(rune('0'+i%10))+":"+strconv.Itoa(i))
		}
		doomed = append(doomed, prefix+"bot:{acme}:settings", prefix+"inv:acme:recent")
		kept := []string{prefix + "bot:{acme2}:settings", prefix + "{acme2:alice}:state", prefix + "inv:acme2:recent",
			prefix + "{other:acme}:state", prefix + "inv:other:acme:", prefix + "bot:{xacme}:settings",
			testredis.Prefix(t) + "bot:{acme}:settings"} // another installation's prefix
		for _, k := range append(slices.Clone(doomed), kept...) {
			if err := rdb.Set(ctx, k, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, k := range kept {
				rdb.Del(context.Background(), k)
			}
		})

		reg := &fakeRegistry{pending: map[string]*bots.Deletion{}}
		cleaner := &countingCleaner{}
		p := New(rdb, Config{KeyPrefix: prefix, Registry: reg, Families: families, Count: 100,
			Cleaners: map[string]Cleaner{"queued": cleaner}, Settle: 10 * time.Millisecond})
		if _, err := p.Delete(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if err := p.Purge(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(reg.finished, []string{"acme"}) || cleaner.calls != 2 {
			t.Fatalf("finished %v, cleaner called %d times (want once per sweep)", reg.finished, cleaner.calls)
		}
		left := 0
		for _, k := range doomed { // one key at a time: they span cluster slots
			n, err := rdb.Exists(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			left += int(n)
		}
		if left != 0 {
			t.Fatalf("%d of the bot's keys are left", left)
		}
		for _, k := range kept {
			if n, err := rdb.Exists(ctx, k).Result(); err != nil || n != 1 {
				t.Fatalf("%s was removed (%v)", k, err)
			}
		}
	})
}

// TestRunResumesPendingDeletions: a deletion listed as pending when Run
// starts (one interrupted by a restart) is finished without a new Delete.
func TestRunResumesPendingDeletions(t *testing.T) {
	rdb := testredis.Embedded(t)
	reg := &fakeRegistry{pending: map[string]*bots.Deletion{
		"acme": {Bot: "acme", Status: bots.DeletionStatus, Started: time.Now().Add(-time.Hour), Removed: map[string]int64{}}}}
	p := New(rdb, Config{Registry: reg, Families: func(string) []Family { return nil }, Settle: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		reg.mu.Lock()
		n := len(reg.finished)
		reg.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pending deletion was not finished")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
