#!/usr/bin/env bash
# The platform with many tenants on one PostgreSQL (issue 16, "Scale"): provisioning latency
# for the first and the last tenants, each service's start-up time, /ready and tenant end-user
# sign-up / sign-in latency at N tenants, deprovisioning, the catalog's size and the lock
# table's setting. Prints figures; asserts nothing.
#
#   deploy/scripts/bench-scale.sh [tenants=5000] [deprovision=1000] [fsync=off]
#
# Always on a throwaway PostgreSQL cluster (with-postgres.sh; max_locks_per_transaction and
# max_connections as it sets them), fsync, synchronous_commit and full_page_writes OFF by
# default so that the fill is quick: every figure of the run (not only the fill) is then
# without durable commits; fsync=on keeps them for the whole run. Release build
# (SCRATCH=.build-x builds in another directory), the four services on free ports, the load
# tool (deploy/scripts/saga_load.py) on the same machine.
#
# 1. first: S projects (S = BENCH_SAMPLE, 100, at most a third of TENANTS) one at a time, POST
#    /internal/v1/projects until GET /v1/projects/{id} answers `ready` (polled every 2 ms).
# 2. fill: TENANTS − 2·S more through the same API by BENCH_FILL_CLIENTS (6) concurrent clients
#    (each waits for `ready`, polling every 20 ms, before its next); its tenants/s is printed.
# 3. last: S more one at a time, as in 1; the ledger's per-step medians for first and last.
#    BENCH_RESTART_BEFORE_LAST=1 restarts the services first (fresh server backends).
# 4. at N: catalog size (pg_class, pg_attribute, pg_namespace, pg_authid rows, database size),
#    max_locks_per_transaction; /ready latency of each service (200 GETs on one connection);
#    tenant end-user sign-up and password sign-in (BENCH_USERS, 20, on random tenants, with the
#    publishable key revealed at `ready`; argon2id included).
# 5. start-up: every service stopped, then each started alone and timed until its /ready
#    answers 200 (polled every 5 ms), then all four at once.
# 6. tenant upgrade: every tenant rolled back to before tenant migration 3, provisioning brings
#    them up at start-up, SIGKILLed half-way and started again; the time, and each tenant's
#    _migrations checked for version 3 (and the index).
# 7. deprovision: DEPROVISION projects, DELETE /v1/projects/{id} until `deleted`, one at a
#    time (BENCH_DEPROVISION_CLIENTS, 1): p50/p99 each and the total; the catalog again.
# 8. 'out of shared memory' in the services' logs and the PostgreSQL server log.
# BENCH_KEEP_WORK=1 keeps the logs, the projects file and the result rows in /tmp/bench-platform.*.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tenants="${1:-5000}"
deprovision="${2:-1000}"
fsync="${3:-off}"
case "$fsync" in on|off) ;; *) echo "usage: $0 [tenants] [deprovision] [on|off]" >&2; exit 2 ;; esac

if [ -z "${BENCH_SCALE_INSIDE:-}" ]; then
  export BENCH_SCALE_INSIDE=1 PLATFORM_PG_FSYNC="$fsync"
  exec env -u DATABASE_URL -u DATABASE_ADMIN_URL "$here/with-postgres.sh" "$0" "$@"
fi

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
sample="${BENCH_SAMPLE:-100}"
if [ $((sample * 3)) -gt "$tenants" ]; then sample=$((tenants / 3)); fi
fill=$((tenants - 2 * sample))
if [ "$deprovision" -gt "$tenants" ]; then deprovision="$tenants"; fi
fill_clients="${BENCH_FILL_CLIENTS:-6}"

bench_begin c
projects="$work/projects.jsonl"
started=$(date +%s)

catalog() { # label
  local label="$1"
  "$PLATFORM_PG_BIN/psql" -X -q -At -F $'\t' "$DATABASE_ADMIN_URL" -c "
    SELECT '$label', (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\_%'),
      (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_attribute), (SELECT count(*) FROM pg_namespace),
      (SELECT count(*) FROM pg_authid), (SELECT count(*) FROM pg_auth_members),
      pg_size_pretty(pg_database_size(current_database()))" >> "$work/catalog.tsv"
}

log "warm-up"
python3 "$here/saga_load.py" provision --provisioning "$prov" --token "$token" --prefix "${run}_w" \
  --count 5 --poll-ms 2 --label warmup >/dev/null

log "first $sample one at a time"
load provision --provisioning "$prov" --token "$token" --prefix "${run}_first" --count "$sample" --poll-ms 2 \
  --label "provision.first$sample" --out "$projects"
log "fill: $fill through $fill_clients clients"
load provision --provisioning "$prov" --token "$token" --prefix "${run}_fill" --count "$fill" --workers "$fill_clients" \
  --poll-ms 20 --label fill --out "$projects" --progress 500
if [ -n "${BENCH_RESTART_BEFORE_LAST:-}" ]; then
  # Fresh server processes for the last sample: tells a cost of the catalog's size from one of
  # the long-lived backends' caches (every pooled connection has seen every tenant's DDL).
  log "restarting the services before the last sample (BENCH_RESTART_BEFORE_LAST)"
  services_stop
  bench_start_services
fi
log "last $sample one at a time"
load provision --provisioning "$prov" --token "$token" --prefix "${run}_last" --count "$sample" --poll-ms 2 \
  --label "provision.last$sample" --out "$projects"
at_n="$(psql_app -At -c "SELECT count(*) FROM provisioning.projects WHERE status = 'ready'")"

log "at N=$at_n: catalog, /ready, tenant users"
catalog "at N"
max_locks="$(psql_app -At -c "SHOW max_locks_per_transaction")"
max_connections="$(psql_app -At -c "SHOW max_connections")"
load http-latency --count 200 --label ready. auth="$AUTH_URL/ready" provisioning="$prov/ready" \
  realtime="$REALTIME_URL/ready" storage="$STORAGE_URL/ready"
load user-auth --auth "$AUTH_URL" --projects "$projects" --count "${BENCH_USERS:-20}"

log "start-up times"
services_stop
for name in auth provisioning realtime storage; do
  port_var="${name}_port"
  t0="${EPOCHREALTIME//[!0-9]/}"
  services_start "$work/bin" "$work/logs" "$name:${!port_var}"
  load ready-times --start-us "$t0" --label "startup.alone." "$name=http://127.0.0.1:${!port_var}/ready"
done
services_wait_ready
services_stop
t0="${EPOCHREALTIME//[!0-9]/}"
services_start "$work/bin" "$work/logs" auth:"$auth_port" provisioning:"$provisioning_port" \
  realtime:"$realtime_port" storage:"$storage_port"
load ready-times --start-us "$t0" --label "startup.all4." auth="$AUTH_URL/ready" provisioning="$prov/ready" \
  realtime="$REALTIME_URL/ready" storage="$STORAGE_URL/ready"
services_wait_ready

# Tenant upgrade: every ready tenant is put back as the release before the last tenant
# migration left it (0003_users_created_at_index: its index and ledger row gone, the project's
# tenant_schema_version 2); provisioning then brings them all up at start-up. It is killed
# (SIGKILL) once about half are done and started again; the rest follow, none twice.
upgrade_file="$(ls "$root/Services/Provisioning/TenantMigrations" | sort | tail -n 1)"
if [ "$upgrade_file" = "0003_users_created_at_index.sql" ]; then
  log "tenant upgrade: $at_n tenants back to version 2"
  services_stop
  "$PLATFORM_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_ADMIN_URL" -c "
    DO \$\$
    DECLARE s text;
    BEGIN
      FOR s IN SELECT 'tenant_' || slug FROM provisioning.projects WHERE status = 'ready' LOOP
        EXECUTE format('DROP INDEX %I.users_created_at_id', s);
        EXECUTE format('DELETE FROM %I._migrations WHERE version = 3', s);
      END LOOP;
      UPDATE provisioning.projects SET tenant_schema_version = 2 WHERE status = 'ready';
    END \$\$;"
  remaining() { psql_app -At -c "SELECT count(*) FROM provisioning.projects WHERE status = 'ready' AND coalesce(tenant_schema_version, 0) < 3"; }
  half=$(( at_n / 2 ))
  t0="${EPOCHREALTIME//[!0-9]/}"
  services_start "$work/bin" "$work/logs" auth:"$auth_port" provisioning:"$provisioning_port" \
    realtime:"$realtime_port" storage:"$storage_port"
  while [ "$(remaining)" -gt "$half" ]; do sleep 0.05; done
  kill -KILL "${_service_pid[provisioning]}"
  wait "${_service_pid[provisioning]}" 2>/dev/null || true
  t1="${EPOCHREALTIME//[!0-9]/}"
  left_at_kill="$(remaining)"
  services_start "$work/bin" "$work/logs" provisioning:"$provisioning_port"
  while [ "$(remaining)" -gt 0 ]; do sleep 0.05; done
  t2="${EPOCHREALTIME//[!0-9]/}"
  services_wait_ready
  with_v3="$(psql_app -At -c "
    SELECT count(*) FROM provisioning.projects p WHERE p.status = 'ready' AND (xpath('/row/n/text()', query_to_xml(
      format('SELECT count(*) AS n FROM %I._migrations WHERE version = 3', 'tenant_' || p.slug), false, true, '')))[1]::text::int = 1")"
  indexes="$(psql_app -At -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_created_at_id' AND schemaname LIKE 'tenant\_%'")"
  upgrade_summary="tenant upgrade to v3 of $at_n tenants: first run $(( (t1 - t0) / 1000 )) ms until SIGKILL with $left_at_kill left, \
after the restart $(( (t2 - t1) / 1000 )) ms for the rest; $(( at_n * 1000000 / (t2 - t0) )) tenants/s overall; \
tenants whose _migrations shows version 3: $with_v3; users_created_at_id indexes: $indexes"
  log "$upgrade_summary"
else
  upgrade_summary="tenant upgrade: skipped (the last tenant migration is $upgrade_file, not the 0003 this phase knows how to roll back)"
fi

log "deprovision $deprovision"
load deprovision --provisioning "$prov" --token "$token" --projects "$projects" --count "$deprovision" \
  --workers "${BENCH_DEPROVISION_CLIENTS:-1}" --poll-ms 2 --progress 250 --label "deprovision"
catalog "after deprovision"

echo
echo "bench-scale: tenants=$tenants (ready at N, with 5 warm-up: $at_n) deprovision=$deprovision fsync=$fsync (the whole run, fill included)" \
  "cores=$(nproc) PostgreSQL $("$PLATFORM_PG_BIN/postgres" --version | awk '{print $3}') PROVISIONING_WORKERS=${PROVISIONING_WORKERS:-4}" \
  "elapsed=$(( $(date +%s) - started ))s load average at start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
result_table
echo
echo "catalog:"
{
  printf 'when\ttenant schemas\tpg_class\tpg_attribute\tpg_namespace\tpg_authid\tpg_auth_members\tdatabase size\n'
  cat "$work/catalog.tsv"
} | column -t -s $'\t'
echo "max_locks_per_transaction=$max_locks max_connections=$max_connections (lock table: $((max_locks * max_connections)) object locks)"
echo
echo "where the time goes, first $sample (ledger medians):"
step_breakdown "${run}_first"
echo "where the time goes, last $sample:"
step_breakdown "${run}_last"
echo "where the time goes, deprovisioning:"
step_breakdown "${run}" deprovision
echo
echo "$upgrade_summary"
echo
echo "'out of shared memory':"
grep_shared_memory
