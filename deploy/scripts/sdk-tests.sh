#!/usr/bin/env bash
# The supabase-py acceptance suite (issues 11 and 12): the official clients from PyPI, unchanged,
# against the platform's GoTrue-compatible tenant auth (`/auth/v1/…`) and its Storage API
# (`/storage/v1/…`) behind the gateway.
#
# Starts the four services (the executables in PLATFORM_BIN_DIR, else a debug build's) on free
# ports, on a scratch database (created next to DATABASE_URL's and dropped afterwards; without
# DATABASE_URL on a throwaway PostgreSQL from deploy/scripts/with-postgres.sh), and the gateway
# (deploy/scripts/lib/gateway.sh) in front of them; then runs deploy/scripts/sdk/ with pytest.
# The suite makes two projects, and a third for storage's quota, the real way (POST /v1/register
# on auth, then provisioning's GET /v1/projects/{id} until ready: the first ready answer carries
# the API keys) and drives
# `supabase_auth.SyncGoTrueClient` (publishable key), its admin API (secret key) and
# `supabase.create_client` through the gateway: sign-up, sign-in, refresh (explicit and
# automatic), the user, sign-out scopes, claims and JWKS, the admin API, the errors as the
# client raises them, every not-enabled feature's documented answer, and cross-project refusals;
# and `create_client(...).storage` (storage3): buckets, objects, limits and the project's quota,
# who may do what, object names; tuspy's resumable uploads (`/storage/v1/upload/resumable`):
# chunks, a connection cut mid-PATCH and resumed, the bytes compared; and boto3 against the S3
# endpoint (`/storage/v1/s3`, test_s3.py) with access keys the projects issue. What each test
# expects is docs/protocols/gotrue-reference.md and docs/protocols/storage-reference.md.
#
# The services run with a fresh INTERNAL_SERVICE_TOKEN, token rate limits raised (one client
# address signs in hundreds of times) and REFRESH_REUSE_GRACE_SECONDS=0 (a reused refresh token
# is refused at once, so the suite needs no waiting). Everything started here is stopped on exit,
# failure included. The output ends with the client methods the passing tests exercised; the
# exit status is pytest's (non-zero on any failure). Logs of the services and a JUnit report go
# to .tmp/sdk/ (SDK_OUTPUT_DIR).
#
# The clients come from PyPI, pinned, into a virtualenv under .tmp/sdk-tools that is reused while
# the pins are unchanged (SDK_TOOLS_DIR moves it). Needs python3, curl, psql, nginx (Debian's,
# deploy/scripts/install-deps.sh installs it) and PyPI.
#
#   deploy/scripts/sdk-tests.sh
#   deploy/scripts/sdk-tests.sh -k refresh -x        # extra arguments go to pytest
#   SCRATCH=.build-x deploy/scripts/sdk-tests.sh     # build in another scratch path
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$root/deploy/scripts/sdk-tests.sh" "$@"
fi

# supabase 2.34.1 pins its own clients exactly; the rest as the protocol reference was read with.
requirements=(
  "supabase==2.34.1"
  "supabase-auth==2.34.1"
  "postgrest==2.34.1"
  "realtime==2.34.1"
  "storage3==2.34.1"
  "supabase-functions==2.34.1"
  "httpx==0.28.1"
  "pydantic==2.14.4"
  "PyJWT==2.15.1"
  "pytest==9.2.0"
  "tuspy==1.1.0"
  "boto3==1.44.8"
)
tools="${SDK_TOOLS_DIR:-$root/.tmp/sdk-tools}"
output="${SDK_OUTPUT_DIR:-$root/.tmp/sdk}"

for tool in python3 curl psql; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is required (deploy/scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done

# --- Tools (as contracts.sh and check-deploy.sh install theirs) --------------------------------

. "$root/deploy/scripts/lib/python-tools.sh"
python_tools "$tools" "${requirements[@]}"
if ! "$python" -c 'import supabase, supabase_auth, pytest, tusclient, boto3' >/dev/null 2>&1; then
  echo "reinstalling the SDK tools (they do not import)" >&2
  install_python_tools "$tools" "${requirements[@]}"
  python_tools "$tools" "${requirements[@]}"
fi

# --- The platform ----------------------------------------------------------------------------

if [ -n "${PLATFORM_BIN_DIR:-}" ]; then
  bin="$PLATFORM_BIN_DIR"
else
  scratch=()
  if [ -n "${SCRATCH:-}" ]; then scratch=(--scratch-path "$SCRATCH"); fi
  swift build "${scratch[@]}" >&2
  bin="$(swift build "${scratch[@]}" --show-bin-path)"
fi
for name in auth provisioning realtime storage; do
  if [ ! -x "$bin/$name" ]; then
    echo "error: no executable $bin/$name (build first, or set PLATFORM_BIN_DIR)" >&2
    exit 1
  fi
done

# The gateway: the SDK is pointed at it, as an app would be. (SDK_VIA_GATEWAY=0 points it at
# auth's and storage's own ports instead, which serve /auth/v1 and /storage/v1 under the same
# paths: for telling a gateway problem from a service's. The CORS test needs the gateway.)
via_gateway="${SDK_VIA_GATEWAY:-1}"

rm -rf "$output"
mkdir -p "$output/logs"
work="$(mktemp -d /tmp/platform-sdk.XXXXXX)"

. "$root/deploy/scripts/lib/services.sh"
. "$root/deploy/scripts/lib/gateway.sh"
. "$root/deploy/scripts/lib/scratch-database.sh"
gateway_started=0
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$gateway_started" = 1 ]; then gateway_stop || true; fi
  services_stop
  scratch_database_drop
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A scratch database on DATABASE_URL's server (lib/scratch-database.sh).
scratch_database_create platform_sdk
# Each service as its own database role there (when with-postgres.sh made the roles).
. "$root/deploy/scripts/lib/service-roles.sh"
service_roles_prepare

declare -A port
for name in auth provisioning realtime storage gateway; do
  port[$name]="$(pick_port)"
  while [ "$(printf '%s\n' "${port[@]}" | sort | uniq -d)" != "" ]; do port[$name]="$(pick_port)"; done
done

export INTERNAL_SERVICE_TOKEN
INTERNAL_SERVICE_TOKEN="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SIGNING_KEY_ENCRYPTION_KEY
SIGNING_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AUTH_URL="http://127.0.0.1:${port[auth]}"
export PROVISIONING_URL="http://127.0.0.1:${port[provisioning]}"
export REALTIME_URL="http://127.0.0.1:${port[realtime]}"
export STORAGE_URL="http://127.0.0.1:${port[storage]}"
export STORAGE_ROOT="$work/storage"
export HOST=127.0.0.1 LOG_FORMAT=json LOG_LEVEL="${SDK_SERVICE_LOG_LEVEL:-notice}"
# One client address signs in hundreds of times (TokenSettings: per address and per account).
export TOKEN_RATE_LIMIT_PER_IP=100000 TOKEN_RATE_LIMIT_PER_ACCOUNT=100000 REGISTRATION_RATE_LIMIT_PER_IP=100000 REGISTRATION_RATE_LIMIT_GLOBAL=100000
# A reused refresh token is refused at once (the reference's reuse interval 0), so the reuse
# test needs no waiting.
export REFRESH_REUSE_GRACE_SECONDS=0
# Projects are also named by host, <slug>.sdk.localhost (the suite sends the Host header).
export PLATFORM_DOMAIN=sdk.localhost SDK_PLATFORM_DOMAIN=sdk.localhost
# As run.sh has it: X-Forwarded-For is believed from the gateway only, and the status URLs
# handed out point at provisioning through the gateway.
if [ "$via_gateway" = 1 ]; then
  export TRUSTED_PROXIES=127.0.0.1 PROVISIONING_PUBLIC_URL="http://127.0.0.1:${port[gateway]}/platform/provisioning"
fi
export PROVISIONING_RETRY_BASE_MS=50 PROVISIONING_RETRY_MAX_MS=500 PROVISIONING_POLL_MS=200

services_start "$bin" "$output/logs" \
  "auth:${port[auth]}" "provisioning:${port[provisioning]}" "realtime:${port[realtime]}" "storage:${port[storage]}"
services_wait_ready
echo "services ready: auth ${port[auth]}, provisioning ${port[provisioning]}, realtime ${port[realtime]}, storage ${port[storage]}" >&2

if [ "$via_gateway" = 1 ]; then
  gateway_started=1
  GATEWAY_DIR="$work/gateway" GATEWAY_LOG_DIR="$output/logs" \
    gateway_start "${port[gateway]}" "$AUTH_URL" "$PROVISIONING_URL" "$REALTIME_URL" "$STORAGE_URL"
  base="http://127.0.0.1:${port[gateway]}"
  export SDK_BASE_URL="$base" SDK_PLATFORM_AUTH_URL="$base/platform/auth" SDK_PROVISIONING_URL="$base/platform/provisioning"
  export SDK_STORAGE_BASE_URL="$base"
  echo "gateway ready on ${port[gateway]}: the clients use $base" >&2
else
  export SDK_BASE_URL="$AUTH_URL" SDK_PLATFORM_AUTH_URL="$AUTH_URL" SDK_PROVISIONING_URL="$PROVISIONING_URL"
  export SDK_STORAGE_BASE_URL="$STORAGE_URL"
  set -- --ignore=test_gateway.py "$@"
  echo "note: without the gateway, its own tests (test_gateway.py) are left out" >&2
fi

# --- The suite -------------------------------------------------------------------------------

# Storage's own port (its internal registry and limits route; the gateway exposes neither) and
# the scratch database, where the storage tests make one project's quota small as an operator
# would (storage.tenants.quota_bytes: no API sets it), as the superuser when the services have
# roles of their own (the `platform` role then owns none of their schemas).
export SDK_STORAGE_URL="$STORAGE_URL" SDK_DATABASE_URL="${service_roles_admin_url:-$DATABASE_URL}"
# Storage's process, whose resident memory the 1 GiB test (test_large_objects.py) watches.
export SDK_STORAGE_PID="${_service_pid[storage]}"

set +e
(
  cd "$root/deploy/scripts/sdk"
  PYTHONDONTWRITEBYTECODE=1 "$python" -m pytest -c "$root/deploy/scripts/sdk/pytest.ini" \
    --junitxml "$output/junit.xml" "$@"
)
status=$?
set -e
for name in auth provisioning realtime storage; do
  if ! services_alive "$name"; then
    echo "FAILED: $name is no longer running (crashed?); last lines of its log:"
    tail -n 20 "$output/logs/$name.log"
    status=1
  fi
done
echo "service logs: $output/logs, JUnit report: $output/junit.xml"
exit "$status"
