#!/usr/bin/env bash
# Load test of Parley's web channel alone, with a real Redis: scripts/perf.sh
# with Parley as the only server (it builds Parley, starts a private
# redis-server, deploys a bot whose handler updates its session on every
# turn and drives it with wrk). Flags pass through to scripts/perf.sh, e.g.
#   scripts/load.sh --connections 16 --duration 10 --rounds 1
#   scripts/load.sh alexa
set -euo pipefail
mode=web
case "${1:-}" in web | alexa) mode=$1; shift ;; esac
exec bash "$(dirname "$0")/perf.sh" "$mode" --servers parley "$@"
