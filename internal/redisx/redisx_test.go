package redisx_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/parleyhq/parley/internal/redisx"
	"github.com/parleyhq/parley/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// uniqueScripts returns a file system with a script no Redis has seen yet
// (its text names the test's unique prefix), so that NOSCRIPT is certain
// without flushing a shared server's script cache.
func uniqueScripts(t *testing.T, prefix string) fstest.MapFS {
	t.Helper()
	return fstest.MapFS{"lua/incr.lua": {Data: []byte(`-- ` + prefix + `
-- KEYS[1] counter
-- ARGV[1] step
return redis.call('INCRBY', KEYS[1], ARGV[1])
`)}}
}

func TestScript(t *testing.T) {
	testredis.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		prefix := testredis.Prefix(t)
		key := prefix + "n"
		t.Cleanup(func() { rdb.Del(context.Background(), key) })
		s := redisx.NewScript(uniqueScripts(t, prefix), "lua/incr.lua")

		sum := sha1.Sum([]byte(s.Source()))
		if s.Hash() != hex.EncodeToString(sum[:]) || s.Name() != "lua/incr.lua" {
			t.Fatalf("hash %s, name %s", s.Hash(), s.Name())
		}
		if err := s.EvalSha(ctx, rdb, []string{key}, 1).Err(); !redisx.IsNoScript(err) {
			t.Fatalf("EvalSha of an unknown script: %v, want NOSCRIPT", err)
		}
		if n, err := s.Run(ctx, rdb, []string{key}, 2).Int(); err != nil || n != 2 {
			t.Fatalf("Run = %d, %v; want 2 (EVAL after NOSCRIPT)", n, err)
		}
		if err := redisx.Preload(ctx, rdb, s); err != nil {
			t.Fatal(err)
		}
		var cmd *redis.Cmd
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmd = s.EvalSha(ctx, p, []string{key}, 3)
			return nil
		}); err != nil {
			t.Fatalf("pipelined EvalSha after Preload: %v", err)
		}
		if n, err := cmd.Int(); err != nil || n != 5 {
			t.Fatalf("EvalSha = %d, %v; want 5", n, err)
		}
	})
}

func TestPreloadNamesTheFailingScript(t *testing.T) {
	rdb := testredis.Embedded(t)
	bad := redisx.NewScript(fstest.MapFS{"lua/bad.lua": {Data: []byte("return (")}}, "lua/bad.lua")
	err := redisx.Preload(context.Background(), rdb, bad)
	if err == nil || !strings.Contains(err.Error(), "lua/bad.lua") {
		t.Fatalf("Preload of a broken script: %v, want an error naming lua/bad.lua", err)
	}
}

func TestNewScriptPanicsOnAMissingFile(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewScript of a missing file did not panic")
		}
	}()
	redisx.NewScript(fstest.MapFS{}, "lua/missing.lua")
}

func TestIsNoScript(t *testing.T) {
	if redisx.IsNoScript(nil) || redisx.IsNoScript(redis.Nil) {
		t.Error("IsNoScript of nil or redis.Nil")
	}
}

func TestPrefix(t *testing.T) {
	for in, want := range map[string]string{"": redisx.DefaultPrefix, "x:": "x:", "parley:": "parley:"} {
		if got := redisx.Prefix(in); got != want {
			t.Errorf("Prefix(%q) = %q, want %q", in, got, want)
		}
	}
	if redisx.DefaultPrefix != "parley:" {
		t.Errorf("DefaultPrefix = %q", redisx.DefaultPrefix)
	}
}
