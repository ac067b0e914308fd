# shellcheck shell=bash
# Sourced by fuzz.sh and sdk-tests.sh: a database of their own on DATABASE_URL's server, so the
# services' schemas and the projects a run makes land nowhere else and go with it. (Tenant roles
# are cluster-wide and stay, as after the Swift tests; with-postgres.sh's throwaway cluster
# takes them along.)
#
#   scratch_database_create PREFIX
#       Creates PREFIX_<8 hex digits> next to DATABASE_URL's database and points DATABASE_URL
#       (exported) at it; scratch_server_url keeps the original URL, scratch_database the name.
#   scratch_database_drop
#       Drops it (forcing its connections closed); safe to call again, and from an EXIT trap.

scratch_database_create() {
  scratch_server_url="$DATABASE_URL"
  scratch_database="$1_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  psql "$scratch_server_url" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $scratch_database" >/dev/null
  export DATABASE_URL
  DATABASE_URL="$(python3 -c 'import sys, urllib.parse as u
parts = u.urlsplit(sys.argv[1])
print(u.urlunsplit(parts._replace(path="/" + sys.argv[2])))' "$scratch_server_url" "$scratch_database")"
}

scratch_database_drop() {
  if [ -n "${scratch_database:-}" ]; then
    psql "$scratch_server_url" -X -q -c "DROP DATABASE IF EXISTS $scratch_database WITH (FORCE)" >/dev/null 2>&1 || true
    scratch_database=""
  fi
}
