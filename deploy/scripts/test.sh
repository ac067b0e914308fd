#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, starts a throwaway PostgreSQL
# (unless DATABASE_URL is set), runs every test against it and the real service executables,
# and removes the database again. Before the Swift tests it checks the deployment files offline
# (deploy/scripts/check-deploy.sh); after them it verifies the consumer-driven contracts the
# Swift consumer tests wrote against the real providers (deploy/scripts/contracts.sh) and
# fuzzes every service against its OpenAPI document (deploy/scripts/fuzz.sh, schemathesis).
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

# The deployment files, checked offline (Dockerfile, compose, Kubernetes manifests, environment
# variables; deploy/scripts/check-deploy.sh). They count as one test in the closing line.
# PLATFORM_SKIP_DEPLOY_CHECKS=1 skips them (quick loops with --filter). Whatever a
# PLATFORM_SKIP_* variable skips is named before the closing line and counted in it.
skipped=()
deploy_passed=0
deploy_failed=0
if [ "${PLATFORM_SKIP_DEPLOY_CHECKS:-0}" != 1 ]; then
  if "$root/deploy/scripts/check-deploy.sh"; then deploy_passed=1; else deploy_failed=1; fi
else
  skipped+=("deployment checks (PLATFORM_SKIP_DEPLOY_CHECKS=1)")
fi

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

# Provider verification of the Pact files in contracts/pacts (the consumer tests above wrote
# them), with the official Pact verifier on a throwaway PostgreSQL of its own. One test in the
# closing line. PLATFORM_SKIP_CONTRACTS=1 skips it.
contracts_passed=0
contracts_failed=0
if [ "${PLATFORM_SKIP_CONTRACTS:-0}" != 1 ]; then
  if "$root/deploy/scripts/contracts.sh"; then contracts_passed=1; else contracts_failed=1; fi
else
  skipped+=("contract verification (PLATFORM_SKIP_CONTRACTS=1)")
fi

# Schema fuzzing of the executables just built, each against its own OpenAPI document
# (deploy/scripts/fuzz.sh: schemathesis, a throwaway database, real tenant credentials). It
# counts as one test in the closing line. PLATFORM_SKIP_FUZZ=1 skips it (quick loops).
fuzz_passed=0
fuzz_failed=0
fuzz_seconds=0
if [ "${PLATFORM_SKIP_FUZZ:-0}" != 1 ]; then
  start=$(date +%s)
  if "$root/deploy/scripts/fuzz.sh"; then fuzz_passed=1; else fuzz_failed=1; fi
  fuzz_seconds=$(( $(date +%s) - start ))
else
  skipped+=("schema fuzzing (PLATFORM_SKIP_FUZZ=1)")
fi

# One plain closing line, whatever the runner printed last.
total=$(grep -Eo 'Test run with [0-9]+ test' "$log" | tail -n 1 | grep -Eo '[0-9]+' || true)
failed=$(grep -cE '^✘ Test ".*" .*failed after' "$log" || true)
passed=$(( ${total:-0} - failed ))
echo "tests finished in ${test_seconds}s (build ${build_seconds}s)"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
if [ "$deploy_failed" -ne 0 ]; then
  echo "deployment checks FAILED (see the output of check-deploy.sh above)"
  [ "$status" -ne 0 ] || status=1
elif [ "$deploy_passed" -ne 0 ]; then
  echo "deployment checks passed"
fi
if [ "$contracts_failed" -ne 0 ]; then
  echo "contract verification FAILED (see the output of contracts.sh above)"
  [ "$status" -ne 0 ] || status=1
elif [ "$contracts_passed" -ne 0 ]; then
  echo "contract verification passed"
fi
if [ "$fuzz_failed" -ne 0 ]; then
  echo "schema fuzzing FAILED in ${fuzz_seconds}s (see the output of fuzz.sh above; reports in .tmp/fuzz)"
  [ "$status" -ne 0 ] || status=1
elif [ "$fuzz_passed" -ne 0 ]; then
  echo "schema fuzzing passed in ${fuzz_seconds}s"
fi
passed=$(( passed + deploy_passed + contracts_passed + fuzz_passed ))
failed=$(( failed + deploy_failed + contracts_failed + fuzz_failed ))
# CI reads "N passed, M failed" alone on the last line; ", K skipped" may follow it.
if [ ${#skipped[@]} -gt 0 ]; then
  list="$(printf ', %s' "${skipped[@]}")"
  echo "skipped: ${list#, }"
  echo "${passed} passed, ${failed} failed, ${#skipped[@]} skipped"
else
  echo "${passed} passed, ${failed} failed"
fi
exit "$status"
