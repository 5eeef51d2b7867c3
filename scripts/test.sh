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
unformatted=$(gofmt -l .)
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

# The Redis-backed packages once more against Redis Cluster (one node owning
# every slot): any multi-key operation whose keys are not hash-tagged into one
# slot fails there with CROSSSLOT. PARLEY_TEST_CLUSTER=0 skips this step.
if [ "${PARLEY_TEST_CLUSTER:-1}" != 0 ]; then
  cport=""
  for _ in $(seq 50); do
    candidate=$(( 20000 + RANDOM % 20000 ))
    if [ "$candidate" != "$port" ] && port_free "$candidate"; then cport=$candidate; break; fi
  done
  [ -n "$cport" ] || { log "no free port found for the cluster node"; exit 1; }
  mkdir -p "$workdir/cluster"
  log "starting a one-node Redis Cluster on 127.0.0.1:$cport"
  redis-server --port "$cport" --bind 127.0.0.1 --save '' --appendonly no --cluster-enabled yes \
    --cluster-config-file "$workdir/cluster/nodes.conf" --dir "$workdir/cluster" \
    --logfile "$workdir/cluster/redis.log" --daemonize no &
  cluster_pid=$!
  trap 'kill "$cluster_pid" 2>/dev/null || true; cleanup' EXIT
  for _ in $(seq 100); do port_free "$cport" || break; sleep 0.1; done
  redis-cli -p "$cport" cluster addslotsrange 0 16383 >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "$cport" cluster info | grep -q cluster_state:ok && break
    sleep 0.1
  done
  redis-cli -p "$cport" cluster info | grep -q cluster_state:ok || { log "cluster did not become ready"; exit 1; }
  pkgs=$(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
    | awk '/internal\/testredis/ {print $1}')
  log "go test -race against Redis Cluster: $(echo $pkgs | wc -w) packages"
  PARLEY_TEST_REDIS_URL="redis://127.0.0.1:$cport/0?cluster=true" \
    go test -race -count=1 -timeout 30m $pkgs
fi
log "all tests passed"
