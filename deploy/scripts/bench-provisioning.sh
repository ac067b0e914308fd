#!/usr/bin/env bash
# Provisioning latency, end to end (POST /v1/register on auth → project `ready`), over COUNT
# registrations one after another, beside the same tenant DDL run bare through pgbench on the
# same database in the same run; then compensation latency (storage stopped → `failed`, fully
# compensated) over FAILURES registrations. Release build; throwaway PostgreSQL unless
# DATABASE_URL is set.
#
#   deploy/scripts/bench-provisioning.sh [count=100] [failures=20]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
count="${1:-100}"
failures="${2:-20}"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$0" "$@"
fi

swift build -c release >&2
bin="$(swift build -c release --show-bin-path)"
pg_bin="${PLATFORM_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
work="$(mktemp -d)"
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"

export INTERNAL_SERVICE_TOKEN="$token" LOG_LEVEL=warning STORAGE_ROOT="$work/storage" REGISTRATION_RATE_LIMIT_PER_IP=100000 REGISTRATION_RATE_LIMIT_GLOBAL=100000
export SIGNING_KEY_ENCRYPTION_KEY="$token-sealing"
export AUTH_URL=http://127.0.0.1:18181 PROVISIONING_URL=http://127.0.0.1:18182
export REALTIME_URL=http://127.0.0.1:18183 STORAGE_URL=http://127.0.0.1:18184
# Compensation is measured with a short retry budget: 3 attempts, backoff capped at 200 ms.
export PROVISIONING_STEP_MAX_ATTEMPTS=3 PROVISIONING_RETRY_BASE_MS=50 PROVISIONING_RETRY_MAX_MS=200

. "$root/deploy/scripts/lib/services.sh"
cleanup() {
  services_stop
  rm -rf "$work"
}
trap cleanup EXIT
services_start "$bin" "$work" auth:18181 provisioning:18182 realtime:18183 storage:18184
services_wait_ready

echo "registrations=$count failures=$failures cores=$(nproc)"
"$bin/provisioning-bench" "$AUTH_URL" "$PROVISIONING_URL" "$token" "$count" ready

# The same tenant DDL, bare: role, schema, and the tenant migration, one transaction each.
{
  echo '\set id random(1, 2000000000)'
  echo 'BEGIN;'
  echo 'CREATE ROLE tenant_ddl_:id NOLOGIN;'
  echo 'GRANT tenant_ddl_:id TO CURRENT_USER;'
  echo 'CREATE SCHEMA tenant_ddl_:id AUTHORIZATION tenant_ddl_:id;'
  echo 'SET LOCAL ROLE tenant_ddl_:id;'
  echo 'SET LOCAL search_path TO tenant_ddl_:id;'
  grep -v '^--' Services/Provisioning/TenantMigrations/0001_users_and_audit_log.sql
  echo 'COMMIT;'
} > "$work/ddl.sql"
(cd "$work" && "$pg_bin/pgbench" -n -f ddl.sql -t "$count" -c 1 -l --log-prefix=ddllog "$DATABASE_URL" >/dev/null 2>&1)
cat "$work"/ddllog.* | awk '{print $3/1000}' | sort -n | awk '{a[NR]=$1} END {
  p50 = int(NR*0.5)+1; p99 = int(NR*0.99)+1; if (p99 > NR) p99 = NR
  printf "bare DDL (pgbench) n=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", NR, a[p50], a[p99], a[NR] }'

services_stop storage
"$bin/provisioning-bench" "$AUTH_URL" "$PROVISIONING_URL" "$token" "$failures" failed

# The bare DDL's schemas and roles (the throwaway database goes anyway; a given one is left clean).
psql -X -q "$DATABASE_URL" -At -c "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_ddl_%'" | while read -r name; do
  psql -X -q "$DATABASE_URL" -c "DROP SCHEMA $name CASCADE; DROP OWNED BY $name; DROP ROLE $name;" >/dev/null 2>&1 || true
done
