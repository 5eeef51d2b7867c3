package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The contract suite: what Parley relies on from its Redis, run against the
// embedded store and, when the test script provides one, a real redis-server.

func TestContractEmbedded(t *testing.T) {
	runContract(t, func(t *testing.T) *Store {
		s := openT(t, Config{DataDir: t.TempDir()})
		startRun(t, s)
		return s
	})
}

func TestContractRedis(t *testing.T) {
	url := testRedisURL(t)
	runContract(t, func(t *testing.T) *Store {
		s := openT(t, Config{URL: url})
		startRun(t, s)
		return s
	})
}

func runContract(t *testing.T, open func(t *testing.T) *Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store, p string)
	}{
		{"SetGet", contractSetGet},
		{"TTLExpiresAsTimePasses", contractTTL},
		{"LuaScript", contractLua},
		{"PubSub", contractPubSub},
		{"Transaction", contractTransaction},
		{"Time", contractTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			p := keyPrefix(t)
			t.Cleanup(func() { cleanKeys(t, s, p) })
			tc.run(t, s, p)
		})
	}
}

// cleanKeys deletes a test's keys from a shared Redis.
func cleanKeys(t *testing.T, s *Store, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := s.Client().Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		s.Client().Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleaning up test keys: %v", err)
	}
}

func contractSetGet(t *testing.T, s *Store, p string) {
	ctx := context.Background()
	rdb := s.Client()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := rdb.Set(ctx, p+"k", "v\x00\xff", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := rdb.Get(ctx, p+"k").Result()
	if err != nil || got != "v\x00\xff" {
		t.Fatalf("GET = %q, %v; want the value set", got, err)
	}
	if _, err := rdb.Get(ctx, p+"missing").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of a missing key: err = %v, want redis.Nil", err)
	}
	if s.Describe() == "" {
		t.Error("Describe is empty")
	}
}

func contractTTL(t *testing.T, s *Store, p string) {
	ctx := context.Background()
	rdb := s.Client()
	if err := rdb.Set(ctx, p+"short", "x", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, p+"long", "x", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n, err := rdb.Exists(ctx, p+"short").Result(); err != nil || n != 0 {
		t.Errorf("a key with PX 300 still exists after 1s (EXISTS = %d, %v)", n, err)
	}
	ttl, err := rdb.PTTL(ctx, p+"long").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl > 9500*time.Millisecond || ttl < 8*time.Second {
		t.Errorf("PTTL after 1s of a 10s key = %s, want about 9s", ttl)
	}
}

// luaTurn uses every command Parley's scripts use.
var luaTurn = redis.NewScript(`
-- KEYS: lock, counter, hash, list, scratch. ARGV: owner.
local got = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', 60000)
local again = redis.call('SET', KEYS[1], 'intruder', 'NX', 'PX', 60000)
redis.call('INCR', KEYS[2])
local n = redis.call('INCR', KEYS[2])
local owner = redis.call('GET', KEYS[1])
redis.call('HSET', KEYS[3], 'a', '1', 'b', '2')
local h = redis.call('HGETALL', KEYS[3])
for i = 1, 5 do redis.call('LPUSH', KEYS[4], 'm' .. i) end
redis.call('LTRIM', KEYS[4], 0, 2)
local l = redis.call('LRANGE', KEYS[4], 0, -1)
redis.call('PEXPIRE', KEYS[3], 60000)
local ttl = redis.call('PTTL', KEYS[3])
redis.call('SET', KEYS[5], 'x')
local del = redis.call('DEL', KEYS[5])
local ex = redis.call('EXISTS', KEYS[5], KEYS[1])
return {got.ok, again == false and 'refused' or 'taken', n, owner, #h, l[1], l[3], #l,
  ttl > 59000 and 'ttl-ok' or tostring(ttl), del, ex}
`)

func contractLua(t *testing.T, s *Store, p string) {
	ctx := context.Background()
	want := []any{"OK", "refused", int64(2), "owner-1", int64(4), "m5", "m3", int64(3), "ttl-ok", int64(1), int64(1)}
	// The first run loads the script (EVALSHA fails, EVAL follows); the
	// second runs it by SHA.
	for i, set := range []string{"a:", "b:"} {
		keys := []string{p + set + "lock", p + set + "n", p + set + "h", p + set + "l", p + set + "x"}
		got, err := luaTurn.Run(ctx, s.Client(), keys, "owner-1").Slice()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d = %#v\nwant %#v", i, got, want)
		}
	}
	h, err := s.Client().HGetAll(ctx, p+"a:h").Result()
	if err != nil || !reflect.DeepEqual(h, map[string]string{"a": "1", "b": "2"}) {
		t.Fatalf("hash the script wrote = %v, %v", h, err)
	}
}

func contractPubSub(t *testing.T, s *Store, p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch := p + "events"
	sub := s.Client().Subscribe(ctx, ch)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatalf("subscribe: %v", err)
	}
	// PUBLISH's count is of the receivers on the node that took it: on a
	// cluster the subscriber may be on another node, and the message still
	// reaches it over the cluster bus. Delivery is what is checked.
	if err := s.Client().Publish(ctx, ch, "hello").Err(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	select {
	case msg := <-sub.Channel():
		if msg.Channel != ch || msg.Payload != "hello" {
			t.Fatalf("got %s %q, want %s %q", msg.Channel, msg.Payload, ch, "hello")
		}
	case <-ctx.Done():
		t.Fatal("no message within 5s")
	}
}

func contractTransaction(t *testing.T, s *Store, p string) {
	ctx := context.Background()
	var incr *redis.IntCmd
	_, err := s.Client().TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Incr(ctx, p+"n")
		incr = pipe.Incr(ctx, p+"n")
		return nil
	})
	if err != nil || incr.Val() != 2 {
		t.Fatalf("MULTI/EXEC: INCR twice = %d, %v; want 2", incr.Val(), err)
	}
}

func contractTime(t *testing.T, s *Store, _ string) {
	got, err := s.Client().Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	got2, err := s.Client().Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(got); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("TIME is %s off the clock", d)
	}
	if d := got2.Sub(got); d < 250*time.Millisecond {
		t.Errorf("TIME advanced %s over 300ms", d)
	}
}
