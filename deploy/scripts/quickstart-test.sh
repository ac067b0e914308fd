#!/usr/bin/env bash
# Runs the README's quick start exactly as written: starts the platform with the README's own
# run command (deploy/scripts/run.sh, on its fixed ports 8080–8084 and a throwaway PostgreSQL of
# its own), extracts the shell block between `<!-- quickstart:begin -->` and
# `<!-- quickstart:end -->` from README.md, runs it with bash (-e -u -o pipefail), and checks
# that it ended with the signed-up user's profile and streamed the project to ready. Stops the
# platform (SIGINT, as Ctrl-C) whatever happens.
#
#   deploy/scripts/quickstart-test.sh      # PLATFORM_BIN_DIR=DIR to skip the build
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
work="$(mktemp -d /tmp/quickstart.XXXXXX)"

for port in 8080 8081 8082 8083 8084; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: port $port is taken; the quick start uses run.sh's fixed ports 8080–8084" >&2
    exit 1
  fi
done

# The README's block, fences stripped.
python3 - "$root/README.md" >"$work/quickstart.sh" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
found = re.search(r"<!-- quickstart:begin -->\s*```sh\n(.*?)```\s*<!-- quickstart:end -->", text, re.S)
if not found:
    sys.exit("README.md has no quickstart block between <!-- quickstart:begin --> and <!-- quickstart:end -->")
print(found.group(1), end="")
PY
commands=$(grep -cv '^\s*$' "$work/quickstart.sh")
echo "quick start: $commands commands from README.md" >&2
if [ "$commands" -gt 8 ]; then
  echo "error: the quick start has $commands commands; the README promises at most 8" >&2
  exit 1
fi

# The platform, as the README starts it (its own PostgreSQL: DATABASE_URL is not passed on).
setsid env -u DATABASE_URL -u DATABASE_ADMIN_URL PLATFORM_LOG_DIR="$work/logs" PLATFORM_TOKEN_FILE="$work/operator-token" \
  "$root/deploy/scripts/run.sh" >"$work/run.log" 2>&1 &
run_pid=$!
stop() {
  kill -INT -- "-$run_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$run_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT

for _ in $(seq 1 600); do
  grep -q "The platform is ready" "$work/run.log" && break
  if ! kill -0 "$run_pid" 2>/dev/null; then
    echo "error: run.sh stopped before the platform was ready:" >&2
    tail -n 30 "$work/run.log" >&2
    exit 1
  fi
  sleep 0.5
done
grep -q "The platform is ready" "$work/run.log" || { echo "error: the platform did not get ready" >&2; tail -n 30 "$work/run.log" >&2; exit 1; }
grep -q "operator token $work/operator-token" "$work/run.log" || { echo "error: run.sh did not say where the operator token is" >&2; exit 1; }
[ "$(stat -c %a "$work/operator-token")" = 600 ] || { echo "error: the operator token file is readable by others" >&2; exit 1; }

(cd "$work" && timeout 300 bash -euo pipefail quickstart.sh) >"$work/out.txt" 2>"$work/err.txt" || {
  echo "error: the quick start failed:" >&2
  cat "$work/out.txt" "$work/err.txt" >&2
  tail -n 20 "$work/logs/provisioning.log" >&2 || true
  exit 1
}
grep -q '"status": "ready"' "$work/out.txt" || { echo "error: the event stream did not reach ready:" >&2; cat "$work/out.txt" >&2; exit 1; }
tail -n 1 "$work/out.txt" | grep -q '"email":"grace@example.com"' || {
  echo "error: the last command did not answer the signed-up user:" >&2
  tail -n 3 "$work/out.txt" >&2
  exit 1
}
echo "quick start: passed ($commands commands, from register to a signed-in tenant user)" >&2
