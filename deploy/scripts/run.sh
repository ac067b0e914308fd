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
pids=()

stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo "stopping services…" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

for i in "${!services[@]}"; do
  name="${services[$i]}"
  PORT="${ports[$i]}" "$bin/$name" >>"$log_dir/$name.log" 2>&1 &
  pids+=("$!")
done

deadline=$(( $(date +%s) + 120 ))
for i in "${!services[@]}"; do
  name="${services[$i]}"; port="${ports[$i]}"
  until curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "error: $name exited; last lines of $log_dir/$name.log:" >&2
      tail -n 20 "$log_dir/$name.log" >&2
      exit 1
    fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "error: $name did not become ready; see $log_dir/$name.log" >&2
      exit 1
    fi
    sleep 0.2
  done
done

echo
echo "The platform is ready:"
for i in "${!services[@]}"; do
  printf '  %-13s http://127.0.0.1:%s   (log: %s)\n' "${services[$i]}" "${ports[$i]}" "$log_dir/${services[$i]}.log"
done
echo "Press Ctrl-C to stop."

# Wait until a service dies or the user interrupts.
while true; do
  for i in "${!services[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "error: ${services[$i]} stopped unexpectedly; see $log_dir/${services[$i]}.log" >&2
      exit 1
    fi
  done
  sleep 1
done
