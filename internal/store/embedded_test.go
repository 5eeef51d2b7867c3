package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestEmbeddedOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s := openT(t, Config{DataDir: dir})
	if !s.Embedded() {
		t.Error("Embedded() = false with an empty URL")
	}
	if got, want := s.Describe(), "embedded store, data in "+dir; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("data directory mode = %o, want 700", perm)
	}
	ctx := context.Background()
	if err := s.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Client().Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
}

func TestEmbeddedRejectsStrangers(t *testing.T) {
	s := openT(t, Config{DataDir: t.TempDir()})
	stranger := redis.NewClient(&redis.Options{Addr: s.emb.srv.Addr(), MaxRetries: -1})
	defer stranger.Close()
	err := stranger.Set(context.Background(), "k", "v", 0).Err()
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("a client without the password: err = %v, want NOAUTH", err)
	}
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s := openT(t, Config{})
	if got := s.Describe(); got != "embedded store, data in ./parley-data" {
		t.Errorf("Describe() = %q", got)
	}
	if s.emb.interval != 10*time.Second {
		t.Errorf("snapshot interval = %s, want 10s", s.emb.interval)
	}
	if _, err := os.Stat(filepath.Join(dir, "parley-data")); err != nil {
		t.Errorf("default data directory: %v", err)
	}
	if _, err := Open(context.Background(), Config{SnapshotInterval: -time.Second}); err == nil {
		t.Error("a negative snapshot interval was accepted")
	}
}

// fillAllTypes writes one key of every type and returns a check that a
// store holds them.
func fillAllTypes(t *testing.T, rdb redis.UniversalClient) func(t *testing.T, rdb redis.UniversalClient, downtime time.Duration) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	binKey, binVal := "bin:\xff\xfe", "\x00\x01\xc3\x28 not utf-8"
	must(rdb.Set(ctx, "str", "plain <&> \"quoted\" ✓", 0).Err())
	must(rdb.Set(ctx, binKey, binVal, 0).Err())
	must(rdb.Set(ctx, "empty", "", 0).Err())
	must(rdb.Set(ctx, "ttl", "x", time.Hour).Err())
	must(rdb.HSet(ctx, "hash", "a", "1", "b", "\xff", "c", "3").Err())
	must(rdb.Do(ctx, "HEXPIRE", "hash", 3600, "FIELDS", 1, "c").Err())
	must(rdb.RPush(ctx, "list", "one", "two", "three", "two").Err())
	must(rdb.SAdd(ctx, "set", "x", "y", "\xff").Err())
	must(rdb.ZAdd(ctx, "zset",
		redis.Z{Score: 0.1, Member: "tenth"}, redis.Z{Score: math.Inf(-1), Member: "bottom"},
		redis.Z{Score: 1e300, Member: "huge"}, redis.Z{Score: 1.0 / 3, Member: "third"}).Err())
	must(rdb.PExpire(ctx, "zset", 90*time.Minute).Err())
	for i := 1; i <= 3; i++ {
		must(rdb.XAdd(ctx, &redis.XAddArgs{Stream: "stream", ID: fmt.Sprintf("%d-1", i), Values: []string{"n", strconv.Itoa(i)}}).Err())
	}
	must(rdb.XGroupCreate(ctx, "stream", "workers", "0").Err())
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "w1", Streams: []string{"stream", ">"}, Count: 2}).Result()
	must(err)
	if len(got) != 1 || len(got[0].Messages) != 2 {
		t.Fatalf("XREADGROUP = %v", got)
	}
	must(rdb.XAck(ctx, "stream", "workers", "1-1").Err()) // 2-1 stays pending
	must(rdb.XGroupCreate(ctx, "stream", "idle", "$").Err())

	return func(t *testing.T, rdb redis.UniversalClient, downtime time.Duration) {
		t.Helper()
		eq := func(what string, got, want any, err error) {
			t.Helper()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s = %#v, %v; want %#v", what, got, err, want)
			}
		}
		str, err := rdb.Get(ctx, "str").Result()
		eq("str", str, "plain <&> \"quoted\" ✓", err)
		bin, err := rdb.Get(ctx, binKey).Result()
		eq("binary key", bin, binVal, err)
		empty, err := rdb.Get(ctx, "empty").Result()
		eq("empty", empty, "", err)
		hash, err := rdb.HGetAll(ctx, "hash").Result()
		eq("hash", hash, map[string]string{"a": "1", "b": "\xff", "c": "3"}, err)
		list, err := rdb.LRange(ctx, "list", 0, -1).Result()
		eq("list", list, []string{"one", "two", "three", "two"}, err)
		set, err := rdb.SMembers(ctx, "set").Result()
		sort.Strings(set)
		eq("set", set, []string{"x", "y", "\xff"}, err)
		zset, err := rdb.ZRangeWithScores(ctx, "zset", 0, -1).Result()
		eq("zset", zset, []redis.Z{{Score: math.Inf(-1), Member: "bottom"}, {Score: 0.1, Member: "tenth"},
			{Score: 1.0 / 3, Member: "third"}, {Score: 1e300, Member: "huge"}}, err)
		entries, err := rdb.XRange(ctx, "stream", "-", "+").Result()
		eq("stream", entries, []redis.XMessage{
			{ID: "1-1", Values: map[string]any{"n": "1"}}, {ID: "2-1", Values: map[string]any{"n": "2"}},
			{ID: "3-1", Values: map[string]any{"n": "3"}}}, err)

		for key, want := range map[string]time.Duration{"ttl": time.Hour, "zset": 90 * time.Minute} {
			ttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil || ttl > want-downtime || ttl < want-downtime-5*time.Second {
				t.Errorf("PTTL %s = %s, %v; want a bit under %s", key, ttl, err, want-downtime)
			}
		}
		for _, key := range []string{"str", "hash", "list"} {
			if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl != -1 {
				t.Errorf("PTTL %s = %s, %v; want no expiry", key, ttl, err)
			}
		}
		fieldTTL, err := rdb.Do(ctx, "HPTTL", "hash", "FIELDS", 2, "a", "c").Int64Slice()
		if err != nil || len(fieldTTL) != 2 || fieldTTL[0] != -1 || fieldTTL[1] <= 0 || fieldTTL[1] > 3600_000 {
			t.Errorf("HPTTL hash a c = %v, %v; want [-1, about 3600000]", fieldTTL, err)
		}
		// The pending entry 2-1 is delivered again, then 3-1.
		msgs, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "w2",
			Streams: []string{"stream", ">"}, Count: 10, Block: -1}).Result()
		if err != nil || len(msgs) != 1 || len(msgs[0].Messages) != 2 || msgs[0].Messages[0].ID != "2-1" {
			t.Errorf("XREADGROUP after restore = %v, %v; want 2-1 and 3-1", msgs, err)
		}
		groups, err := rdb.XInfoGroups(ctx, "stream").Result()
		names := []string{}
		for _, g := range groups {
			names = append(names, g.Name)
		}
		sort.Strings(names)
		eq("groups", names, []string{"idle", "workers"}, err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	check := fillAllTypes(t, s.Client())
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("snapshot mode = %o, want 600", perm)
	}
	time.Sleep(1100 * time.Millisecond) // downtime counts against TTLs

	log := &logBuffer{}
	s2 := openT(t, Config{DataDir: dir, Logger: log.logger()})
	check(t, s2.Client(), time.Second)
	if !strings.Contains(log.String(), "pending stream entries are delivered again") {
		t.Errorf("no warning about pending stream entries; log:\n%s", log)
	}
	if !strings.Contains(log.String(), "keys=9") {
		t.Errorf("restore did not log 9 keys; log:\n%s", log)
	}
}

func TestSnapshotSkipsExpiredKeys(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rdb := s.Client()
	rdb.Set(ctx, "short", "x", 300*time.Millisecond)
	rdb.Set(ctx, "long", "x", time.Minute)
	rdb.HSet(ctx, "h", "a", "1", "b", "2")
	rdb.Do(ctx, "HEXPIRE", "h", 1, "FIELDS", 1, "a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // stopped longer than the short TTLs

	s2 := openT(t, Config{DataDir: dir})
	rdb = s2.Client()
	if n := rdb.Exists(ctx, "short").Val(); n != 0 {
		t.Error("a key that expired while the store was stopped was restored")
	}
	if n := rdb.Exists(ctx, "long").Val(); n != 1 {
		t.Error("a key with time left was not restored")
	}
	if got := rdb.HGetAll(ctx, "h").Val(); !reflect.DeepEqual(got, map[string]string{"b": "2"}) {
		t.Errorf("hash = %v, want only the field without an expired TTL", got)
	}
}

func TestSnapshotSkipsExpiredKeysInFile(t *testing.T) {
	dir := t.TempDir()
	past := time.Now().Add(-time.Minute).UnixMilli()
	future := time.Now().Add(time.Minute).UnixMilli()
	writeFile(t, filepath.Join(dir, "snapshot.json"), fmt.Sprintf(`{"format":"parley-store-snapshot","version":1,"saved_at":"2026-01-01T00:00:00Z","keys":[
{"key":"gone","type":"string","value":"x","expire_at_ms":%d}
,{"key":"kept","type":"string","value":"y","expire_at_ms":%d}
,{"key":"forever","type":"list","items":["a",{"base64":"/w=="}]}
]}`, past, future))
	log := &logBuffer{}
	s := openT(t, Config{DataDir: dir, Logger: log.logger()})
	ctx := context.Background()
	if n := s.Client().Exists(ctx, "gone").Val(); n != 0 {
		t.Error("an expired key was restored")
	}
	if ttl := s.Client().PTTL(ctx, "kept").Val(); ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("PTTL kept = %s, want just under 1m", ttl)
	}
	if got := s.Client().LRange(ctx, "forever", 0, -1).Val(); !reflect.DeepEqual(got, []string{"a", "\xff"}) {
		t.Errorf("list = %q", got)
	}
	if !strings.Contains(log.String(), "keys=2 expired=1") {
		t.Errorf("log does not count 2 restored and 1 expired:\n%s", log)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptSnapshot(t *testing.T) {
	good := `{"format":"parley-store-snapshot","version":1,"saved_at":"2026-01-01T00:00:00Z","keys":[
{"key":"k","type":"string","value":"v"}
]}`
	tests := map[string]string{
		"garbage":        "this is not json",
		"truncated":      good[:len(good)-10],
		"empty file":     "",
		"other format":   strings.Replace(good, "parley-store-snapshot", "something-else", 1),
		"newer version":  strings.Replace(good, `"version":1`, `"version":2`, 1),
		"trailing data":  good + "{}",
		"no value":       strings.Replace(good, `,"value":"v"`, "", 1),
		"unknown type":   strings.Replace(good, `"string"`, `"teapot"`, 1),
		"duplicate key":  strings.Replace(good, "}\n]", "}\n,{\"key\":\"k\",\"type\":\"string\",\"value\":\"w\"}\n]", 1),
		"bad base64":     strings.Replace(good, `"value":"v"`, `"value":{"base64":"%%%"}`, 1),
		"bad score":      strings.Replace(good, `"type":"string","value":"v"`, `"type":"zset","members":[{"member":"m","score":"high"}]`, 1),
		"bad stream id":  strings.Replace(good, `"type":"string","value":"v"`, `"type":"stream","entries":[{"id":"x","values":["a","b"]}]`, 1),
		"unordered ids":  strings.Replace(good, `"type":"string","value":"v"`, `"type":"stream","entries":[{"id":"2-0","values":["a","b"]},{"id":"1-0","values":["a","b"]}]`, 1),
		"negative ttl":   strings.Replace(good, `"value":"v"`, `"value":"v","expire_at_ms":-5`, 1),
		"null value":     strings.Replace(good, `"value":"v"`, `"value":null`, 1),
		"empty hash":     strings.Replace(good, `"type":"string","value":"v"`, `"type":"hash","fields":[]`, 1),
		"odd stream kvs": strings.Replace(good, `"type":"string","value":"v"`, `"type":"stream","entries":[{"id":"1-0","values":["a"]}]`, 1),
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "snapshot.json")
			writeFile(t, file, content)
			for range 2 { // the failed Open must release the data directory
				s, err := Open(context.Background(), Config{DataDir: dir})
				if err == nil {
					s.Close()
					t.Fatal("Open accepted a bad snapshot")
				}
				for _, want := range []string{file, "move the file away"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
			}
			if got, _ := os.ReadFile(file); string(got) != content {
				t.Error("the bad snapshot was changed")
			}
		})
	}
	// The good one loads, to show the cases above fail for their own reason.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "snapshot.json"), good)
	s := openT(t, Config{DataDir: dir})
	if got := s.Client().Get(context.Background(), "k").Val(); got != "v" {
		t.Errorf("GET k = %q from the good snapshot", got)
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(context.Background(), Config{DataDir: dir}); err == nil {
		s2.Close()
		t.Fatal("two stores opened the same data directory")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error = %v, want it to say the directory is in use", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, Config{DataDir: dir}) // free again
}

func TestStaleTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "snapshot.json.123456.tmp")
	other := filepath.Join(dir, "admin.key")
	writeFile(t, stale, "half written")
	writeFile(t, other, "keep me")
	openT(t, Config{DataDir: dir})
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary snapshot still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("an unrelated file was touched: %v", err)
	}
}

func TestSnapshotOnlyWhenChanged(t *testing.T) {
	s := openT(t, Config{DataDir: t.TempDir()})
	ctx := context.Background()
	rdb := s.Client()
	saved := func() bool {
		t.Helper()
		wrote, err := s.emb.save(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return wrote
	}
	steps := []struct {
		what  string
		do    func() error
		saves bool
	}{
		{"nothing", func() error { return nil }, false},
		{"SET", func() error { return rdb.Set(ctx, "k", "v", 0).Err() }, true},
		{"GET", func() error { return rdb.Get(ctx, "k").Err() }, false},
		{"PUBLISH and PING", func() error { rdb.Publish(ctx, "c", "m"); return rdb.Ping(ctx).Err() }, false},
		{"read-only script", func() error { return rdb.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"k"}).Err() }, false},
		{"writing script", func() error { return rdb.Eval(ctx, "return redis.call('INCR', KEYS[1])", []string{"n"}).Err() }, true},
		{"MULTI/EXEC", func() error {
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Del(ctx, "n"); return nil })
			return err
		}, true},
		{"new connection", func() error {
			c := redis.NewClient(&redis.Options{Addr: s.emb.srv.Addr(), Password: "wrong"})
			defer c.Close()
			c.Ping(ctx)
			return nil
		}, false},
	}
	saved() // whatever Open did
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if got := saved(); got != step.saves {
			t.Errorf("after %s: snapshot written = %v, want %v", step.what, got, step.saves)
		}
	}
}

func TestRunSavesPeriodically(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Config{DataDir: dir, SnapshotInterval: 50 * time.Millisecond})
	startRun(t, s)
	if err := s.Client().Set(context.Background(), "periodic", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), `"periodic"`) {
			return errNotYet
		}
		return nil
	})
}

func TestRunLifecycle(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	if err := s.Run(ctx); err == nil {
		t.Error("a second concurrent Run returned nil")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after Close = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := s.emb.save(ctx, true); !errors.Is(err, errClosed) {
		t.Errorf("save after Close = %v, want errClosed", err)
	}
}

func TestUnsupportedTypeWarnsOnce(t *testing.T) {
	dir := t.TempDir()
	log := &logBuffer{}
	s, err := Open(context.Background(), Config{DataDir: dir, Logger: log.logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Client().PFAdd(ctx, "visitors", "a", "b")
	s.Client().Set(ctx, "k", "v", 0)
	for range 2 {
		if _, err := s.emb.save(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "cannot save keys of this type"); n != 1 {
		t.Errorf("%d warnings about the HyperLogLog, want 1; log:\n%s", n, log)
	}
	s2 := openT(t, Config{DataDir: dir})
	if n := s2.Client().Exists(ctx, "visitors", "k").Val(); n != 1 {
		t.Errorf("EXISTS visitors k = %d, want 1 (the string only)", n)
	}
}

// incrPair moves one unit from KEYS[2] to KEYS[1] atomically; their sum
// stays 0.
var incrPair = redis.NewScript(`
redis.call('INCRBY', KEYS[1], 1)
redis.call('INCRBY', KEYS[2], -1)
return 1`)

// TestSnapshotIsPointInTime saves while scripts change two keys together:
// every snapshot must hold both changes or neither. It also runs blocking
// commands and in-place list edits for the race detector.
func TestSnapshotIsPointInTime(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Config{DataDir: dir})
	rdb := s.Client()
	// Keys sorting between the pair make the copy take a while in between.
	pipe := rdb.Pipeline()
	for i := range 2000 {
		pipe.Set(context.Background(), fmt.Sprintf("{p}m%04d", i), "filler", 0)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				incrPair.Run(ctx, rdb, []string{"{p}a", "{p}z"})
				rdb.RPush(ctx, "queue", "job")
				rdb.LSet(ctx, "queue", 0, "edited")
				rdb.ZAdd(ctx, "z", redis.Z{Score: float64(i), Member: strconv.Itoa(i)})
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			rdb.Do(ctx, "BLPOP", "queue", "0.01")
			rdb.Do(ctx, "BZPOPMIN", "z", "0.01")
		}
	})
	defer func() {
		cancel()
		wg.Wait()
	}()
	time.Sleep(20 * time.Millisecond)
	for i := range 12 {
		if _, err := s.emb.save(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, "snapshot.json"))
		if err != nil {
			t.Fatal(err)
		}
		snap, err := decodeSnapshot(f)
		f.Close()
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		var a, b int
		for _, r := range snap.Keys {
			switch r.Key {
			case "{p}a":
				a, _ = strconv.Atoi(string(*r.Value))
			case "{p}z":
				b, _ = strconv.Atoi(string(*r.Value))
			}
		}
		if a+b != 0 {
			t.Fatalf("snapshot %d caught a script half done: a=%d b=%d", i, a, b)
		}
	}
}

// TestSnapshotWithSubscriber: a client waiting on Pub/Sub or a blocking pop
// must not hold snapshots back.
func TestSnapshotWithSubscriber(t *testing.T) {
	s := openT(t, Config{DataDir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := s.Client().Subscribe(ctx, "events")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	popped := make(chan error, 1)
	go func() { popped <- s.Client().BLPop(ctx, 0, "jobs").Err() }()
	time.Sleep(50 * time.Millisecond) // let BLPOP reach the server
	done := make(chan error, 1)
	go func() {
		_, err := s.emb.save(ctx, true)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a snapshot waited for a subscriber or a blocking pop")
	}
	s.Client().RPush(ctx, "jobs", "j1")
	if err := <-popped; err != nil {
		t.Errorf("BLPOP: %v", err)
	}
}

// TestSnapshotStreamGroupAtStart: a consumer group created at "0" on a new,
// empty stream (as a work queue creates it) survives a restart.
func TestSnapshotStreamGroupAtStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, Config{DataDir: dir})
	if err := s.Client().XGroupCreateMkStream(ctx, "jobs", "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openT(t, Config{DataDir: dir})
	groups, err := s2.Client().XInfoGroups(ctx, "jobs").Result()
	if err != nil || len(groups) != 1 || groups[0].Name != "workers" {
		t.Fatalf("groups after restore = %+v, %v; want workers", groups, err)
	}
	if err := s2.Client().XAdd(ctx, &redis.XAddArgs{Stream: "jobs", Values: []string{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	msgs, err := s2.Client().XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "c",
		Streams: []string{"jobs", ">"}, Count: 10, Block: -1}).Result()
	if err != nil || len(msgs) != 1 || len(msgs[0].Messages) != 1 {
		t.Fatalf("XREADGROUP after restore = %v, %v; want the new entry", msgs, err)
	}
}
