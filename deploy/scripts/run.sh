#!/usr/bin/env bash
# Runs the platform locally: all four services on fixed ports, on a PostgreSQL of their own
# (a throwaway cluster started here unless DATABASE_URL is set). Ctrl-C stops everything this
# script started.
#
#   deploy/scripts/run.sh                       # debug build
#   CONFIGURATION=release deploy/scripts/run.sh # release build
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$root/deploy/scripts/run.sh" "$@"
fi

"$root/deploy/scripts/install-deps.sh"

configuration="${CONFIGURATION:-debug}"
swift build -c "$configuration"
bin="$(swift build -c "$configuration" --show-bin-path)"

log_dir="${PLATFORM_LOG_DIR:-$root/.tmp/logs}"
mkdir -p "$log_dir"

# One token for the services' internal calls, made fresh for this run unless one is given.
export INTERNAL_SERVICE_TOKEN="${INTERNAL_SERVICE_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export AUTH_URL="${AUTH_URL:-http://127.0.0.1:8081}"
export PROVISIONING_URL="${PROVISIONING_URL:-http://127.0.0.1:8082}"
export REALTIME_URL="${REALTIME_URL:-http://127.0.0.1:8083}"
export STORAGE_URL="${STORAGE_URL:-http://127.0.0.1:8084}"

services=(auth provisioning realtime storage)
ports=(8081 8082 8083 8084)

. "$root/deploy/scripts/lib/services.sh"
stop_all() {
  trap - INT TERM EXIT
  if services_started; then
    echo "stopping services…" >&2
    services_stop
  fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

specs=()
for i in "${!services[@]}"; do specs+=("${services[$i]}:${ports[$i]}"); done
services_start "$bin" "$log_dir" "${specs[@]}"
services_wait_ready

echo
echo "The platform is ready:"
for i in "${!services[@]}"; do
  printf '  %-13s http://127.0.0.1:%s   (log: %s)\n' "${services[$i]}" "${ports[$i]}" "$log_dir/${services[$i]}.log"
done
echo "Press Ctrl-C to stop."

# Wait until a service dies or the user interrupts.
while true; do
  for name in "${services[@]}"; do
    if ! services_alive "$name"; then
      echo "error: $name stopped unexpectedly; see $log_dir/$name.log" >&2
      exit 1
    fi
  done
  sleep 1
done
