#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, starts a throwaway PostgreSQL
# (unless DATABASE_URL is set), runs every test against it and the real service executables,
# and removes the database again. Around the Swift tests, each of these counts as one test in
# the closing line:
#
#   - before: the deployment files, checked offline (deploy/scripts/check-deploy.sh);
#   - after: the Swift tests again on PostgreSQL 16, compose's version, from PyPI's pgserver
#     (deploy/scripts/test-postgres16.sh); the consumer-driven contracts the Swift consumer tests wrote, verified against the
#     real providers (deploy/scripts/contracts.sh); every service fuzzed against its OpenAPI
#     document (deploy/scripts/fuzz.sh, schemathesis); the supabase-py acceptance suite, the
#     official client SDK against tenant auth's GoTrue API through the gateway
#     (deploy/scripts/sdk-tests.sh); the README's quick start, run as written against run.sh
#     (deploy/scripts/quickstart-test.sh); and the saga's fault campaign, CHAOS_RUNS (50) randomized
#     runs with a fresh, printed seed (deploy/scripts/chaos.sh).
#
# PLATFORM_SKIP_DEPLOY_CHECKS=1, PLATFORM_SKIP_PG16=1, PLATFORM_SKIP_CONTRACTS=1, PLATFORM_SKIP_FUZZ=1,
# PLATFORM_SKIP_SDK=1, PLATFORM_SKIP_QUICKSTART=1 and PLATFORM_SKIP_CHAOS=1 skip them (quick loops); what was skipped is named before the closing
# line and counted in it.
#
#   deploy/scripts/test.sh                 # everything
#   deploy/scripts/test.sh --filter Pool   # extra arguments go to `swift test`
#   PLATFORM_SKIP_DEPLOY_CHECKS=1 PLATFORM_SKIP_FUZZ=1 deploy/scripts/test.sh --filter Pool   # quick loop
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

"$root/deploy/scripts/install-deps.sh"

if ! command -v swift >/dev/null 2>&1; then
  echo "error: the Swift toolchain (6.x) is not on PATH; see https://www.swift.org/install/" >&2
  exit 1
fi

skipped=()
checks_passed=0
checks_failed=0
reports=()

# Runs one check (a command) as one test of the closing line, unless its PLATFORM_SKIP_*
# variable is 1: check LABEL SKIP_VARIABLE COMMAND…
check() {
  local label=$1 skip=$2 began
  shift 2
  if [ "${!skip:-0}" = 1 ]; then
    skipped+=("$label ($skip=1)")
    return
  fi
  began=$(date +%s)
  if "$@"; then
    checks_passed=$(( checks_passed + 1 ))
    reports+=("$label passed in $(( $(date +%s) - began ))s")
  else
    checks_failed=$(( checks_failed + 1 ))
    reports+=("$label FAILED in $(( $(date +%s) - began ))s (see its output above)")
  fi
}

check "deployment checks" PLATFORM_SKIP_DEPLOY_CHECKS "$root/deploy/scripts/check-deploy.sh"

start=$(date +%s)
swift build --build-tests
build_seconds=$(( $(date +%s) - start ))
echo "build finished in ${build_seconds}s" >&2

export PLATFORM_BIN_DIR
PLATFORM_BIN_DIR="$(swift build --show-bin-path)"

log="$(mktemp /tmp/platform-test-output.XXXXXX)"
trap 'rm -f "$log"' EXIT

start=$(date +%s)
set +e
"$root/deploy/scripts/with-postgres.sh" swift test --skip-build --disable-xctest "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
test_seconds=$(( $(date +%s) - start ))

check "Swift tests on PostgreSQL 16" PLATFORM_SKIP_PG16 "$root/deploy/scripts/test-postgres16.sh" "$@"
check "contract verification" PLATFORM_SKIP_CONTRACTS "$root/deploy/scripts/contracts.sh"
check "schema fuzzing" PLATFORM_SKIP_FUZZ "$root/deploy/scripts/fuzz.sh"
check "SDK acceptance" PLATFORM_SKIP_SDK "$root/deploy/scripts/sdk-tests.sh"
check "README quick start" PLATFORM_SKIP_QUICKSTART "$root/deploy/scripts/quickstart-test.sh"
check "fault campaign" PLATFORM_SKIP_CHAOS "$root/deploy/scripts/chaos.sh" "${CHAOS_RUNS:-50}"

# One plain closing line, whatever the runner printed last.
total=$(grep -Eo 'Test run with [0-9]+ test' "$log" | tail -n 1 | grep -Eo '[0-9]+' || true)
failed=$(grep -cE '^✘ Test ".*" .*failed after' "$log" || true)
passed=$(( ${total:-0} - failed ))
echo "tests finished in ${test_seconds}s (build ${build_seconds}s)"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
for report in "${reports[@]}"; do echo "$report"; done
if [ "$checks_failed" -ne 0 ] && [ "$status" -eq 0 ]; then
  status=1
fi
passed=$(( passed + checks_passed ))
failed=$(( failed + checks_failed ))
# CI reads "N passed, M failed" alone on the last line; ", K skipped" may follow it.
if [ ${#skipped[@]} -gt 0 ]; then
  list="$(printf ', %s' "${skipped[@]}")"
  echo "skipped: ${list#, }"
  echo "${passed} passed, ${failed} failed, ${#skipped[@]} skipped"
else
  echo "${passed} passed, ${failed} failed"
fi
exit "$status"
