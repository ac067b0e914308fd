#!/usr/bin/env bash
# The owner project API end to end (issue 14): how long from `POST /v1/projects` to the `ready`
# event on the project's Server-Sent Events stream (p50/p99 over N projects, C at a time), and
# how long after that event its `project.ready` webhook reaches a local receiver. Release build,
# the four services on free ports, throwaway PostgreSQL unless DATABASE_URL is set; webhooks
# may target 127.0.0.1 for the run (WEBHOOK_ALLOW_PRIVATE_TARGETS) and the per-developer project
# limit is raised. Prints a table (bench_projects.py); nothing is asserted.
#
#   deploy/scripts/bench-projects.sh [projects=100] [concurrency=4]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
projects="${1:-100}" concurrency="${2:-4}"
export SCRATCH="${SCRATCH:-.build-bench}"
if [ -z "${DATABASE_URL:-}" ]; then
  exec "$here/with-postgres.sh" "$0" "$@"
fi
export WEBHOOK_ALLOW_PRIVATE_TARGETS=true PROVISIONING_PROJECTS_PER_DEVELOPER=10000

# shellcheck source=deploy/scripts/lib/bench-platform.sh
. "$here/lib/bench-platform.sh"
bench_begin P
log "load $load_start; $projects projects, $concurrency at a time"
python3 "$here/bench_projects.py" --auth "$AUTH_URL" --provisioning "$PROVISIONING_URL" --projects "$projects" --concurrency "$concurrency"
