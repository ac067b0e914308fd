#!/usr/bin/env bash
# A real developer's sign-in latency while registrations flood auth at 10× what it can
# register (issue 15, item 3): idle p50/p99, registration capacity, then the flood from many
# made-up client addresses (X-Forwarded-For through a trusted proxy, so the per-address limit
# does not help) and the sign-in p50/p99 during it. Release build, the four services on free
# ports, throwaway PostgreSQL unless DATABASE_URL is set. Prints a table (bench_registration_flood.py);
# nothing is asserted.
#
#   deploy/scripts/bench-registration-flood.sh [seconds=15] [factor=10] [rate]
#
# RATE (registrations a second) floods at that rate instead of FACTOR × the capacity measured in
# the run: with the shipped global limit (REGISTRATION_RATE_LIMIT_GLOBAL) the run measures the
# limit, so pass 10 × the capacity measured with REGISTRATION_RATE_LIMIT_GLOBAL=100000.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds="${1:-15}" factor="${2:-10}" rate="${3:-0}"
export SCRATCH="${SCRATCH:-.build-bench}"
if [ -z "${DATABASE_URL:-}" ]; then
  exec "$here/with-postgres.sh" "$0" "$@"
fi
# The shipped per-address registration limit, and the bench as the trusted proxy.
export REGISTRATION_RATE_LIMIT_PER_IP=20 REGISTRATION_RATE_LIMIT_GLOBAL="${REGISTRATION_RATE_LIMIT_GLOBAL:-60}" TRUSTED_PROXIES=127.0.0.1/32

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
bench_begin F
log "load $load_start; ${seconds} s per phase, flood at ${factor}× capacity"
python3 "$here/bench_registration_flood.py" --auth "http://127.0.0.1:$auth_port" --seconds "$seconds" --factor "$factor" --rate "$rate"
