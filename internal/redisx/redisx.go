package redisx

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every Redis key when the configuration names no
// prefix.
const DefaultPrefix = "parley:"

// Prefix is the key prefix to use for the configured one: prefix itself, or
// [DefaultPrefix] when it is empty.
func Prefix(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// Script is a Lua script run by Redis, run with EVALSHA and sent in full
// (EVAL) when Redis does not know it yet. Create it with [NewScript].
type Script struct {
	name   string
	source string
	rs     *redis.Script
}

// NewScript returns the script in the file name of fsys. It is meant for
// package variables over an embedded file system, so a file that cannot be
// read is a build defect: NewScript panics, as regexp.MustCompile does.
func NewScript(fsys fs.FS, name string) *Script {
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(fmt.Sprintf("redisx: read script: %v", err))
	}
	return &Script{name: name, source: string(src), rs: redis.NewScript(string(src))}
}

// Name is the script's file name in its file system.
func (s *Script) Name() string { return s.name }

// Source is the script's text.
func (s *Script) Source() string { return s.source }

// Hash is the SHA1 of the script's text, as EVALSHA names it.
func (s *Script) Hash() string { return s.rs.Hash() }

// Run runs the script with EVALSHA and, if Redis answers NOSCRIPT, with
// EVAL.
func (s *Script) Run(ctx context.Context, rdb redis.Scripter, keys []string, args ...any) *redis.Cmd {
	return s.rs.Run(ctx, rdb, keys, args...)
}

// EvalSha runs the script with EVALSHA only, for pipelines: the caller
// handles NOSCRIPT (see [IsNoScript]), for instance by [Preload] and a
// second try.
func (s *Script) EvalSha(ctx context.Context, rdb redis.Scripter, keys []string, args ...any) *redis.Cmd {
	return s.rs.EvalSha(ctx, rdb, keys, args...)
}

// Preload registers scripts with Redis so that their first run does not pay
// for a NOSCRIPT round trip. On a Redis Cluster client it loads each on
// every node (go-redis sends SCRIPT LOAD to each shard, masters and
// replicas), as the packages' Load methods always did.
func Preload(ctx context.Context, rdb redis.Scripter, scripts ...*Script) error {
	for _, s := range scripts {
		if err := s.rs.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("load %s: %w", s.name, err)
		}
	}
	return nil
}

// IsNoScript reports whether err is Redis' answer to EVALSHA of a script it
// does not know.
func IsNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// Detached returns a context that keeps ctx's values but is never
// canceled, whose deadline is d. Commands sent under it must run even when
// their caller has left (a turn's commit, a lock's release), and d bounds
// them through the client's socket deadlines and pool wait. Unlike
// context.WithDeadline it starts no timer: a turn path that detaches on
// every turn does not pay for one.
func Detached(ctx context.Context, d time.Time) context.Context {
	return detached{Context: context.WithoutCancel(ctx), deadline: d}
}

type detached struct {
	context.Context
	deadline time.Time
}

func (c detached) Deadline() (time.Time, bool) { return c.deadline, true }
