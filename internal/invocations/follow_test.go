package invocations

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/msg"
)

// next waits (up to a generous bound) for n entries from f.
func next(t *testing.T, f *Feed, n int) []Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []Entry
	for len(got) < n {
		es, err := f.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d entries: %v", len(got), n, err)
		}
		got = append(got, es...)
	}
	return got
}

// TestFollowAcrossReplicas: two recorders on one Redis stand for two
// replicas. A feed opened on one gets what the other writes, in id order,
// each entry once, filtered; after a reconnect with the last id, it gets
// exactly what it missed.
func TestFollowAcrossReplicas(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		a := New(rdb, Config{KeyPrefix: prefix})
		b := New(rdb, Config{KeyPrefix: prefix})
		now := time.Now()
		a.Record(ctx, inv("pizza", "Old", msg.CallOK, now.Add(-time.Hour)))
		a.Flush(ctx)

		// A feed starts after what is kept, unless asked for more.
		feed, err := b.Follow(ctx, "pizza", FollowQuery{})
		if err != nil {
			t.Fatal(err)
		}
		defer feed.Close()
		filtered, err := b.Follow(ctx, "pizza", FollowQuery{Outcome: "error", Since: now.Add(-time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		defer filtered.Close()

		for i := range 3 {
			a.Record(ctx, inv("pizza", fmt.Sprint("A", i), msg.CallOK, now))
		}
		a.Record(ctx, inv("other", "X", msg.CallOK, now))
		a.Flush(ctx)
		b.Record(ctx, inv("pizza", "B0", msg.CallError, now))
		b.Flush(ctx)
		got := next(t, feed, 4)
		if len(got) != 4 || got[0].Intent != "A0" || got[2].Intent != "A2" || got[3].Intent != "B0" {
			t.Fatalf("feed = %+v", got)
		}
		for i := 1; i < len(got); i++ {
			prev, _ := ParseID(got[i-1].ID)
			cur, err := ParseID(got[i].ID)
			if err != nil || !cur.After(prev) {
				t.Fatalf("ids out of order: %q then %q", got[i-1].ID, got[i].ID)
			}
		}
		if got := next(t, filtered, 1); len(got) != 1 || got[0].Intent != "B0" {
			t.Fatalf("outcome filter: %+v", got)
		}

		// A client that saw A1 reconnects to the other replica with its id.
		after, _ := ParseID(got[1].ID)
		again, err := a.Follow(ctx, "pizza", FollowQuery{After: &after})
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if got := next(t, again, 2); len(got) != 2 || got[0].Intent != "A2" || got[1].Intent != "B0" {
			t.Fatalf("after a reconnect: %+v", got)
		}
		// The recent list serves the ids too, and Since filters it.
		recent, err := a.Recent(ctx, "pizza", Query{Since: now.Add(-time.Minute), Limit: 100})
		if err != nil || len(recent) != 4 || recent[0].ID != got[3].ID {
			t.Fatalf("recent since a minute = %+v, %v", recent, err)
		}
	})
}

// TestFollowCatchesUpWithoutPublish: entries written while the writer did
// not publish (it had not seen the follower yet) reach the feed through
// its catch-up read.
func TestFollowCatchesUpWithoutPublish(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		w := New(rdb, Config{KeyPrefix: prefix})
		w.Record(ctx, inv("quiet", "Before", msg.CallOK, time.Now()))
		w.Flush(ctx) // caches "nobody follows" for a second
		feed, err := New(rdb, Config{KeyPrefix: prefix}).Follow(ctx, "quiet", FollowQuery{CatchUpInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer feed.Close()
		w.Record(ctx, inv("quiet", "Unpublished", msg.CallOK, time.Now()))
		w.Flush(ctx)
		if got := next(t, feed, 1); got[0].Intent != "Unpublished" {
			t.Fatalf("feed = %+v", got)
		}
	})
}

func TestParseID(t *testing.T) {
	for _, bad := range []string{"", "1", "a-1", "1-", "-1", "1-2-3", "18446744073709551616-0"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	id, err := ParseID("1733000000000-7")
	if err != nil || id.String() != "1733000000000-7" || !id.After(ID{MS: 1733000000000, Seq: 6}) || id.After(ID{MS: 1733000000001}) {
		t.Errorf("ParseID = %v, %v", id, err)
	}
}
