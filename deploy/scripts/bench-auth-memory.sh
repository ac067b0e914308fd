#!/usr/bin/env bash
# Auth's resident memory while REQUESTS sign-ins carry distinct emails of nearly 1 MiB (the body
# cap), CONCURRENCY at a time (issue 15, item 1): RSS before, peak, after. Release build, the
# four services on free ports, throwaway PostgreSQL unless DATABASE_URL is set; auth's token
# limits are raised (the many-address attack). Prints the figures; nothing is asserted.
#
#   deploy/scripts/bench-auth-memory.sh [requests=100000] [concurrency=4]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requests="${1:-100000}" concurrency="${2:-4}"
export SCRATCH="${SCRATCH:-.build-bench}"
if [ -z "${DATABASE_URL:-}" ]; then
  exec "$here/with-postgres.sh" "$0" "$@"
fi

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
bench_begin M
log "load $load_start; $requests sign-ins with ~1 MiB emails, $concurrency at a time"
python3 "$here/bench_auth_memory.py" --auth "http://127.0.0.1:$auth_port" --pid "${_service_pid[auth]}" \
  --requests "$requests" --concurrency "$concurrency"
