#!/usr/bin/env bash
# The Swift tests again, on PostgreSQL 16: the version compose runs (deploy/compose.yaml), whose
# CREATEROLE rules differ from 15's (a role's creator gets an ADMIN-only membership in it, which
# RoleMembership must not take for a standing one). Debian 12 packages 15 only, so the server
# comes from PyPI: pgserver's self-contained PostgreSQL build (pinned below), in a folder of
# its own (PG16_TOOLS_DIR, default .tmp/postgres16), never in the system's Python. Runs on a
# throwaway cluster of its own (with-postgres.sh with PLATFORM_PG_BIN), after test.sh's build.
#
#   deploy/scripts/test-postgres16.sh                 # every Swift test
#   deploy/scripts/test-postgres16.sh --filter Roles  # extra arguments go to `swift test`
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
tools="${PG16_TOOLS_DIR:-$root/.tmp/postgres16}"
requirements=("pgserver==0.1.4")

. "$root/deploy/scripts/lib/python-tools.sh"
python_tools "$tools" "${requirements[@]}"
locate='import os, pgserver; print(os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin"))'
bin="$("$python" -c "$locate" 2>/dev/null || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "reinstalling pgserver (its PostgreSQL binaries are missing)" >&2
  install_python_tools "$tools" "${requirements[@]}"
  python_tools "$tools" "${requirements[@]}"
  bin="$("$python" -c "$locate")"
fi
version="$("$bin/postgres" --version)"
case "$version" in
  *" 16."*) ;;
  *) echo "error: expected PostgreSQL 16 from pgserver, got: $version" >&2; exit 1 ;;
esac
# The server runs as the postgres user when we are root: it must reach the binaries.
chmod -R a+rX "$tools"
echo "PostgreSQL 16 for the Swift tests: $version ($bin)" >&2

exec env -u DATABASE_URL -u DATABASE_ADMIN_URL PLATFORM_PG_BIN="$bin" \
  "$root/deploy/scripts/with-postgres.sh" swift test --skip-build --disable-xctest "$@"
