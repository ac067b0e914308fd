#!/usr/bin/env bash
# Measures the Postgres kit's pool beside pgbench, on the same database, in the same run, and
# prints the ratio. Release build; uses the throwaway PostgreSQL unless DATABASE_URL is set.
#
#   deploy/scripts/bench-postgres.sh [connections=8] [seconds=10]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
connections="${1:-8}"
seconds="${2:-10}"

if [ -z "${DATABASE_URL:-}" ]; then
  exec "$root/deploy/scripts/with-postgres.sh" "$0" "$@"
fi

swift build -c release --product postgres-bench >&2
bench="$(swift build -c release --show-bin-path)/postgres-bench"
pg_bin="${PLATFORM_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
threads=$(( connections < $(nproc) ? connections : $(nproc) ))

"$pg_bin/pgbench" -q -i -s 1 "$DATABASE_URL" >/dev/null 2>&1
script="$(mktemp)"; echo 'SELECT 1;' > "$script"
trap 'rm -f "$script"' EXIT

tps_of() { grep -Eo 'tps = [0-9.]+' | head -n1 | awk '{print $3}'; }

echo "connections=$connections seconds=$seconds cores=$(nproc)"
pg_s=$("$pg_bin/pgbench" -n -S -M extended -c "$connections" -j "$threads" -T "$seconds" "$DATABASE_URL" 2>/dev/null | tps_of)
kit_s=$("$bench" pgbench-S "$connections" "$seconds")
pg_1=$("$pg_bin/pgbench" -n -f "$script" -M extended -c "$connections" -j "$threads" -T "$seconds" "$DATABASE_URL" 2>/dev/null | tps_of)
kit_1=$("$bench" select1 "$connections" "$seconds")

kit_s_tps=$(echo "$kit_s" | grep -Eo 'tps=[0-9]+' | cut -d= -f2)
kit_1_tps=$(echo "$kit_1" | grep -Eo 'tps=[0-9]+' | cut -d= -f2)
echo "pgbench -S (extended protocol):  tps=$pg_s"
echo "$kit_s"
echo "pgbench SELECT 1 (extended):     tps=$pg_1"
echo "$kit_1"
awk -v a="$kit_s_tps" -v b="$pg_s" 'BEGIN { printf "ratio kit/pgbench, pgbench -S query: %.2f\n", a / b }'
awk -v a="$kit_1_tps" -v b="$pg_1" 'BEGIN { printf "ratio kit/pgbench, SELECT 1:        %.2f\n", a / b }'
"$pg_bin/pgbench" -q -i -I d "$DATABASE_URL" >/dev/null 2>&1 || true
