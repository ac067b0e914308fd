# shellcheck shell=bash
# Sourced by bench-saga.sh, bench-scale.sh, bench-storage.sh and bench-fairness.sh (after with-postgres.sh has exported DATABASE_URL):
# the release build, the four services on free ports, the load tool, and the result table.
#
#   bench_begin LETTER          all of the below that both benchmarks start with: build,
#                               environment, services up, clean-up on exit; sets $load_start,
#                               $run (LETTER + 6 hex: the run's slug prefix) and $prov
#   log MESSAGE                 a timestamped line on stderr
#   bench_build                 release build (SCRATCH=.build-x builds in another directory,
#                               BENCH_CONFIG=debug a debug build); sets $bin
#   bench_services_env          picks free ports, exports the services' environment; sets
#                               $work, $token, $auth_port … $storage_port
#   bench_start_services        starts auth, provisioning, realtime and storage, waits for /ready
#   bench_start_replica         a second provisioning process (provisioning2) on its own port,
#                               same database; sets $provisioning2_port
#   load ARGS…                  the load tool (saga_load.py), result rows appended to $results
#                               (and shown on stderr as they come)
#   result_table                prints the gathered rows as a table
#   step_breakdown SLUG_PREFIX [KIND]  per-step medians from provisioning's workflow ledger
#                               (KIND: provision, the default, or deprovision)
#   grep_shared_memory          'out of shared memory' lines in the services' and the server's logs

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=deploy/scripts/lib/services.sh
. "$here/lib/services.sh"

log() { echo "[$(date +%T)] $*" >&2; }

bench_cleanup() {
  services_stop
  if [ -n "${BENCH_KEEP_WORK:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}

bench_begin() {
  bench_build
  bench_services_env
  trap bench_cleanup EXIT
  bench_start_services
  load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
  run="$1$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  prov="$PROVISIONING_URL"
}

bench_build() {
  local scratch=()
  if [ -n "${SCRATCH:-}" ]; then scratch=(--scratch-path "$SCRATCH"); fi
  (cd "$root" && swift build -c "${BENCH_CONFIG:-release}" "${scratch[@]}" >&2)
  bin="$(cd "$root" && swift build -c "${BENCH_CONFIG:-release}" "${scratch[@]}" --show-bin-path)"
}

bench_services_env() {
  work="$(mktemp -d /tmp/bench-platform.XXXXXX)"
  results="$work/results.tsv"
  : > "$results"
  token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  auth_port="$(pick_port)"; provisioning_port="$(pick_port)"
  realtime_port="$(pick_port)"; storage_port="$(pick_port)"
  export INTERNAL_SERVICE_TOKEN="$token" LOG_LEVEL="${BENCH_LOG_LEVEL:-warning}" STORAGE_ROOT="$work/storage"
  export SIGNING_KEY_ENCRYPTION_KEY="$token-sealing"
  export AUTH_URL="http://127.0.0.1:$auth_port" PROVISIONING_URL="http://127.0.0.1:$provisioning_port"
  export REALTIME_URL="http://127.0.0.1:$realtime_port" STORAGE_URL="http://127.0.0.1:$storage_port"
  # Tenant sign-in is measured, not rate limited.
  export TOKEN_RATE_LIMIT_PER_IP=100000 TOKEN_RATE_LIMIT_PER_ACCOUNT=100000
  export REGISTRATION_RATE_LIMIT_PER_IP="${REGISTRATION_RATE_LIMIT_PER_IP:-100000}" REGISTRATION_RATE_LIMIT_GLOBAL="${REGISTRATION_RATE_LIMIT_GLOBAL:-100000}"
  # A bin directory of links, so that a second provisioning process has a name of its own
  # (the resource bundles are found at their build path).
  mkdir -p "$work/bin"
  local name
  for name in auth provisioning realtime storage; do ln -s "$bin/$name" "$work/bin/$name"; done
  ln -s "$bin/provisioning" "$work/bin/provisioning2"
}

bench_start_services() {
  services_start "$work/bin" "$work/logs" auth:"$auth_port" provisioning:"$provisioning_port" \
    realtime:"$realtime_port" storage:"$storage_port"
  services_wait_ready
}

bench_start_replica() {
  provisioning2_port="$(pick_port)"
  services_start "$work/bin" "$work/logs" provisioning2:"$provisioning2_port"
  services_wait_ready
}

load() {
  python3 "$here/saga_load.py" "$@" | tee -a "$results" >&2
}

result_table() {
  {
    printf 'metric\tn\tp50_ms\tp99_ms\tmax_ms\tnote\n'
    cat "$results"
  } | column -t -s "$(printf '\t')"
}

psql_app() { "$PLATFORM_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }

# Where the time of the executions whose project slug starts with $1 goes, from the ledger's
# timestamps. Every timestamp is now() of the transaction that wrote it (its start): a step's
# run is from the start of the transaction that marked it running to the start of the one
# that marked it succeeded (so it includes the first of those), and the gap before it is from
# the previous step's success record (or the claim) to its own begin record.
step_breakdown() {
  local prefix="$1" kind="${2:-provision}" total
  # The project is ready when `activate` is recorded; deleted when the last undo is.
  if [ "$kind" = provision ]; then
    total="SELECT 1001, 'total: created → activate recorded', extract(epoch FROM s.finished_at - e.created_at) * 1000, NULL
    FROM e JOIN s ON s.execution_id = e.id AND s.step = 'activate'"
  else
    total="SELECT 1001, 'total: created → last step recorded', extract(epoch FROM last.finished_at - e.created_at) * 1000, NULL
    FROM e JOIN last ON last.execution_id = e.id"
  fi
  psql_app -P footer=off <<SQL
WITH e AS (
    SELECT e.id, e.created_at, e.started_at, e.finished_at
    FROM provisioning.workflow_executions e JOIN provisioning.projects p ON p.id = e.project_id
    WHERE p.slug LIKE '${prefix}\_%' AND e.kind = '${kind}' AND e.status = 'succeeded'
), s AS (
    SELECT st.execution_id, st.step, st.position, st.started_at, st.finished_at,
           coalesce(lag(st.finished_at) OVER w, e.started_at) AS previous_end
    FROM e JOIN provisioning.provisioning_steps st ON st.execution_id = e.id
    WINDOW w AS (PARTITION BY st.execution_id ORDER BY st.position)
), last AS (
    SELECT execution_id, max(finished_at) AS finished_at FROM s GROUP BY execution_id
), r AS (
    SELECT 0 AS position, 'claim: created → claimed' AS what,
           extract(epoch FROM started_at - created_at) * 1000 AS run_ms, NULL::float8 AS gap_ms FROM e
    UNION ALL
    SELECT position, step, extract(epoch FROM finished_at - started_at) * 1000,
           extract(epoch FROM started_at - previous_end) * 1000 FROM s
    UNION ALL
    SELECT 1000, 'finish: last step → execution finished', extract(epoch FROM e.finished_at - last.finished_at) * 1000, NULL
    FROM e JOIN last ON last.execution_id = e.id
    UNION ALL
    ${total}
)
SELECT what AS "step (ledger timestamps)", count(*) AS n,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY run_ms)::numeric, 2) AS run_p50_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY run_ms)::numeric, 2) AS run_p99_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY gap_ms)::numeric, 2) AS gap_before_p50_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY gap_ms)::numeric, 2) AS gap_before_p99_ms
FROM r GROUP BY position, what ORDER BY position;
SQL
}

# Per group of projects (the second part of the slug, PREFIX_<group>_<n>) whose slug starts
# with $1: ready projects, the span from the first creation to the last `activate` record,
# tenants/s over that span, and created → activate recorded p50/p99: the server's side of the
# throughput runs, without the clients' polling delay.
ledger_throughput() {
  local prefix="$1"
  psql_app -P footer=off <<SQL
SELECT split_part(p.slug, '_', 2) AS "group", count(*) AS ready,
       round(extract(epoch FROM max(st.finished_at) - min(e.created_at))::numeric, 2) AS span_s,
       round(count(*) / nullif(extract(epoch FROM max(st.finished_at) - min(e.created_at)), 0)::numeric, 1) AS tenants_per_s,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM st.finished_at - e.created_at)) * 1000)::numeric, 1)
         AS created_to_active_p50_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM st.finished_at - e.created_at)) * 1000)::numeric, 1)
         AS created_to_active_p99_ms
FROM provisioning.projects p
JOIN provisioning.workflow_executions e ON e.project_id = p.id AND e.kind = 'provision' AND e.status = 'succeeded'
JOIN provisioning.provisioning_steps st ON st.execution_id = e.id AND st.step = 'activate'
WHERE p.slug LIKE '${prefix}\_%'
GROUP BY 1 ORDER BY min(e.created_at);
SQL
}

grep_shared_memory() {
  local found=0 file
  for file in "$work"/logs/*.log "$PLATFORM_PG_DIR/server.log"; do
    [ -f "$file" ] || continue
    local n; n="$(grep -ci 'out of shared memory' "$file" || true)"
    if [ "$n" -gt 0 ]; then
      found=1
      echo "  $(basename "$file"): $n line(s) 'out of shared memory', first: $(grep -i -m1 'out of shared memory' "$file" | cut -c1-200)"
    fi
  done
  [ "$found" = 1 ] || echo "  none in the services' logs or the PostgreSQL server log"
}
