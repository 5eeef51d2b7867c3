package kvstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/internal/testredis"
	"github.com/parleyhq/parley/sandbox"
)

// TestStore is the contract suite, run against the real Redis and the
// embedded store.
func TestStore(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := New(rdb, Config{KeyPrefix: testredis.Prefix(t), MaxKeys: 3, MaxValueBytes: 100})
		if err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}

		if _, ok, err := s.Get(ctx, "pizzeria", "menu"); ok || err != nil {
			t.Fatalf("missing key: ok %v, err %v", ok, err)
		}
		if err := s.Set(ctx, "pizzeria", "menu", []byte(`["margherita"]`), 0); err != nil {
			t.Fatal(err)
		}
		v, ok, err := s.Get(ctx, "pizzeria", "menu")
		if !ok || err != nil || string(v) != `["margherita"]` {
			t.Fatalf("get: %q %v %v", v, ok, err)
		}
		// Namespaced per bot.
		if _, ok, _ := s.Get(ctx, "other", "menu"); ok {
			t.Error("another bot sees the key")
		}
		// Value quota.
		if err := s.Set(ctx, "pizzeria", "big", make([]byte, 101), 0); !errors.Is(err, sandbox.ErrQuota) {
			t.Errorf("large value: %v", err)
		}
		// Key quota: overwriting is fine, a fourth key is not.
		for _, k := range []string{"a", "b", "a", "menu"} {
			if err := s.Set(ctx, "pizzeria", k, []byte("1"), 0); err != nil {
				t.Fatalf("set %s: %v", k, err)
			}
		}
		if err := s.Set(ctx, "pizzeria", "c", []byte("1"), 0); !errors.Is(err, sandbox.ErrQuota) {
			t.Errorf("fourth key: %v", err)
		}
		if n, err := s.Count(ctx, "pizzeria"); n != 3 || err != nil {
			t.Errorf("count %d, %v", n, err)
		}
		// Another bot has its own quota.
		if err := s.Set(ctx, "other", "c", []byte("1"), 0); err != nil {
			t.Errorf("other bot: %v", err)
		}
		// Deleting frees a slot.
		if err := s.Delete(ctx, "pizzeria", "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "pizzeria", "never"); err != nil {
			t.Errorf("delete missing: %v", err)
		}
		if err := s.Set(ctx, "pizzeria", "c", []byte("1"), 0); err != nil {
			t.Errorf("after delete: %v", err)
		}
		// Bad keys.
		if err := s.Set(ctx, "pizzeria", "", []byte("1"), 0); !errors.Is(err, sandbox.ErrQuota) {
			t.Errorf("empty key: %v", err)
		}
	})
}

func TestTTLFreesQuota(t *testing.T) {
	// The embedded store's clock does not advance by itself, so this runs
	// on the real Redis only.
	rdb := testredis.Client(t)
	ctx := context.Background()
	s := New(rdb, Config{KeyPrefix: testredis.Prefix(t), MaxKeys: 1})
	if err := s.Set(ctx, "bot", "short", []byte("1"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "bot", "next", []byte("1"), 0); !errors.Is(err, sandbox.ErrQuota) {
		t.Fatalf("quota while the key lives: %v", err)
	}
	time.Sleep(120 * time.Millisecond)
	if _, ok, _ := s.Get(ctx, "bot", "short"); ok {
		t.Error("expired key still readable")
	}
	if err := s.Set(ctx, "bot", "next", []byte("1"), 0); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

// TestQuotaIsAtomic races many writers for the last free keys.
func TestQuotaIsAtomic(t *testing.T) {
	rdb := testredis.Client(t)
	ctx := context.Background()
	s := New(rdb, Config{KeyPrefix: testredis.Prefix(t), MaxKeys: 10})
	var stored atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Set(ctx, "bot", fmt.Sprint("k", i), []byte("1"), 0); err == nil {
				stored.Add(1)
			} else if !errors.Is(err, sandbox.ErrQuota) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := stored.Load(); n != 10 {
		t.Errorf("%d keys stored, quota 10", n)
	}
}
