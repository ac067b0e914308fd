#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at PostgreSQL.
#
# When DATABASE_URL is already set, the command runs against it unchanged. Otherwise a
# throwaway PostgreSQL cluster is created in a temporary directory (as the `postgres` OS user
# when running as root, since root may not run the server), listening on a free port on
# 127.0.0.1 and on a unix socket inside that directory; a role and a database are created,
# DATABASE_URL (the application role) and DATABASE_ADMIN_URL (the superuser, for tests that
# must act as an operator) are exported, and everything is stopped and removed on exit.
#
# The four services' own login roles (deploy/postgres/service-roles.sql) are created too, each
# with a password of its own, exported as AUTH_DB_PASSWORD, PROVISIONING_DB_PASSWORD,
# REALTIME_DB_PASSWORD and STORAGE_DB_PASSWORD; lib/service-roles.sh gives each service its own
# DATABASE_URL from them (the `platform` role is then the tests' and the operator's only).
#
#   deploy/scripts/with-postgres.sh swift test
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

"$here/install-deps.sh"

# PLATFORM_PG_BIN picks the server's binaries (another major version than Debian's, to test
# against); by default the newest under /usr/lib/postgresql.
pg_bin="${PLATFORM_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "error: PostgreSQL server binaries not found (under /usr/lib/postgresql, or PLATFORM_PG_BIN)" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_db=(runuser -u postgres --)
else
  as_db=()
fi

. "$(dirname "${BASH_SOURCE[0]}")/lib/ports.sh"

dir="$(mktemp -d /tmp/platform-pg.XXXXXX)"
chmod 755 "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
port="$(pick_port)"
password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"

cleanup() {
  local status=$?
  "${as_db[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf '%s\n' "$password" > "$dir/pwfile"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/pwfile"; fi
"${as_db[@]}" "$pg_bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" -E UTF8 --no-locale \
  --no-sync --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
rm -f "$dir/pwfile"
mkdir -p "$dir/sock"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/sock"; fi

# fsync and friends are off: this cluster is thrown away (PLATFORM_PG_FSYNC=on keeps them on,
# for a benchmark that must pay for durable commits). max_locks_per_transaction is raised
# because tenants are schemas and tests create many.
if [ "${PLATFORM_PG_FSYNC:-off}" = on ]; then
  durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
else
  durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
fi
"${as_db[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
  "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock $durability \
   -c max_connections=400 -c max_locks_per_transaction=256 \
   -c shared_buffers=128MB" >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }

"${as_db[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres -d postgres <<SQL >/dev/null
CREATE ROLE platform LOGIN CREATEROLE CREATEDB PASSWORD '$password';
CREATE DATABASE platform OWNER platform;
SQL

# The services' roles: cluster-wide, so every database of this cluster (the tests' scratch
# databases too) can give each service its own. Their schemas are made per database
# (lib/service-roles.sh, the tests' TestPlatform).
service_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export AUTH_DB_PASSWORD PROVISIONING_DB_PASSWORD REALTIME_DB_PASSWORD STORAGE_DB_PASSWORD
AUTH_DB_PASSWORD="$(service_password)" PROVISIONING_DB_PASSWORD="$(service_password)"
REALTIME_DB_PASSWORD="$(service_password)" STORAGE_DB_PASSWORD="$(service_password)"
# The passwords through psql's environment (\getenv; runuser keeps it), not its command line.
{
  printf '\\getenv %s %s\n' auth_password AUTH_DB_PASSWORD provisioning_password PROVISIONING_DB_PASSWORD \
    realtime_password REALTIME_DB_PASSWORD storage_password STORAGE_DB_PASSWORD
  cat "$here/../postgres/service-roles.sql"
} | "${as_db[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres -d platform -f - >/dev/null

export DATABASE_URL="postgresql://platform:$password@127.0.0.1:$port/platform"
export DATABASE_ADMIN_URL="postgresql://postgres:$password@127.0.0.1:$port/platform"
export PLATFORM_PG_DIR="$dir" PLATFORM_PG_BIN="$pg_bin" PLATFORM_PG_PORT="$port"
echo "PostgreSQL ready on 127.0.0.1:$port (data in $dir)" >&2

"$@"
