#!/usr/bin/env bash
# Load test of the web channel with a real Redis: builds parley, starts a
# redis-server and parley on free loopback ports, deploys a one-intent bot,
# drives it with tools/loadgen, and stops everything it started.
# Usage: scripts/load.sh [loadgen flags, e.g. -c 64 -d 30s]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v redis-server >/dev/null || { echo "redis-server is needed (make test installs it)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { while :; do p=$(( 20000 + RANDOM % 20000 )); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }

go build -o "$work/parley" ./cmd/parley
go build -o "$work/loadgen" ./tools/loadgen

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
pport=$(free_port)
key=load-admin-key-0123456789
PARLEY_ADDR=127.0.0.1:$pport REDIS_URL=redis://127.0.0.1:$rport/0 PARLEY_ADMIN_KEY=$key PARLEY_LOG_LEVEL=warn \
  PARLEY_SECRET_KEY=$(head -c 32 /dev/urandom | base64) PARLEY_DATA_DIR="$work/data" "$work/parley" serve 2>"$work/parley.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$pport/readyz" >/dev/null && break; sleep 0.1; done

mkdir -p "$work/bot/intents"
cat > "$work/bot/bot.yaml" <<YAML
name: loadbot
channels:
  web:
    token: load-web-token-123
nlu:
  Hello: [hello]
YAML
cat > "$work/bot/intents/Hello.lua" <<'LUA'
function handle(event, session)
  session.turns = (session.turns or 0) + 1
  return {text = "Hello " .. event.user .. ", turn " .. session.turns, options = {"again"}}
end
LUA
PARLEY_URL=http://127.0.0.1:$pport PARLEY_ADMIN_KEY=$key "$work/parley" deploy "$work/bot" >/dev/null

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/'), loadgen, parley and redis on the same host"
"$work/loadgen" -url "http://127.0.0.1:$pport" -bot loadbot -token load-web-token-123 "$@"
