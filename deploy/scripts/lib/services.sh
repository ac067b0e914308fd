# shellcheck shell=bash
# Sourced by run.sh, fuzz.sh, sdk-tests.sh, bench-auth.sh and bench-provisioning.sh: the one way to start the
# service executables, wait until they answer `/ready`, and stop them.
#
#   services_start BIN_DIR LOG_DIR NAME:PORT...
#       Fails (status 1, nothing started) when an executable is missing or something already
#       answers on one of the ports. Otherwise starts each BIN_DIR/NAME in the background with
#       PORT set (and the caller's exported environment, less the superuser's URL and the
#       services' database passwords; DATABASE_URL is <NAME>_DATABASE_URL when that is set:
#       lib/service-roles.sh), its output appended to LOG_DIR/NAME.log, and records its pid,
#       port and log.
#   services_wait_ready [SECONDS]
#       Waits until every started service answers GET /ready with a 2xx, for at most SECONDS
#       (whole seconds) in all: default $PLATFORM_READY_TIMEOUT, else 120. Fails at once, with
#       the last 20 lines of its log, when a service's process exits; fails at the deadline
#       naming each service not ready yet, with its log's last lines.
#   services_stop [NAME...]
#       SIGTERM to the named services (default: all started), up to $PLATFORM_STOP_GRACE
#       seconds (default 30) for them to exit, then SIGKILL; waits for them and forgets them.
#       Safe to call again, and from an EXIT/INT/TERM trap; says something only when it has
#       to SIGKILL.
#   services_alive NAME      status 0 while NAME's process runs
#   services_started         status 0 while any started service has not been stopped
#
# Call services_start from the script's own shell, not inside $(…) or a pipeline: the
# services must be that shell's background jobs, so that it reaps them and sees them exit.
# verify_pacts.py (Python, one environment per provider) does the same in its own code, with
# the same variables and messages.

# shellcheck source=deploy/scripts/lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

declare -ga _services=()
declare -gA _service_pid=() _service_port=() _service_log=()

# ${EPOCHREALTIME//[!0-9]/} below: microseconds since the epoch, without a fork (bash 5; the
# separator it drops depends on the locale).

services_start() {
  local bin="$1" log_dir="$2"
  shift 2
  local spec name port database
  for spec in "$@"; do
    name="${spec%%:*}"; port="${spec#*:}"
    if [ ! -x "$bin/$name" ]; then
      echo "error: no executable $bin/$name" >&2
      return 1
    fi
    if ! port_is_free "$port"; then
      echo "error: something already answers on port $port (wanted by $name)" >&2
      return 1
    fi
  done
  mkdir -p "$log_dir"
  for spec in "$@"; do
    name="${spec%%:*}"; port="${spec#*:}"
    database="${name^^}_DATABASE_URL"
    DATABASE_URL="${!database:-${DATABASE_URL:-}}" PORT="$port" \
      env -u DATABASE_ADMIN_URL -u AUTH_DB_PASSWORD -u PROVISIONING_DB_PASSWORD -u REALTIME_DB_PASSWORD -u STORAGE_DB_PASSWORD \
      "$bin/$name" >>"$log_dir/$name.log" 2>&1 &
    _service_pid[$name]=$!
    _service_port[$name]="$port"
    _service_log[$name]="$log_dir/$name.log"
    # A service started again (after a kill) is listed once.
    if [[ " ${_services[*]} " != *" $name "* ]]; then _services+=("$name"); fi
  done
}

services_alive() {
  local pid="${_service_pid[$1]:-}"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

services_started() { [ ${#_services[@]} -gt 0 ]; }

# shellcheck disable=SC2120  # the argument is optional
services_wait_ready() {
  local timeout="${1:-${PLATFORM_READY_TIMEOUT:-120}}"
  local deadline=$(( ${EPOCHREALTIME//[!0-9]/} + timeout * 1000000 ))
  local pending=("${_services[@]}") waiting name status
  while :; do
    # Every service, ready or not: one that dies while another is still starting fails too.
    for name in "${_services[@]}"; do
      if ! services_alive "$name"; then
        status=0
        wait "${_service_pid[$name]}" 2>/dev/null || status=$?
        echo "error: $name exited (status $status) before the services were ready; last lines of ${_service_log[$name]}:" >&2
        tail -n 20 "${_service_log[$name]}" >&2
        return 1
      fi
    done
    waiting=()
    for name in "${pending[@]}"; do
      if ! curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:${_service_port[$name]}/ready" 2>/dev/null; then
        waiting+=("$name")
      fi
    done
    pending=("${waiting[@]}")
    if [ ${#pending[@]} -eq 0 ]; then return 0; fi
    if [ "${EPOCHREALTIME//[!0-9]/}" -ge "$deadline" ]; then
      for name in "${pending[@]}"; do
        echo "error: $name did not answer /ready on port ${_service_port[$name]} within ${timeout}s; last lines of ${_service_log[$name]}:" >&2
        tail -n 20 "${_service_log[$name]}" >&2
      done
      return 1
    fi
    sleep 0.2
  done
}

# shellcheck disable=SC2120  # no argument: all of them
services_stop() {
  local grace="${PLATFORM_STOP_GRACE:-30}"
  local names=("$@") name pid live=() kept=()
  if [ $# -eq 0 ]; then names=("${_services[@]}"); fi
  for name in "${names[@]}"; do
    pid="${_service_pid[$name]:-}"
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
    live+=("$name")
  done
  local deadline=$(( ${EPOCHREALTIME//[!0-9]/} + grace * 1000000 )) running
  while :; do
    running=0
    for name in "${live[@]}"; do
      if services_alive "$name"; then running=1; break; fi
    done
    if [ "$running" -eq 0 ] || [ "${EPOCHREALTIME//[!0-9]/}" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  for name in "${live[@]}"; do
    pid="${_service_pid[$name]}"
    if kill -0 "$pid" 2>/dev/null; then
      echo "warning: $name did not stop within ${grace}s of SIGTERM; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset '_service_pid[$name]' '_service_port[$name]' '_service_log[$name]'
  done
  for name in "${_services[@]}"; do
    if [ -n "${_service_pid[$name]:-}" ]; then kept+=("$name"); fi
  done
  _services=("${kept[@]}")
}
