#!/usr/bin/env bash
# The soak test: Parley on three replicas and a three-node Redis Cluster for
# ten minutes (SOAK_DURATION), with web and Telegram traffic and the
# platforms' retries; one replica is killed and restarted and one Redis
# primary restarted along the way. Prints a report per phase and exits 1 if
# a message was lost or answered twice. Not part of the test command.
#   scripts/soak.sh [-duration 10m] [-web 60] [-telegram 60] [-keep]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
command -v redis-server >/dev/null || { echo "soak: needs redis-server (apt-get install redis-server)" >&2; exit 2; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/parley" ./cmd/parley
go build -o "$bin/soak" ./tools/soak
echo "soak: load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"$bin/soak" -parley "$bin/parley" -redis-server "$(command -v redis-server)" "$@"
