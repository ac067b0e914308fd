#!/usr/bin/env bash
# Realtime's broadcast fan-out with a load tool on the same box (issue 13): for N sockets (1,000
# and 5,000 by default) all joined to one public channel of a project made the real way — the
# sockets held, connects/s (open + join), messages delivered/s, send → receive latency p50/p99,
# and realtime's RSS before connecting, with every socket joined and after the fan-out (per
# socket: joined − before, over the sockets). The messages go over HTTP
# (`POST /realtime/v1/api/broadcast`, one per request) at a fixed rate; each size runs at
# 10,000 and at 25,000 deliveries/s ÷ N (BENCH_RT_DELIVERIES, comma-separated). The receivers
# are Python (asyncio, `websockets`) in several processes, whose CPU is reported, with the CPU
# one message costs each of them: the latency at 5,000 sockets is largely that (see the
# per-message first and last socket's latency). Release build; throwaway PostgreSQL unless
# DATABASE_URL is set; the project's realtime limits are raised for the run (an operator's
# UPDATE of realtime.tenants), and so is `ulimit -n`. Prints a table; the figures as JSON, and
# the services' logs, go to .tmp/bench-realtime/ (BENCH_RT_OUT). Nothing is asserted.
#
#   deploy/scripts/bench-realtime.sh [sizes=1000,5000] [seconds=20] [rates]
#
# seconds: the fan-out's length at each size; rates: messages/s per size, comma-separated
# (instead of the deliveries target). BENCH_RT_RECEIVERS sets the receiver processes (default:
# cores, 2 to 4). SCRATCH=.build-bench builds in another directory (the default here);
# BENCH_KEEP_WORK=1 keeps the work folder. `websockets` and `psycopg` come from PyPI, pinned,
# into .tmp/bench-tools (BENCH_TOOLS_DIR), as lib/python-tools.sh installs the other scripts'
# tools.
#
# The `changes` mode measures database changes (`postgres_changes`) instead, with the same
# setup (bench_realtime_changes.py says what exactly): a table of the project opted in, S
# sockets bound to its inserts, rows inserted at a fixed rate as the project's role; every size
# without row-level security (A) and with a policy showing each user their own rows (B, the
# sockets spread over U signed-up users, U tokens), side by side with B/A.
# Figures in .tmp/bench-realtime-changes/.
#
#   deploy/scripts/bench-realtime.sh changes [sizes=100,1000] [seconds=20] [rate=10] [users=10,100]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${1:-}" = changes ]; then
  mode=changes
  sizes="${2:-100,1000}" seconds="${3:-20}" rate="${4:-10}" users="${5:-10,100}"
else
  mode=fanout
  sizes="${1:-1000,5000}" seconds="${2:-20}" rates="${3:-}"
fi
export SCRATCH="${SCRATCH:-.build-bench}"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$here/with-postgres.sh" "$0" "$@"
fi

# Descriptors: realtime holds one per socket, the receivers one per socket between them.
largest="$(tr ',' '\n' <<<"$sizes" | sort -n | tail -n 1)"
want=$(( largest * 2 + 4096 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  # Up to the hard limit; above it when allowed (root), else as far as the hard limit goes.
  if ! ulimit -n "$want" 2>/dev/null; then
    if ! { ulimit -Hn "$want" && ulimit -n "$want"; } 2>/dev/null; then ulimit -n "$(ulimit -Hn)"; fi
  fi
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $(( largest + 1024 )) ]; then
  echo "error: ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $largest sockets need more" >&2
  exit 1
fi

root="$(cd "$here/../.." && pwd)"
if [ "$mode" = changes ]; then
  out="${BENCH_RT_OUT:-$root/.tmp/bench-realtime-changes}"
  # The users' access tokens, signed up once, must outlast every run.
  export ACCESS_TOKEN_TTL_SECONDS="${ACCESS_TOKEN_TTL_SECONDS:-3600}"
else
  out="${BENCH_RT_OUT:-$root/.tmp/bench-realtime}"
fi
# shellcheck source=deploy/scripts/lib/python-tools.sh
. "$here/lib/python-tools.sh"
tools=("websockets==15.0.1" "psycopg[binary]==3.3.9")
python_tools "${BENCH_TOOLS_DIR:-$root/.tmp/bench-tools}" "${tools[@]}"
if ! "$python" -c 'import websockets, psycopg' >/dev/null 2>&1; then
  echo "reinstalling the bench tools (websockets or psycopg does not import)" >&2
  install_python_tools "${BENCH_TOOLS_DIR:-$root/.tmp/bench-tools}" "${tools[@]}"
  python_tools "${BENCH_TOOLS_DIR:-$root/.tmp/bench-tools}" "${tools[@]}"
fi

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
bench_begin R
rm -rf "$out"
mkdir -p "$out"
# The services' logs are kept beside the figures (the work folder goes).
trap 'services_stop; cp -r "$work/logs" "$out/" 2>/dev/null || true; bench_cleanup' EXIT

log "realtime on $REALTIME_URL; ulimit -n $(ulimit -n); $mode: sizes $sizes, ${seconds}s of fan-out each"
if [ "$mode" = changes ]; then
  bench=("$python" "$here/bench_realtime_changes.py")
  # As many users are signed up as the largest U asks. The runs insert as the project's role
  # from the throwaway cluster's superuser (DATABASE_ADMIN_URL) when there is one.
  setup_more=(--realtime "$REALTIME_URL" --users "$(tr ',' '\n' <<<"$users" | sort -n | tail -n 1)")
  plan=(--sizes "$sizes" --users "$users" --rate "$rate")
else
  bench=("$python" "$here/bench_realtime.py")
  setup_more=()
  plan=(--sizes "$sizes" --rates "$rates" --deliveries "${BENCH_RT_DELIVERIES:-10000,25000}")
fi
"${bench[@]}" setup --auth "$AUTH_URL" --provisioning "$PROVISIONING_URL" --token "$INTERNAL_SERVICE_TOKEN" \
  --database "$DATABASE_URL" --project "$work/project.json" --max-sockets "$largest" "${setup_more[@]}"
# The throwaway cluster's postmaster (with-postgres.sh), whose CPU is reported beside realtime's.
postmaster=""
if [ -n "${PLATFORM_PG_DIR:-}" ] && [ -f "$PLATFORM_PG_DIR/data/postmaster.pid" ]; then
  postmaster="$(head -n 1 "$PLATFORM_PG_DIR/data/postmaster.pid")"
fi
mapfile -t runs < <("${bench[@]}" plan "${plan[@]}")
for spec in "${runs[@]}"; do
  read -r -a run_args <<<"$spec"
  # A fresh realtime for each run: its RSS before connecting is not the last run's high-water
  # mark (the allocator keeps what it had), and it reads the project's raised limits anew.
  services_stop realtime
  services_start "$work/bin" "$work/logs" realtime:"$realtime_port"
  services_wait_ready
  "${bench[@]}" run --realtime "$REALTIME_URL" --realtime-pid "${_service_pid[realtime]}" ${postmaster:+--postgres-pid "$postmaster"} \
    --project "$work/project.json" --out "$out" --seconds "$seconds" "${run_args[@]}" ${BENCH_RT_RECEIVERS:+--receivers "$BENCH_RT_RECEIVERS"}
done
"${bench[@]}" report --project "$work/project.json" --out "$out"
for name in auth provisioning realtime storage; do
  if ! services_alive "$name"; then
    echo "FAILED: $name is no longer running (crashed?); last lines of its log:"
    tail -n 20 "${_service_log[$name]}"
  fi
done
grep -h -i 'slow consumer\|error\|critical\|database change\|too far behind' "$work/logs/realtime.log" 2>/dev/null | head -n 20 | sed 's/^/realtime log: /' || true
echo "service logs: $out/logs"
