#!/usr/bin/env bash
# Auth throughput, end to end against the real executables: password logins per second beside
# the argon2id ceiling (the same hasher, parameters and thread count as auth, the same number
# of concurrent verifications) measured before and after them in the same run, with the ratio;
# refresh-token rotations per second with p50/p99 (one chain per worker); unknown-email vs
# wrong-password login medians; and one argon2id hash, verify and dummy verify at a time (the
# timing figures the service tests leave to this bench: they count verifications instead).
# Release build; throwaway PostgreSQL unless DATABASE_URL is set.
# All four services run (registration needs provisioning), with auth's /v1/token rate limits
# raised out of the way.
#
#   deploy/scripts/bench-auth.sh [seconds=10] [concurrency=2×cores]
#
# SCRATCH=.build-bench uses that build directory instead of .build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
seconds="${1:-10}"
concurrency="${2:-$(( 2 * $(nproc) ))}"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$0" "$@"
fi

scratch=()
if [ -n "${SCRATCH:-}" ]; then scratch=(--scratch-path "$SCRATCH"); fi
swift build -c release "${scratch[@]}" >&2
bin="$(swift build -c release "${scratch[@]}" --show-bin-path)"
work="$(mktemp -d)"
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"

export INTERNAL_SERVICE_TOKEN="$token" LOG_LEVEL=warning STORAGE_ROOT="$work/storage"
export SIGNING_KEY_ENCRYPTION_KEY="$token-sealing"
export AUTH_URL=http://127.0.0.1:18281 PROVISIONING_URL=http://127.0.0.1:18282
export REALTIME_URL=http://127.0.0.1:18283 STORAGE_URL=http://127.0.0.1:18284
# The limits' ceiling (per minute); the bench reports any 429 it still gets as errors.
export TOKEN_RATE_LIMIT_PER_IP=100000 TOKEN_RATE_LIMIT_PER_ACCOUNT=100000 REGISTRATION_RATE_LIMIT_PER_IP=100000 REGISTRATION_RATE_LIMIT_GLOBAL=100000

. "$root/deploy/scripts/lib/services.sh"
cleanup() {
  services_stop
  rm -rf "$work"
}
trap cleanup EXIT
services_start "$bin" "$work" auth:18281 provisioning:18282 realtime:18283 storage:18284
services_wait_ready

"$bin/auth-bench" "$AUTH_URL" "$PROVISIONING_URL" "$token" "$seconds" "$concurrency"
