#!/usr/bin/env bash
# Schema fuzzing: schemathesis (from PyPI) against each service's own OpenAPI document.
#
# Starts the four services (the executables in PLATFORM_BIN_DIR, else a debug build's) on a
# scratch database (created next to DATABASE_URL's and dropped afterwards; without DATABASE_URL
# on a throwaway PostgreSQL from deploy/scripts/with-postgres.sh), provisions one project so there
# are real tenant credentials (POST /v1/register on auth, then provisioning's GET /v1/projects/{id}
# until ready: the first ready answer carries the API keys), signs developers and tenant users
# in, then runs `schemathesis run` against http://127.0.0.1:PORT/openapi.json of auth, realtime,
# storage and provisioning with
#
#   - the service token (X-Service-Token) for internal and operator routes, the secret key
#     (apikey) for tenant routes, a developer's and a tenant user's access tokens as bearers,
#     and the provisioned project's slug for every {slug}; on auth's GoTrue routes (/auth/v1/,
#     where the key names the project) the publishable key as `apikey` (header or query) and
#     the secret key on /auth/v1/admin/; on storage's Storage API (/storage/v1/) the secret key
#     as `apikey` (header or query) and as the bearer (the service); on realtime's (/realtime/v1/)
#     the secret key as `apikey` (header or query); the logout routes, which end sessions, run separately
#     with a second developer and a second user (GoTrue's with a third user), and the admin
#     routes of users (`…/admin/users…`), which delete, ban and re-password whichever user they
#     find (schemathesis reuses ids from earlier answers: the signed-in users' too), run last;
#   - the checks not_a_server_error, status_code_conformance, content_type_conformance,
#     response_schema_conformance and response_headers_conformance, plus unsupported_method and
#     allow_header_conformance (an undocumented method on a documented path is 405 with Allow),
#     in the examples, coverage, fuzzing and stateful phases (stateful: the documents' links
#     and those schemathesis infers);
#   - at most FUZZ_MAX_EXAMPLES cases per operation (default 300) and a fixed seed
#     (FUZZ_SEED), so a run takes two or three minutes on two cores and can be repeated; one
#     worker (hypothesis parsing lambdas in several threads trips CPython 3.11's "AST constructor
#     recursion depth mismatch" now and then, failing the run for nothing).
#
# Fails on any 5xx, any answer that does not match the document (status, content type, body),
# or a service that stopped; prints the number of requests made per service. Reports (JUnit and
# schemathesis' NDJSON events), the output and the services' logs go to .tmp/fuzz/
# (FUZZ_OUTPUT_DIR); `schemathesis replay` or the printed curl line reproduces a failure.
#
# The tool comes from PyPI, pinned, into a virtualenv under .tmp/fuzz-tools that is reused while
# the pin is unchanged (FUZZ_TOOLS_DIR moves it). Needs python3, curl, psql and PyPI.
#
#   deploy/scripts/fuzz.sh
#   FUZZ_MAX_EXAMPLES=50 deploy/scripts/fuzz.sh auth     # fewer cases, only the named services
#   FUZZ_CHECKS=all deploy/scripts/fuzz.sh               # every schemathesis check (exploring)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$root/deploy/scripts/fuzz.sh" "$@"
fi

requirements=("schemathesis==4.32.5")
# Serializers for media types schemathesis does not know (storage's TUS bytes).
export SCHEMATHESIS_HOOKS="$root/deploy/scripts/fuzz_hooks.py"
tools="${FUZZ_TOOLS_DIR:-$root/.tmp/fuzz-tools}"
output="${FUZZ_OUTPUT_DIR:-$root/.tmp/fuzz}"
max_examples="${FUZZ_MAX_EXAMPLES:-300}"
seed="${FUZZ_SEED:-20250101}"
checks="${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,allow_header_conformance}"
services=(auth realtime storage provisioning)
if [ $# -gt 0 ]; then services=("$@"); fi

for tool in python3 curl psql; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is required (deploy/scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
done

# --- Tools -----------------------------------------------------------------------------------

. "$root/deploy/scripts/lib/python-tools.sh"
python_tools "$tools" "${requirements[@]}"
schemathesis="$tools_bin/schemathesis"
if [ ! -x "$schemathesis" ]; then
  echo "reinstalling schemathesis (the executable is missing)" >&2
  install_python_tools "$tools" "${requirements[@]}"
  python_tools "$tools" "${requirements[@]}"
fi

# --- The platform ----------------------------------------------------------------------------

if [ -n "${PLATFORM_BIN_DIR:-}" ]; then
  bin="$PLATFORM_BIN_DIR"
else
  swift build
  bin="$(swift build --show-bin-path)"
fi
for name in auth provisioning realtime storage; do
  if [ ! -x "$bin/$name" ]; then
    echo "error: no executable $bin/$name (build first, or set PLATFORM_BIN_DIR)" >&2
    exit 1
  fi
done

rm -rf "$output"
mkdir -p "$output/logs" "$output/reports"
work="$(mktemp -d /tmp/platform-fuzz.XXXXXX)"

. "$root/deploy/scripts/lib/services.sh"
. "$root/deploy/scripts/lib/scratch-database.sh"
declare -A port
cleanup() {
  local status=$?
  services_stop
  scratch_database_drop
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A scratch database on DATABASE_URL's server (lib/scratch-database.sh).
scratch_database_create platform_fuzz
# Each service as its own database role there (when with-postgres.sh made the roles).
. "$root/deploy/scripts/lib/service-roles.sh"
service_roles_prepare

for name in auth provisioning realtime storage; do
  port[$name]="$(pick_port)"
  while [ "$(printf '%s\n' "${port[@]}" | sort | uniq -d)" != "" ]; do port[$name]="$(pick_port)"; done
done

token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export INTERNAL_SERVICE_TOKEN="$token"
SIGNING_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SIGNING_KEY_ENCRYPTION_KEY
export AUTH_URL="http://127.0.0.1:${port[auth]}"
export PROVISIONING_URL="http://127.0.0.1:${port[provisioning]}"
export REALTIME_URL="http://127.0.0.1:${port[realtime]}"
export STORAGE_URL="http://127.0.0.1:${port[storage]}"
export STORAGE_ROOT="$work/storage"
export HOST=127.0.0.1 LOG_FORMAT=json LOG_LEVEL="${FUZZ_SERVICE_LOG_LEVEL:-notice}"
# Sign-ins are rate-limited per address; the fuzzer is one address making thousands of them.
export TOKEN_RATE_LIMIT_PER_IP=100000 TOKEN_RATE_LIMIT_PER_ACCOUNT=100000 REGISTRATION_RATE_LIMIT_PER_IP=100000 REGISTRATION_RATE_LIMIT_GLOBAL=100000
export PROVISIONING_RETRY_BASE_MS=50 PROVISIONING_RETRY_MAX_MS=500 PROVISIONING_POLL_MS=200

services_start "$bin" "$output/logs" \
  "auth:${port[auth]}" "provisioning:${port[provisioning]}" "realtime:${port[realtime]}" "storage:${port[storage]}"
services_wait_ready
echo "services ready: auth ${port[auth]}, provisioning ${port[provisioning]}, realtime ${port[realtime]}, storage ${port[storage]}" >&2

# --- Credentials -----------------------------------------------------------------------------

# json FIELD: one field of the JSON object on stdin (a dotted path), printed raw.
json() {
  python3 -c 'import json,sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1"
}
# call METHOD URL [BODY] [HEADER…]: the body of a 2xx answer, or the answer and exit 1.
call() {
  local method="$1" url="$2" body="${3:-}"
  shift 3 || shift $#
  local args=(-sS -X "$method" -w '\n%{http_code}' -H 'Content-Type: application/json')
  for header in "$@"; do args+=(-H "$header"); done
  if [ -n "$body" ]; then args+=(--data "$body"); fi
  local answer status
  answer="$(curl "${args[@]}" "$url")"
  status="${answer##*$'\n'}"
  answer="${answer%$'\n'*}"
  if [ "${status:0:1}" != 2 ]; then
    echo "error: $method $url answered $status: $answer" >&2
    exit 1
  fi
  printf '%s' "$answer"
}

suffix="$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
slug="fuzz_$suffix"
email="developer.$suffix@example.com"
password="fuzzing-platform-$suffix"
accepted="$(call POST "$AUTH_URL/v1/register" \
  "{\"email\":\"$email\",\"password\":\"$password\",\"project_name\":\"Fuzz $suffix\",\"slug\":\"$slug\"}")"
project="$(json project_id <<<"$accepted")"

keys=""
deadline=$(( $(date +%s) + 120 ))
while [ -z "$keys" ]; do
  status_json="$(call GET "$PROVISIONING_URL/v1/projects/$project" "" "X-Service-Token: $token")"
  state="$(json status <<<"$status_json")"
  case "$state" in
    ready) keys="$(call GET "$PROVISIONING_URL/v1/projects/$project/api-keys" "" "X-Service-Token: $token" \
             | python3 -c 'import json,sys; k={e["kind"]: e["key"] for e in json.load(sys.stdin)["keys"]}; print(k["publishable"], k["secret"])')" ;;
    failed) echo "error: provisioning the fuzz project failed: $status_json" >&2; exit 1 ;;
    *) if [ "$(date +%s)" -gt "$deadline" ]; then echo "error: the fuzz project is still $state" >&2; exit 1; fi; sleep 0.3 ;;
  esac
done
publishable="${keys%% *}"
secret="${keys##* }"

# The logout routes end sessions (`scope=global`: all of them), so they are fuzzed on their own
# with a second developer and a second tenant user (GoTrue's logout with a third, or the other
# logout would have ended its session first); everything else uses the first ones.
sign_in() { json access_token <<<"$(call POST "$AUTH_URL/v1/token?grant_type=password" "{\"email\":\"$1\",\"password\":\"$password\"}")"; }
sign_up() {
  json access_token <<<"$(call POST "$AUTH_URL/v1/tenants/$slug/signup" "{\"email\":\"$1\",\"password\":\"$password\"}" "apikey: $publishable")"
}
developer_token="$(sign_in "$email")"
logout_email="developer.$suffix.logout@example.com"
call POST "$AUTH_URL/v1/register" \
  "{\"email\":\"$logout_email\",\"password\":\"$password\",\"project_name\":\"Fuzz $suffix logout\",\"slug\":\"${slug}_logout\"}" >/dev/null
developer_logout_token="$(sign_in "$logout_email")"
user_token="$(sign_up "user.$suffix@example.com")"
user_logout_token="$(sign_up "user.$suffix.logout@example.com")"
gotrue_logout_token="$(sign_up "user.$suffix.gotrue.logout@example.com")"
echo "fuzz project $slug ($project) is ready; developers and tenant users signed in" >&2

# --- Fuzzing ---------------------------------------------------------------------------------

# One configuration per run (schemathesis.toml): credentials by security scheme and the slug.
# configure NAME SERVICE DEVELOPER_TOKEN USER_TOKEN
configure() {
  local file="$work/$1.toml"
  cat >"$file" <<TOML
# No state kept between runs (crash replays would make runs depend on earlier ones).
[cache]
enabled = false

[generation]
max-examples = $max_examples
database = "none"

[auth.openapi.ServiceToken]
api_key = "$token"
TOML
  case "$2" in
    auth)
      cat >>"$file" <<TOML

[auth.openapi.ApiKey]
api_key = "$secret"

[auth.openapi.DeveloperBearer]
bearer = "$3"

[auth.openapi.UserBearer]
bearer = "$4"

[auth.openapi.GoTrueApiKey]
api_key = "$publishable"

[auth.openapi.GoTrueApiKeyQuery]
api_key = "$publishable"

[auth.openapi.GoTrueSecretKey]
api_key = "$secret"

[parameters]
"path.slug" = "$slug"
TOML
      ;;
    provisioning)
      # Owners' project routes with a developer's token; a long poll waits 1 s at most (a
      # ready project's status does not change, and the wait would outlast the request timeout).
      cat >>"$file" <<TOML

[auth.openapi.DeveloperToken]
bearer = "$3"

[parameters]
"query.wait" = "1s"
TOML
      ;;
    realtime | storage)
      cat >>"$file" <<TOML

[auth.openapi.ApiKey]
api_key = "$secret"

[auth.openapi.UserBearer]
bearer = "$4"

[parameters]
"path.slug" = "$slug"
TOML
      ;;
  esac
  case "$2" in
    storage)
      # The Storage API: the secret key names the project and, as the bearer, acts as the
      # service (every bucket and object, no policy), as supabase-py and -js send it on a server.
      cat >>"$file" <<TOML

[auth.openapi.StorageApiKey]
api_key = "$secret"

[auth.openapi.StorageApiKeyQuery]
api_key = "$secret"

[auth.openapi.StorageBearer]
bearer = "$secret"
TOML
      ;;
    realtime)
      # Realtime's protocol routes (/realtime/v1/): the secret key names the project and acts
      # as the service (private channels too).
      cat >>"$file" <<TOML

[auth.openapi.RealtimeApiKey]
api_key = "$secret"

[auth.openapi.RealtimeApiKeyQuery]
api_key = "$secret"
TOML
      ;;
  esac
  echo "$file"
}

declare -A requests outcome
failures=0
all_phases=examples,coverage,fuzzing,stateful

# fuzz_run LABEL SERVICE CONFIG PHASES [schemathesis arguments…]: one schemathesis run; adds
# the requests it made to its service's count and records the outcome.
fuzz_run() {
  local label="$1" name="$2" config="$3" phases="$4"
  shift 4
  local base="http://127.0.0.1:${port[$name]}"
  echo
  echo "== schemathesis: $label ($base/openapi.json, at most $max_examples cases per operation)"
  set +e
  "$schemathesis" --no-color --config-file "$config" run "$base/openapi.json" \
    --url "$base" \
    --checks "$checks" \
    --phases "$phases" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 30 \
    --report junit,ndjson --report-dir "$output/reports/$label" \
    "$@" 2>&1 | tee "$output/$label.txt"
  local status=${PIPESTATUS[0]}
  set -e
  # Every request schemathesis made is one recorded interaction of a finished scenario.
  local count
  count="$(python3 - "$output/reports/$label" <<'PY'
import json, pathlib, sys
total = 0
for path in pathlib.Path(sys.argv[1]).glob("*.ndjson"):
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        finished = event.get("ScenarioFinished") if isinstance(event, dict) else None
        if finished:
            total += len((finished.get("recorder") or {}).get("interactions") or {})
print(total)
PY
)"
  requests[$name]=$(( ${requests[$name]:-0} + count ))
  if [ "$status" -ne 0 ]; then
    outcome[$name]="FAILED (schemathesis exit $status in $label)"
    failures=$((failures + 1))
  elif [ -z "${outcome[$name]:-}" ]; then
    outcome[$name]=passed
  fi
}

for name in "${services[@]}"; do
  case "$name" in
    auth)
      fuzz_run auth auth "$(configure auth auth "$developer_token" "$user_token")" "$all_phases" \
        --exclude-path-regex 'logout$|/admin/users'
      # No links lead to or from the logout routes: no stateful phase for them alone.
      fuzz_run auth-logout auth "$(configure auth-logout auth "$developer_logout_token" "$user_logout_token")" \
        examples,coverage,fuzzing --include-path-regex '^/v1/.*logout$'
      fuzz_run auth-gotrue-logout auth "$(configure auth-gotrue-logout auth "$developer_logout_token" "$gotrue_logout_token")" \
        examples,coverage,fuzzing --include-path-regex '^/auth/v1/logout$'
      # Last: they may delete or ban the users the runs above sign in with.
      fuzz_run auth-admin auth "$(configure auth-admin auth "$developer_token" "$user_token")" "$all_phases" \
        --include-path-regex '/admin/users'
      ;;
    provisioning)
      fuzz_run provisioning provisioning "$(configure provisioning provisioning "$developer_token" "")" "$all_phases"
      ;;
    realtime | storage)
      fuzz_run "$name" "$name" "$(configure "$name" "$name" "" "$user_token")" "$all_phases"
      ;;
    *) echo "error: unknown service $name" >&2; exit 1 ;;
  esac
  for other in auth provisioning realtime storage; do
    if ! services_alive "$other"; then
      echo "FAILED: $other is no longer running (crashed?); last lines of its log:"
      tail -n 20 "$output/logs/$other.log"
      outcome[$name]="FAILED ($other crashed)"
      failures=$((failures + 1))
      break 2
    fi
  done
done

echo
echo "== schema fuzzing: requests per service"
for name in "${services[@]}"; do
  printf '  %-13s %6s requests  %s\n' "$name" "${requests[$name]:-0}" "${outcome[$name]:-not run}"
done
echo "reports: $output/reports, service logs: $output/logs"
if [ "$failures" -gt 0 ]; then
  echo "schema fuzzing: $failures failed"
  exit 1
fi
echo "schema fuzzing: all passed"
