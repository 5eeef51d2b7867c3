#!/usr/bin/env bash
# Runs every check Parley has: gofmt, go vet, and the whole test suite with
# the race detector against a real redis-server started here on a free
# loopback port (installed from Debian packages when missing) and stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

log() { printf '== %s\n' "$*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi

workdir=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 50); do
  candidate=$(( 20000 + RANDOM % 20000 ))
  if port_free "$candidate"; then port=$candidate; break; fi
done
[ -n "$port" ] || { log "no free port found for redis-server"; exit 1; }

log "starting redis-server on 127.0.0.1:$port"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$workdir" --logfile "$workdir/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 100); do
  if ! port_free "$port"; then break; fi
  sleep 0.1
done
port_free "$port" && { log "redis-server did not start:"; cat "$workdir/redis.log" >&2; exit 1; }

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  log "these files need gofmt:"; echo "$unformatted" >&2; exit 1
fi

log "go vet"
go vet ./...

log "go test -race"
export PARLEY_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
export PARLEY_TEST_REDIS_BIN="$(command -v redis-server)"
export PARLEY_TEST_REQUIRE_REDIS=1
go test -race -count=1 -timeout 30m "$@" ./...
log "all tests passed"
