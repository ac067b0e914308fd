#!/usr/bin/env bash
# Tenant fairness on auth (issue 15, item 4): tenant B's password sign-in latency (p50, p99,
# max; one at a time) idle, while tenant A floods admin/audit/verify and admin/users with its
# secret key, and idle again, side by side in one run; with what A's flood was answered (429
# `tenant_busy` / `rate_limited` past AUTH_TENANT_MAX_CONNECTIONS and
# AUTH_AUDIT_VERIFY_PER_MINUTE). The service tests assert only that B's sign-ins succeed while A
# is refused; the latency is this script's to measure. Release build; throwaway PostgreSQL
# unless DATABASE_URL is set; the services' settings are the deployed defaults unless set in the
# environment (AUTH_TENANT_MAX_CONNECTIONS=<DB_POOL_MAX> turns the budget off in effect).
#
#   deploy/scripts/bench-fairness.sh [signins=200] [flooders=16] [users=50000] [audit=50000]
#
# SCRATCH=.build-x builds in another directory; BENCH_CONFIG=debug uses a debug build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
signins="${1:-200}" flooders="${2:-16}" users="${3:-50000}" audit="${4:-50000}"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$here/with-postgres.sh" "$0" "$@"
fi

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
bench_begin F
log "auth (pid ${_service_pid[auth]}) on $AUTH_URL; DB_POOL_MAX=${DB_POOL_MAX:-10}" \
  "AUTH_TENANT_MAX_CONNECTIONS=${AUTH_TENANT_MAX_CONNECTIONS:-default} AUTH_AUDIT_VERIFY_PER_MINUTE=${AUTH_AUDIT_VERIFY_PER_MINUTE:-default}"
PATH="${PLATFORM_PG_BIN:-/usr/bin}:$PATH" python3 "$here/bench_fairness.py" --auth "$AUTH_URL" --provisioning "$PROVISIONING_URL" \
  --token "$INTERNAL_SERVICE_TOKEN" --database "$DATABASE_URL" \
  --signins "$signins" --flooders "$flooders" --users "$users" --audit "$audit"
