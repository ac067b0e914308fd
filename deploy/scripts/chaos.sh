#!/usr/bin/env bash
# The provisioning saga under fire: RUNS randomized rounds of project creations and deletions
# with faults injected at random moments (SIGKILL of any service, SIGSTOP/SIGCONT of a
# downstream one, pg_terminate_backend of a service's connections, a PostgreSQL restart, resets,
# delays and 5xx between provisioning and the others through deploy/scripts/fault_proxy.py,
# provisioning's test-only failpoint), each followed by a check of the platform's invariant
# (deploy/scripts/chaos.py says exactly what is injected and checked).
# Runs the built executables on a throwaway PostgreSQL of its own, with short leases.
#
#   deploy/scripts/chaos.sh            # 10 runs, a fresh seed (printed)
#   deploy/scripts/chaos.sh 50 12345   # 50 runs, replaying seed 12345
#
# Prints a VIOLATION line per broken invariant and closes with "N passed, M failed" over the
# runs; exits non-zero when any run failed. CONFIGURATION=release uses a release build. Logs of
# the services stay in .tmp/chaos/logs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=lib/ports.sh
source "$root/deploy/scripts/lib/ports.sh"

runs="${1:-10}"
seed="${2:-}"

configuration="${CONFIGURATION:-debug}"
if [ -z "${PLATFORM_BIN_DIR:-}" ]; then
  swift build -c "$configuration" --product auth >&2
  for product in provisioning realtime storage; do swift build -c "$configuration" --product "$product" >&2; done
  PLATFORM_BIN_DIR="$(swift build -c "$configuration" --show-bin-path)"
fi

work="$root/.tmp/chaos"
rm -rf "$work"
mkdir -p "$work"
ports=""
for _ in 1 2 3 4; do ports="$ports $(pick_port)"; done

export CHAOS_BIN_DIR="$PLATFORM_BIN_DIR" CHAOS_WORK_DIR="$work" CHAOS_PORTS="$ports"
unset DATABASE_URL  # always a throwaway database of its own: the campaign drops nothing it did not make
exec "$root/deploy/scripts/with-postgres.sh" python3 "$root/deploy/scripts/chaos.py" "$runs" ${seed:+"$seed"}
