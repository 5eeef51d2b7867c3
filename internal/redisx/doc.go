// Package redisx is what Parley's Redis-backed packages share: server-side
// Lua scripts read from an embedded file system, loading them ahead of the
// first call (on every node of a Redis Cluster), and the key prefix
// default.
//
// Each package keeps its own scripts (`//go:embed lua/*.lua`, each file
// opening with its KEYS/ARGV header) and names them here:
//
//	//go:embed lua/*.lua
//	var luaFS embed.FS
//
//	var setScript = redisx.NewScript(luaFS, "lua/set.lua")
//
//	func (s *Store) Load(ctx context.Context) error {
//		return redisx.Preload(ctx, s.rdb, setScript)
//	}
//
// A [Script] is immutable once built: safe for concurrent use.
package redisx
