#!/usr/bin/env bash
# Throughput and latency of Parley's turns beside a floor and peers, in one
# run on this machine:
#
#   web    Parley's web channel; the floor (tools/floor: bare gin plus one
#          pipelined Redis round trip, no sandbox); the Bot Framework SDK for
#          Node with in-memory state (tools/peers/botframework.js)
#   alexa  an Alexa IntentRequest with a slot, skill id and timestamp checked,
#          signature not; Parley (session in Redis), the floor, and the ASK
#          SDK for Node on its express adapter (tools/peers/ask.js)
#
# Every handler counts the turns of its session. The script builds Parley and
# the floor, installs the peers with npm into a cache directory, starts a
# private redis-server for each server, every server on free loopback ports, and drives
# them with wrk (one thread, 32 connections, turns spread over 10,000
# conversations) in rounds that alternate between the servers. With taskset
# and at least two cores, the servers run on the last core and redis-server
# and wrk on the first. It prints each server's median throughput, p50 and
# p99, the ratios against the targets, the throughput ratios round by
# round (servers of one round run one after the other, so these pair
# measurements taken under the same conditions), and the load average it
# ran under.
#
# Usage: scripts/perf.sh [web|alexa] [--rounds 3] [--duration 5] [--warmup 5] [--connections 32]
#          [--conversations 10000] [--servers floor,parley,botframework]
#          [--parley-env NAME=VALUE]... [--base GIT-REF] [--base-env NAME=VALUE]...
#          [--profile DIR]
#
# --parley-env passes a setting to Parley (e.g. PARLEY_ANALYTICS=off).
# --base REF also builds Parley from a git ref (e.g. main, or HEAD) and
# measures it as the server "base" in the same rounds, for before/after
# ratios; --base-env passes a setting to it alone (after --parley-env's).
# --profile DIR turns Parley's pprof endpoints on and saves CPU, allocation,
# mutex and block profiles taken during its first measured round, and
# prints Redis's time per command during that round.
# The peers are installed with npm ci into PERF_CACHE (default
# ~/.cache/parley-perf), once per version of tools/peers/package-lock.json.
# scripts/load.sh is this script with Parley alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

mode=web
case "${1:-}" in web | alexa) mode=$1; shift ;; esac
rounds=3 duration=5 warmup=5 connections=32 conversations=10000 servers="" profile="" base_ref=""
parley_env=() base_env=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --conversations) conversations=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --parley-env) parley_env+=("$2"); shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --base) base_ref=$2; shift 2 ;;
    --base-env) base_env+=("$2"); shift 2 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "perf.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$servers" ]; then
  if [ "$mode" = web ]; then servers=floor,parley,botframework; else servers=floor,parley,ask; fi
fi
IFS=, read -r -a server_list <<<"$servers"
if [ -n "$base_ref" ]; then
  git rev-parse --verify -q "$base_ref^{commit}" >/dev/null || { echo "perf.sh: no commit $base_ref" >&2; exit 2; }
  server_list+=(base)
  servers="$servers,base"
fi

need() { command -v "$1" >/dev/null || { echo "perf.sh: $1 is needed${2:+ ($2)}" >&2; exit 1; }; }
need go
need curl
need redis-server "make test installs it"
if ! command -v wrk >/dev/null; then
  echo "perf.sh: installing wrk" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; } ||
    { echo "perf.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
fi
peers=()
for s in "${server_list[@]}"; do
  case "$s" in
    floor | parley | base) ;;
    botframework | ask) peers+=("$s") ;;
    *) echo "perf.sh: unknown server $s (floor, parley, botframework, ask)" >&2; exit 2 ;;
  esac
done
if [ ${#peers[@]} -gt 0 ]; then need node; need npm; fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { while :; do p=$((20000 + RANDOM % 20000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
wait_ready() { # url, name, log
  for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "perf.sh: $2 did not start; its log:" >&2; tail -20 "$3" >&2; exit 1
}

# Cores: servers on the last one, redis-server and wrk on the first.
srv=() cli=() pinning="none (taskset missing or one core)"
cores=$(nproc)
if command -v taskset >/dev/null && [ "$cores" -ge 2 ]; then
  srv=(taskset -c $((cores - 1))) cli=(taskset -c 0)
  pinning="servers on core $((cores - 1)); redis-server and wrk on core 0"
fi

echo "building parley and the floor..." >&2
go build -o "$work/parley" ./cmd/parley
go build -o "$work/floor" ./tools/floor
if [ -n "$base_ref" ]; then
  echo "building parley from $base_ref..." >&2
  mkdir "$work/base-src"
  git archive "$base_ref" | tar -x -C "$work/base-src"
  (cd "$work/base-src" && go build -o "$work/parley-base" ./cmd/parley)
fi

if [ ${#peers[@]} -gt 0 ]; then
  cache="${PERF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parley-perf}/peers-$(sha256sum tools/peers/package-lock.json | cut -c1-12)"
  if [ ! -d "$cache/node_modules" ]; then
    echo "installing the peers with npm into $cache..." >&2
    mkdir -p "$cache"
    cp tools/peers/package.json tools/peers/package-lock.json "$cache/"
    (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  export NODE_PATH="$cache/node_modules" NODE_ENV=production
fi

token=perf-web-token-0123456789
skill=amzn1.ask.skill.00000000-1111-2222-3333-444444444444
key=perf-admin-key-0123456789
secret_key=$(head -c 32 /dev/urandom | base64)
bot=perfbot

# Every server gets a redis-server of its own, so that what one server
# stores (transcripts, histories) or writes in the background after its
# round (the analytics flush) does not weigh on the others' rounds.
declare -A url pid rport rpid
for s in "${server_list[@]}"; do
  rp=$(free_port)
  mkdir -p "$work/redis-$s"
  "${cli[@]}" redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis-$s" \
    --logfile "$work/redis-$s/redis.log" &
  pids+=($!)
  rport[$s]=$rp rpid[$s]=$!
  for _ in $(seq 100); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

for s in "${server_list[@]}"; do
  port=$(free_port)
  redis_url=redis://127.0.0.1:${rport[$s]}/0
  case "$s" in
    parley | base)
      bin=$work/parley prefix=parley:
      [ "$s" = base ] && bin=$work/parley-base prefix=base:
      env=(PARLEY_ADDR=127.0.0.1:$port REDIS_URL=$redis_url PARLEY_ADMIN_KEY=$key PARLEY_LOG_LEVEL=warn
        PARLEY_DATA_DIR="$work/data-$s" PARLEY_KEY_PREFIX=$prefix PARLEY_SECRET_KEY="$secret_key")
      [ -n "$profile" ] && [ "$s" = parley ] && env+=(PARLEY_PPROF=on)
      [ "$s" = base ] && env+=("${parley_env[@]}" "${base_env[@]}") || env+=("${parley_env[@]}")
      env "${env[@]}" "${srv[@]}" "$bin" serve 2>"$work/$s.log" &
      pids+=($!) pid[$s]=$!
      api=http://127.0.0.1:$port
      wait_ready "$api/readyz" "$s" "$work/$s.log"
      admin() { curl -sf -X PUT "$api$1" -H "Authorization: Bearer $key" --data-binary "$2" >/dev/null ||
        { echo "perf.sh: PUT $1 failed" >&2; exit 1; }; }
      admin /v1/bots/$bot '{}'
      admin /v1/bots/$bot/channels/web "{\"token\": \"$token\"}"
      admin /v1/bots/$bot/channels/alexa "{\"skill_id\": \"$skill\", \"verify_signature\": \"false\"}"
      admin /v1/bots/$bot/nlu '{"intents": {"Hello": ["hello", "hi there", "good morning"]}}'
      admin /v1/bots/$bot/intents/Hello 'function handle(event, session)
  session.turns = (session.turns or 0) + 1
  return {text = "Hello " .. event.user .. ", turn " .. session.turns, options = {"again"}}
end'
      admin /v1/bots/$bot/intents/OrderPizza 'function handle(event, session)
  session.turns = (session.turns or 0) + 1
  return {text = "A " .. (event.slots.size or "medium") .. " pizza, turn " .. session.turns .. ". Anything else?",
          reprompt = "Anything else?", expect = "OrderPizza"}
end'
      url[$s]=$api/hooks/$bot/$mode
      ;;
    floor)
      "${srv[@]}" "$work/floor" -addr 127.0.0.1:"$port" -redis "$redis_url" -token "$token" -skill "$skill" 2>"$work/floor.log" &
      pids+=($!) pid[floor]=$!
      wait_ready "http://127.0.0.1:$port/readyz" floor "$work/floor.log"
      url[floor]=http://127.0.0.1:$port/hooks/$bot/$mode
      ;;
    botframework)
      PORT=$port "${srv[@]}" node tools/peers/botframework.js 2>"$work/botframework.log" &
      pids+=($!) pid[botframework]=$!
      wait_ready "http://127.0.0.1:$port/readyz" botframework "$work/botframework.log"
      url[botframework]=http://127.0.0.1:$port/api/messages
      ;;
    ask)
      PORT=$port SKILL_ID=$skill "${srv[@]}" node tools/peers/ask.js 2>"$work/ask.log" &
      pids+=($!) pid[ask]=$!
      wait_ready "http://127.0.0.1:$port/readyz" ask "$work/ask.log"
      url[ask]=http://127.0.0.1:$port/
      ;;
  esac
done

script_of() {
  case "$1:$mode" in
    botframework:*) echo tools/wrk/botframework.lua ;;
    *:alexa) echo tools/wrk/alexa.lua ;;
    *) echo tools/wrk/web.lua ;;
  esac
}
# run SERVER SECONDS: one wrk run; prints its RESULT line.
run() {
  PERF_TOKEN=$token PERF_SKILL=$skill PERF_CONVERSATIONS=$conversations \
    "${cli[@]}" wrk -t1 -c"$connections" -d"${2}s" --timeout 10s -s "$(script_of "$1")" "${url[$1]}" | grep '^RESULT'
}
field() { sed -E "s/.* $1=([0-9]+).*/\1/" <<<"$2"; }

# check SERVER: one turn by curl, whose answer must be the handler's.
check() {
  local body want=", turn 1" header=()
  case "$1:$mode" in
    botframework:*)
      body='{"type":"message","id":"check-1","channelId":"test","serviceUrl":"http://127.0.0.1:9/","from":{"id":"check-user"},"recipient":{"id":"perf-bot"},"conversation":{"id":"check-conv"},"text":"hello","deliveryMode":"expectReplies"}' ;;
    *:alexa)
      want="A large pizza, turn 1"
      body='{"version":"1.0","session":{"new":true,"sessionId":"amzn1.echo-api.session.check","application":{"applicationId":"'$skill'"},"attributes":{},"user":{"userId":"amzn1.ask.account.check"}},"context":{"System":{"application":{"applicationId":"'$skill'"},"user":{"userId":"amzn1.ask.account.check"},"device":{"deviceId":"amzn1.ask.device.check","supportedInterfaces":{}},"apiEndpoint":"https://api.amazonalexa.com"}},"request":{"type":"IntentRequest","requestId":"amzn1.echo-api.request.check","timestamp":"'$(date -u +%Y-%m-%dT%H:%M:%SZ)'","locale":"en-US","intent":{"name":"OrderPizza","confirmationStatus":"NONE","slots":{"size":{"name":"size","value":"large","confirmationStatus":"NONE"}}}}}' ;;
    *)
      header=(-H "Authorization: Bearer $token")
      body='{"user":"check-user","text":"hello"}' ;;
  esac
  local got
  got=$(curl -s "${header[@]}" -H 'Content-Type: application/json' --data-binary "$body" "${url[$1]}")
  if ! grep -qF "$want" <<<"$got"; then
    echo "perf.sh: $1 did not answer a turn as expected (want \"$want\"): $got" >&2
    exit 1
  fi
}
for s in "${server_list[@]}"; do check "$s"; done

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# cpu_ticks PID: the process's user and system time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
load_before=$(loadavg)
echo "machine: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "versions: $(go version | cut -d' ' -f3), redis $(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/'), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)${NODE_PATH:+, node $(node --version)}"
echo "pinning: $pinning"
echo "load: wrk -t1 -c$connections, turns over $conversations conversations, $rounds rounds of ${duration}s per server, alternating"
[ ${#parley_env[@]} -gt 0 ] && echo "parley settings: ${parley_env[*]}"
[ -n "$base_ref" ] && echo "base: $base_ref ($(git rev-parse --short "$base_ref"))${base_env:+, settings ${base_env[*]}}"
echo "load average before (1, 5, 15 min): $load_before"

# Warm-up: every conversation is visited a few times first, so that the
# rounds measure warm turns (state, user index and analytics caches in
# place) rather than conversations' first turns.
echo "warming up (${warmup}s per server)..." >&2
for s in "${server_list[@]}"; do run "$s" "$warmup" >/dev/null; done

results=$work/results
: >"$results"
profiled=""
for r in $(seq "$rounds"); do
  n=${#server_list[@]}
  for i in $(seq 0 $((n - 1))); do
    s=${server_list[$(((i + r - 1) % n))]}
    cpu0=$(cpu_ticks "${pid[$s]}") redis0=$(cpu_ticks "${rpid[$s]}")
    if [ -n "$profile" ] && [ "$s" = parley ] && [ -z "$profiled" ]; then
      profiled=1
      mkdir -p "$profile"
      purl=${url[parley]%%/hooks/*}/debug/pprof
      auth=(-H "Authorization: Bearer $key")
      for p in allocs mutex block; do curl -sf "${auth[@]}" "$purl/$p" -o "$profile/$p.before.pb.gz"; done
      "${cli[@]}" redis-cli -p "${rport[parley]}" config resetstat >/dev/null
      curl -sf "${auth[@]}" "$purl/profile?seconds=$((duration - 1))" -o "$profile/cpu.pb.gz" &
      cpu_pid=$!
      line=$(run "$s" "$duration")
      wait "$cpu_pid"
      for p in allocs mutex block; do curl -sf "${auth[@]}" "$purl/$p" -o "$profile/$p.pb.gz"; done
      cp "$work/parley" "$profile/parley"
      "${cli[@]}" redis-cli -p "${rport[parley]}" info commandstats | tr -d '\r' >"$profile/commandstats.txt"
      profiled_line=$line
    else
      line=$(run "$s" "$duration")
    fi
    line="$line cpu_us=$((($(cpu_ticks "${pid[$s]}") - cpu0) * 1000000 / hz)) redis_us=$((($(cpu_ticks "${rpid[$s]}") - redis0) * 1000000 / hz))"
    echo "$s $r $(loadavg | cut -d' ' -f1) $line" >>"$results"
    req=$(field requests "$line") dur=$(field duration_us "$line")
    errors=$(($(field connect "$line") + $(field read "$line") + $(field write "$line") + $(field status "$line") + $(field timeout "$line")))
    printf '  round %d %-13s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5.0f us/req  redis %4.0f us/req  errors %d  load %s\n' \
      "$r" "$s" "$(awk -v n="$req" -v d="$dur" 'BEGIN {print n / (d / 1e6)}')" \
      "$(awk -v v="$(field p50_us "$line")" 'BEGIN {print v / 1000}')" "$(awk -v v="$(field p99_us "$line")" 'BEGIN {print v / 1000}')" \
      "$(awk -v c="$(field cpu_us "$line")" -v n="$req" 'BEGIN {print c / n}')" \
      "$(awk -v c="$(field redis_us "$line")" -v n="$req" 'BEGIN {print c / n}')" "$errors" "$(loadavg | cut -d' ' -f1)"
  done
done
load_after=$(loadavg)

# Medians per server, then the ratios against the targets.
awk -v mode="$mode" -v order="$servers" -v load_before="$load_before" -v load_after="$load_after" '
function val(line, name,   m) { return match(line, " " name "=[0-9]+") ? substr(line, RSTART + length(name) + 2, RLENGTH - length(name) - 2) + 0 : 0 }
# pairs: the per-round throughput ratios of server a to server b (the two
# ran one after the other, under the same conditions as far as this
# machine allows), and their median.
function pairs(a, b,   r, list, out) {
  for (r = 1; r <= rounds; r++) if ((a, r) in byRound && (b, r) in byRound) {
    list = list " " byRound[a, r] / byRound[b, r]; out = out sprintf(" %.2f", byRound[a, r] / byRound[b, r])
  }
  return list == "" ? "" : sprintf("%s (median %.2fx)", out, median(list))
}
function median(list,   a, n, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  s = $1
  byRound[s, $2] = val($0, "requests") / (val($0, "duration_us") / 1e6)
  if ($2 + 0 > rounds) rounds = $2 + 0
  rps[s] = rps[s] " " byRound[s, $2]
  p50[s] = p50[s] " " val($0, "p50_us") / 1000
  p99[s] = p99[s] " " val($0, "p99_us") / 1000
  cpu[s] = cpu[s] " " val($0, "cpu_us") / val($0, "requests")
  rcpu[s] = rcpu[s] " " val($0, "redis_us") / val($0, "requests")
  err[s] += val($0, "connect") + val($0, "read") + val($0, "write") + val($0, "status") + val($0, "timeout")
}
END {
  n = split(order, names, ",")
  printf "\n%s turns, medians of the rounds\n", mode
  printf "| %-13s | %9s | %8s | %8s | %11s | %13s | %6s |\n", "server", "req/s", "p50 ms", "p99 ms", "cpu us/req", "redis us/req", "errors"
  printf "|---------------|-----------|----------|----------|-------------|---------------|--------|\n"
  for (i = 1; i <= n; i++) {
    s = names[i]; R[s] = median(rps[s]); P50[s] = median(p50[s]); P99[s] = median(p99[s]); C[s] = median(cpu[s])
    printf "| %-13s | %9.0f | %8.2f | %8.2f | %11.0f | %13.0f | %6d |\n", s, R[s], P50[s], P99[s], C[s], median(rcpu[s]), err[s]
  }
  print ""
  met = 1; checked = 0
  if ("parley" in R && "floor" in R && mode == "web") {
    checked = 1
    a = R["parley"] / R["floor"]; b = P99["parley"] / P99["floor"]
    printf "parley/floor throughput %.2fx (target >= 0.60x): %s\n", a, (a >= 0.6 ? "met" : "NOT met")
    printf "parley/floor p99        %.2fx (target <= 2.00x): %s\n", b, (b <= 2 ? "met" : "NOT met")
    printf "parley/floor cpu per turn %.2fx (its inverse, %.2fx, is the throughput ratio on a core of their own)\n", C["parley"] / C["floor"], C["floor"] / C["parley"]
    printf "parley/floor throughput round by round:%s\n", pairs("parley", "floor")
    if (a < 0.6 || b > 2) met = 0
  } else if ("parley" in R && "floor" in R) {
    printf "parley/floor throughput %.2fx, p99 %.2fx (no target)\n", R["parley"] / R["floor"], P99["parley"] / P99["floor"]
  }
  if ("parley" in R && "ask" in R) {
    checked = 1
    a = R["parley"] / R["ask"]; b = P99["parley"] / P99["ask"]
    printf "parley/ask throughput   %.2fx (target >= 3.00x): %s\n", a, (a >= 3 ? "met" : "NOT met")
    printf "parley/ask p99          %.2fx (target < 1.00x): %s\n", b, (b < 1 ? "met" : "NOT met")
    printf "parley/ask cpu per turn %.2fx\n", C["parley"] / C["ask"]
    printf "parley/ask throughput round by round:%s\n", pairs("parley", "ask")
    if (a < 3 || b >= 1) met = 0
  }
  if ("parley" in R && "base" in R)
    printf "parley/base throughput %.2fx, p99 %.2fx, cpu per turn %.2fx (this tree against the base ref)\n", R["parley"] / R["base"], P99["parley"] / P99["base"], C["parley"] / C["base"]
  if ("parley" in R && "botframework" in R)
    printf "parley/botframework throughput %.2fx, p99 %.2fx (no target)\n", R["parley"] / R["botframework"], P99["parley"] / P99["botframework"]
  printf "load average (1, 5, 15 min): %s before, %s after\n", load_before, load_after
  if (checked) print (met ? "targets: met" : "targets: NOT met")
}' "$results"
for s in "${server_list[@]}"; do
  if [ "$(awk -v s="$s" '$1 == s' "$results" | grep -cE ' (connect|read|write|status|timeout)=[1-9]')" -gt 0 ]; then
    echo "perf.sh: $s answered with errors; its log ends with:" >&2
    tail -5 "$work/$s.log" >&2 || true
  fi
done
if [ -n "$profile" ]; then
  # Redis's time per command during the profiled round, per turn.
  awk -v turns="$(field requests "$profiled_line")" -F'[:=,]' '
    /^cmdstat_/ { sub(/^cmdstat_/, "", $1); printf "%s %d %d\n", $1, $3, $5 }' "$profile/commandstats.txt" |
    sort -k3 -nr | awk -v turns="$(field requests "$profiled_line")" '
      BEGIN { printf "\nredis time per command in parley'"'"'s profiled round (%d turns)\n", turns
        printf "| %-16s | %14s | %14s | %14s |\n", "command", "calls per turn", "us per call", "us per turn" }
      { printf "| %-16s | %14.2f | %14.1f | %14.1f |\n", $1, $2 / turns, $3 / $2, $3 / turns }
      END { print "(a script call'"'"'s time includes the commands it runs, which are also counted on their own lines)" } '
  echo "profiles of parley's first round in $profile: go tool pprof $profile/parley $profile/cpu.pb.gz" \
    "(allocs, mutex and block: compare with -diff_base $profile/<name>.before.pb.gz)"
fi
