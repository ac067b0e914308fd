#!/usr/bin/env bash
# Runs the platform locally: the gateway (nginx) on GATEWAY_PORT (8080) in front of the four
# services on their own fixed ports, on a PostgreSQL of their own (a throwaway cluster started
# here unless DATABASE_URL is set). Ctrl-C stops everything this script started.
#
#   deploy/scripts/run.sh                               # debug build
#   CONFIGURATION=release deploy/scripts/run.sh         # release build
#   PLATFORM_BIN_DIR=/path/to/bin deploy/scripts/run.sh # those executables, no build
#   GATEWAY_PORT=9000 deploy/scripts/run.sh             # the gateway elsewhere
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$root/deploy/scripts/run.sh" "$@"
fi

"$root/deploy/scripts/install-deps.sh"

if [ -n "${PLATFORM_BIN_DIR:-}" ]; then
  bin="$PLATFORM_BIN_DIR"
else
  configuration="${CONFIGURATION:-debug}"
  swift build -c "$configuration"
  bin="$(swift build -c "$configuration" --show-bin-path)"
fi

log_dir="${PLATFORM_LOG_DIR:-$root/.tmp/logs}"
mkdir -p "$log_dir"

# One token for the services' internal calls and the operator's API, made fresh for this run
# unless one is given (INTERNAL_SERVICE_TOKEN). It is never printed: it goes to a file only its
# owner can read, whose path is printed below.
export INTERNAL_SERVICE_TOKEN="${INTERNAL_SERVICE_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
token_file="${PLATFORM_TOKEN_FILE:-$root/.tmp/operator-token}"
mkdir -p "$(dirname "$token_file")"
(umask 077 && printf '%s\n' "$INTERNAL_SERVICE_TOKEN" > "$token_file")
# The secret auth seals its signing keys with: made once and kept (a new one would leave the
# keys in a database that outlives this run unreadable), in a file only its owner can read,
# unless one is given (SIGNING_KEY_ENCRYPTION_KEY).
sealing_file="${PLATFORM_SEALING_KEY_FILE:-$root/.tmp/signing-key-encryption-key}"
mkdir -p "$(dirname "$sealing_file")"
if [ -z "${SIGNING_KEY_ENCRYPTION_KEY:-}" ]; then
  if [ ! -s "$sealing_file" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$sealing_file")
  fi
  SIGNING_KEY_ENCRYPTION_KEY="$(cat "$sealing_file")"
fi
export SIGNING_KEY_ENCRYPTION_KEY
export AUTH_URL="${AUTH_URL:-http://127.0.0.1:8081}"
export PROVISIONING_URL="${PROVISIONING_URL:-http://127.0.0.1:8082}"
export REALTIME_URL="${REALTIME_URL:-http://127.0.0.1:8083}"
export STORAGE_URL="${STORAGE_URL:-http://127.0.0.1:8084}"

# The gateway (deploy/scripts/lib/gateway.sh) is the address clients use. The services believe
# X-Forwarded-For from it only; it connects from 127.0.0.1, which on one machine also means
# anyone here talking to a service's own port directly may name their own address.
gateway_port="${GATEWAY_PORT:-8080}"
export TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1}"
# Status URLs handed to developers point at provisioning through the gateway.
export PROVISIONING_PUBLIC_URL="${PROVISIONING_PUBLIC_URL:-http://127.0.0.1:$gateway_port/platform/provisioning}"

services=(auth provisioning realtime storage)
ports=(8081 8082 8083 8084)

. "$root/deploy/scripts/lib/services.sh"
. "$root/deploy/scripts/lib/service-roles.sh"
. "$root/deploy/scripts/lib/gateway.sh"
stop_all() {
  trap - INT TERM EXIT
  # The gateway first: no new requests reach services that are stopping.
  if gateway_alive; then
    echo "stopping the gateway…" >&2
    gateway_stop
  fi
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
if ! port_is_free "$gateway_port"; then
  echo "error: something already answers on port $gateway_port (GATEWAY_PORT, wanted by the gateway)" >&2
  exit 1
fi
# Each service as its own database role (on the cluster with-postgres.sh started; a
# DATABASE_URL given here is every service's).
service_roles_prepare
services_start "$bin" "$log_dir" "${specs[@]}"
GATEWAY_LOG_DIR="$log_dir" gateway_start "$gateway_port" "$AUTH_URL" "$PROVISIONING_URL" "$REALTIME_URL" "$STORAGE_URL"
services_wait_ready

gateway="$(gateway_url)"
echo
echo "The platform is ready at $gateway   (log: $log_dir/gateway.log, requests: $log_dir/gateway-access.log)"
echo "  client SDKs    $gateway/auth/v1/  $gateway/storage/v1/  $gateway/realtime/v1/"
echo "  platform APIs  $gateway/platform/{auth,provisioning,realtime,storage}/…  (e.g. POST $gateway/platform/auth/v1/register)"
echo "  operator token $token_file   (X-Service-Token; readable by you only; INTERNAL_SERVICE_TOKEN sets it)"
echo "The services' own ports, for operators and tests:"
for i in "${!services[@]}"; do
  printf '  %-13s http://127.0.0.1:%s   (log: %s)\n' "${services[$i]}" "${ports[$i]}" "$log_dir/${services[$i]}.log"
done
echo "Press Ctrl-C to stop."

# Wait until a service or the gateway dies, or the user interrupts.
while true; do
  if ! gateway_alive; then
    echo "error: the gateway stopped unexpectedly; see $log_dir/gateway.log" >&2
    exit 1
  fi
  for name in "${services[@]}"; do
    if ! services_alive "$name"; then
      echo "error: $name stopped unexpectedly; see $log_dir/$name.log" >&2
      exit 1
    fi
  done
  # `wait` on a background sleep lets the INT/TERM trap run at once: a Ctrl-C reaches the
  # services too (they are in the terminal's process group), and the loop must not see them
  # exit first and call that unexpected.
  sleep 1 &
  wait $! || true
done
