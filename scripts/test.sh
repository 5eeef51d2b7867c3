#!/usr/bin/env bash
# Runs every check Parley has: gofmt, go vet, golangci-lint (the version
# pinned below, installed on first use), and the whole test suite with
# the race detector against a real redis-server started here on a free
# loopback port and stopped at exit, and the console's test in a headless
# Chromium (both installed from Debian packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

log() { printf '== %s\n' "$*" >&2; }

# redis-server for the Redis-backed tests, Chromium for the console's
# browser test, promtool (Debian's prometheus package) for the alert rules.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
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
# Ports are drawn from 10000-21999, so that a cluster node's bus port (the
# port + 10000) stays below Linux's ephemeral range (32768 and up), where an
# outgoing connection could take it between the check and the bind.
random_port() { echo $(( 10000 + RANDOM % 12000 )); }
port=""
for _ in $(seq 50); do
  candidate=$(random_port)
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
export PARLEY_TEST_REQUIRE_BROWSER=1
# Screenshots and other files tests leave for people to look at.
export PARLEY_TEST_OUTPUT_DIR="${PARLEY_TEST_OUTPUT_DIR:-$PWD/test-output}"
go test -race -count=1 -timeout 30m "$@" ./...

# The deployment files: the Compose file and the Kubernetes kustomizations
# (a Go module of its own, so that their libraries stay out of Parley's
# build), the dashboard's queries (through promtool), and the Prometheus
# configuration and alert rules with their unit tests.
log "deploy: kustomizations, Prometheus rules"
(cd deploy && go vet ./... && PARLEY_TEST_REQUIRE_PROMTOOL=1 go test -count=1 ./...)
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
sed "s#/etc/prometheus/alerts.yml#$PWD/deploy/prometheus/alerts.yml#" deploy/compose/prometheus.yml >"$workdir/prometheus.yml"
promtool check config "$workdir/prometheus.yml"

# The Redis-backed packages once more against a three-node Redis Cluster
# (each node owning a third of the slots): any multi-key operation whose keys
# are not hash-tagged into one slot fails there with CROSSSLOT, and any
# operation that assumes one server (SCAN, PUBLISH/SUBSCRIBE) is exercised
# across nodes. PARLEY_TEST_CLUSTER=0 skips this step.
if [ "${PARLEY_TEST_CLUSTER:-1}" != 0 ]; then
  cports=()
  for _ in $(seq 200); do
    candidate=$(random_port)
    if [ "$candidate" != "$port" ] && port_free "$candidate" && port_free "$((candidate + 10000))"; then
      case " ${cports[*]} " in *" $candidate "*) continue ;; esac
      cports+=("$candidate")
      [ "${#cports[@]}" = 3 ] && break
    fi
  done
  [ "${#cports[@]}" = 3 ] || { log "no free ports found for the cluster nodes"; exit 1; }
  cluster_pids=()
  trap 'for p in "${cluster_pids[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT
  log "starting a three-node Redis Cluster on 127.0.0.1:${cports[*]}"
  for cp in "${cports[@]}"; do
    mkdir -p "$workdir/cluster-$cp"
    redis-server --port "$cp" --bind 127.0.0.1 --save '' --appendonly no --cluster-enabled yes \
      --cluster-config-file "$workdir/cluster-$cp/nodes.conf" --dir "$workdir/cluster-$cp" \
      --logfile "$workdir/cluster-$cp/redis.log" --daemonize no &
    cluster_pids+=($!)
  done
  for cp in "${cports[@]}"; do
    for _ in $(seq 100); do port_free "$cp" || break; sleep 0.1; done
    if port_free "$cp"; then
      log "cluster node on port $cp did not start:"; cat "$workdir/cluster-$cp/redis.log" >&2; exit 1
    fi
  done
  redis-cli -p "${cports[0]}" cluster addslotsrange 0 5460 >/dev/null
  redis-cli -p "${cports[1]}" cluster addslotsrange 5461 10922 >/dev/null
  redis-cli -p "${cports[2]}" cluster addslotsrange 10923 16383 >/dev/null
  redis-cli -p "${cports[0]}" cluster meet 127.0.0.1 "${cports[1]}" >/dev/null
  redis-cli -p "${cports[0]}" cluster meet 127.0.0.1 "${cports[2]}" >/dev/null
  ready=""
  for _ in $(seq 200); do
    ready=yes
    for cp in "${cports[@]}"; do
      info=$(redis-cli -p "$cp" cluster info)
      echo "$info" | grep -q cluster_state:ok && echo "$info" | grep -q cluster_known_nodes:3 || ready=""
    done
    [ -n "$ready" ] && break
    sleep 0.1
  done
  [ -n "$ready" ] || { log "cluster did not become ready"; redis-cli -p "${cports[0]}" cluster info >&2; exit 1; }
  pkgs=$(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
    | awk '/internal\/testredis/ {print $1}')
  log "go test -race against Redis Cluster: $(echo $pkgs | wc -w) packages"
  PARLEY_TEST_REDIS_URL="redis://127.0.0.1:${cports[0]}/0?cluster=true" \
    go test -race -count=1 -timeout 30m $pkgs
fi
# golangci-lint with .golangci.yml, at the version pinned here: installed
# from the Go module proxy into GOPATH/bin when missing or another version
# (a first install builds it, a few minutes). PARLEY_LINT=0 skips this step.
LINT_VERSION=2.15.0
if [ "${PARLEY_LINT:-1}" != 0 ]; then
  lint="$(go env GOPATH)/bin/golangci-lint"
  if ! "$lint" version 2>/dev/null | grep -q "version $LINT_VERSION "; then
    log "installing golangci-lint $LINT_VERSION"
    GOBIN="$(dirname "$lint")" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$LINT_VERSION"
  fi
  log "golangci-lint"
  "$lint" run ./...
fi
log "all tests passed"
