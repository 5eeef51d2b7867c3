#!/usr/bin/env bash
# Scale benchmark of the analytics queries: starts a redis-server on a free
# loopback port, loads synthetic turns with tools/analytics-load (10 million
# over 30 days unless told otherwise), checks that the query answers match
# the loader's exact count and times the queries, then stops Redis.
# Usage: scripts/analytics-scale.sh [turns] [benchtime]
# Not part of make test: the load takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v redis-server >/dev/null || { echo "redis-server is needed (make test installs it)" >&2; exit 1; }
turns=${1:-10000000}
benchtime=${2:-20x}

work=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { while :; do p=$(( 20000 + RANDOM % 20000 )); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
url="redis://127.0.0.1:$port/0"

echo "== redis-server $(redis-server --version | awk '{print $3}') on $url; $(nproc) CPUs"
echo "== loading $turns turns"
go run ./tools/analytics-load -redis "$url" -turns "$turns" -days 30 -expect "$work/expect.json" 2>/dev/null
echo "== query benchmark"
PARLEY_SCALE_REDIS_URL="$url" PARLEY_SCALE_EXPECT="$work/expect.json" \
  go test -run '^$' -bench BenchmarkScaleQuery -benchtime "$benchtime" -v ./internal/analytics/ | grep -v '^=== '
