#!/usr/bin/env bash
# The provisioning saga's speed (issue 16, "Speed"): start → ready latency through
# POST /internal/v1/projects beside the same tenant DDL run bare, the ratio, where the time goes
# per step, and sustained tenants/s with 1, 2 and 4 concurrent clients and with two
# provisioning replicas. Prints figures and the issue's goals beside them; asserts nothing.
#
#   deploy/scripts/bench-saga.sh [count=100] [fsync=on]
#
# Always on a throwaway PostgreSQL cluster (with-postgres.sh; an inherited DATABASE_URL is
# ignored) with fsync, synchronous_commit and full_page_writes on, or all off with fsync=off:
# the saga and the bare DDL run on the same cluster, so with the same settings. Release build
# (SCRATCH=.build-x builds in another directory); the four services on free ports; the load
# tool (deploy/scripts/saga_load.py, Python standard library only) on the same machine.
#
# 1. latency: COUNT projects one at a time (after 5 not counted, to warm up), each from the
#    POST until a GET /v1/projects/{id} answers `ready`; the GET is repeated every
#    BENCH_POLL_MS (2) ms (the API has no way to wait for a change).
# 2. steps: from provisioning's ledger (workflow_executions, provisioning_steps) for those
#    projects: median and p99 run time of each step and of the gap before it (claim, doorbell
#    wake-up, ledger writes between steps).
# 3. bare: COUNT times the tenant DDL provisioning sends, through pgbench (one connection, one
#    transaction log line per tenant): TenantDatabase.createSchemaAndRole's SQL and
#    MigrationRunner's ledger DDL read at run time from the Swift sources, the tenant
#    migrations from Services/Provisioning/TenantMigrations (saga_load.py bare-ddl prints it).
#    Then min(COUNT, 50) more polled every 20 ms: what the fast polling itself costs.
# 4. throughput: for BENCH_SECONDS (10) s each, 1, 2 and 4 clients each creating a project and
#    waiting for `ready` before the next (polling every BENCH_THROUGHPUT_POLL_MS, 5, or a tenth
#    of the time waited so far when that is longer, so the polls stay a small load); then a
#    second provisioning process on another port (same database; either claims any execution)
#    with 4 and 8 clients spread over both. tenants/s = ready projects / time from the first
#    POST to the last `ready`. And a burst: BENCH_BURST (100) projects POSTed back to back, then
#    watched (the orchestrators' pace with a full queue), with one replica and with two.
#    The ledger's own figure (first creation to last `activate`,
#    without the polling delay) is printed beside it. Provisioning runs PROVISIONING_WORKERS
#    (default 4) executions at once per process.
# BENCH_KEEP_WORK=1 keeps the logs and the result rows in /tmp/bench-platform.*.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
count="${1:-100}"
fsync="${2:-on}"
case "$fsync" in on|off) ;; *) echo "usage: $0 [count] [on|off]" >&2; exit 2 ;; esac

if [ -z "${BENCH_SAGA_INSIDE:-}" ]; then
  export BENCH_SAGA_INSIDE=1 PLATFORM_PG_FSYNC="$fsync"
  exec env -u DATABASE_URL -u DATABASE_ADMIN_URL "$here/with-postgres.sh" "$0" "$@"
fi

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
seconds="${BENCH_SECONDS:-10}"
poll_ms="${BENCH_POLL_MS:-2}"
throughput_poll_ms="${BENCH_THROUGHPUT_POLL_MS:-5}"

bench_begin s

log "warm-up"
python3 "$here/saga_load.py" provision --provisioning "$prov" --token "$token" --prefix "${run}_w" \
  --count 5 --poll-ms "$poll_ms" --label warmup >/dev/null

log "latency: $count projects one at a time"
load provision --provisioning "$prov" --token "$token" --prefix "${run}_lat" --count "$count" \
  --poll-ms "$poll_ms" --label saga.start_to_ready
# The same with a slower poll: how much the 2 ms polling itself costs on a small machine.
slow=$(( count < 50 ? count : 50 ))
load provision --provisioning "$prov" --token "$token" --prefix "${run}_slowpoll" --count "$slow" \
  --poll-ms 20 --label saga.start_to_ready.poll20ms

log "bare tenant DDL: $count through pgbench"
# When the sources can no longer be mirrored, or the mirror fails, the row says so and the
# run goes on: the saga's own figures do not depend on it.
if ! python3 "$here/saga_load.py" bare-ddl --root "$root" > "$work/bare.sql"; then
  printf 'bare_ddl\t0\t-\t-\t-\tskipped: the tenant DDL could not be read from the sources (see above)\n' | tee -a "$results" >&2
elif ! (cd "$work" && "$PLATFORM_PG_BIN/pgbench" -n -f bare.sql -t "$count" -c 1 -l --log-prefix=barelog "$DATABASE_URL" \
    > pgbench.out 2>&1); then
  tail -n 20 "$work/pgbench.out" >&2
  printf 'bare_ddl\t0\t-\t-\t-\tskipped: pgbench failed (see above)\n' | tee -a "$results" >&2
else
  load pgbench-log --label bare_ddl --note "pgbench, 1 connection" "$work"/barelog.*
fi

log "throughput"
for workers in 1 2 4; do
  load provision --provisioning "$prov" --token "$token" --prefix "${run}_t$workers" --workers "$workers" \
    --seconds "$seconds" --poll-ms "$throughput_poll_ms" --poll-backoff 0.1 --label "throughput.c$workers" \
    --rate-file "$work/rates.tsv"
done
burst="${BENCH_BURST:-100}"
load burst --provisioning "$prov" --token "$token" --prefix "${run}_b1" --count "$burst" \
  --label "throughput.burst$burst" --rate-file "$work/rates.tsv"
bench_start_replica
prov2="http://127.0.0.1:$provisioning2_port"
load burst --provisioning "$prov,$prov2" --token "$token" --prefix "${run}_b2" --count "$burst" \
  --label "throughput.2replicas.burst$burst" --rate-file "$work/rates.tsv"
for workers in 4 8; do
  load provision --provisioning "$prov,$prov2" --token "$token" --prefix "${run}_r$workers" --workers "$workers" \
    --seconds "$seconds" --poll-ms "$throughput_poll_ms" --poll-backoff 0.1 --label "throughput.2replicas.c$workers" \
    --rate-file "$work/rates.tsv"
done
claims="$(psql_app -At -F ' ' -c "
  SELECT string_agg(n::text, '/' ORDER BY n DESC) FROM (
    SELECT count(*) AS n FROM provisioning.workflow_executions e JOIN provisioning.projects p ON p.id = e.project_id
    WHERE p.slug LIKE '${run}\_r%' OR p.slug LIKE '${run}\_b2%' GROUP BY e.claimed_by) c")"

tenants="$(psql_app -At -c "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\_%'")"
echo
echo "bench-saga: count=$count fsync=$fsync cores=$(nproc) PostgreSQL $("$PLATFORM_PG_BIN/postgres" --version | awk '{print $3}')" \
  "PROVISIONING_WORKERS=${PROVISIONING_WORKERS:-4} poll=${poll_ms}ms tenant schemas at the end=$tenants load average at start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
result_table
echo
echo "where the time goes (${run}_lat, from the ledger; gap = from the previous step's record, or the claim):"
step_breakdown "${run}_lat"
echo
echo "throughput from the ledger (groups: lat, slowpoll = one at a time; t<N> = N clients; r<N> = N clients, 2 replicas;"
echo "b1, b2 = burst with 1 and 2 replicas):"
ledger_throughput "$run"
echo "executions per replica in the 2-replica runs (r<N> and b2): $claims"
echo
awk -F '\t' -v rates="$work/rates.tsv" '
  $1 == "saga.start_to_ready" { s50 = $3; s99 = $4 }
  $1 == "bare_ddl" { b50 = $3; b99 = $4 }
  END {
    best = 0
    burst = 0
    while ((getline line < rates) > 0) {
      split(line, f, "\t")
      if (f[2] == "burst") { if (f[6] + 0 > burst) { burst = f[6] + 0; bwhich = f[1] } }
      else if (f[6] + 0 > best) { best = f[6] + 0; which = f[1] }
    }
    printf "goals (issue 16), figures of this run:\n"
    printf "  start→ready p50 ≤ 40 ms:        %s ms  (%s)\n", s50, (s50 + 0 <= 40 ? "met" : "not met")
    printf "  start→ready p99 ≤ 150 ms:       %s ms  (%s)\n", s99, (s99 + 0 <= 150 ? "met" : "not met")
    if (b50 + 0 > 0) {
      printf "  saga/bare ≤ 3×:                 p50 %.1f×, p99 %.1f×  (%s)\n", s50 / b50, s99 / b99, (s50 / b50 <= 3 ? "met at p50" : "not met at p50")
    }
    printf "  ≥ 20 tenants/s:                 best with clients %.1f/s (%s)  (%s)\n", best, which, (best >= 20 ? "met" : "not met")
    printf "                                  best burst %.1f/s (%s)  (%s)\n", burst, bwhich, (burst >= 20 ? "met" : "not met")
  }' "$results"
