# shellcheck shell=bash
# Sourced by run.sh, fuzz.sh and sdk-tests.sh: each service connects as its own database role,
# as a deployment's do (deploy/postgres/service-roles.sql makes the roles, service-schemas.sql
# their schemas).
#
#   service_roles_prepare
#       When with-postgres.sh made the services' roles (AUTH_DB_PASSWORD, PROVISIONING_DB_PASSWORD,
#       REALTIME_DB_PASSWORD, STORAGE_DB_PASSWORD and DATABASE_ADMIN_URL are set): makes their
#       schemas in DATABASE_URL's database, as the superuser, and sets AUTH_DATABASE_URL,
#       PROVISIONING_DATABASE_URL, REALTIME_DATABASE_URL and STORAGE_DATABASE_URL (that database,
#       each service's own role), which services_start gives each service as its DATABASE_URL;
#       they are not exported, so no service's environment holds another's password. Exports
#       provisioning's AUTH_DATABASE_ROLE and REALTIME_DATABASE_ROLE. Otherwise (a DATABASE_URL
#       the caller gave) it does nothing, and every service connects as DATABASE_URL's role.

service_roles_prepare() {
  local name variable
  for name in AUTH PROVISIONING REALTIME STORAGE; do
    variable="${name}_DB_PASSWORD"
    if [ -z "${!variable:-}" ] || [ -z "${DATABASE_ADMIN_URL:-}" ]; then return 0; fi
  done
  local admin_url
  admin_url="$(_service_roles_url "$DATABASE_ADMIN_URL" "" "" "$DATABASE_URL")"
  psql "$admin_url" -X -q -v ON_ERROR_STOP=1 -f "$(dirname "${BASH_SOURCE[0]}")/../../postgres/service-schemas.sql" >/dev/null
  for name in auth provisioning realtime storage; do
    variable="${name^^}_DB_PASSWORD"
    printf -v "${name^^}_DATABASE_URL" '%s' "$(_service_roles_url "$DATABASE_URL" "platform_$name" "${!variable}" "$DATABASE_URL")"
  done
  export AUTH_DATABASE_ROLE=platform_auth REALTIME_DATABASE_ROLE=platform_realtime
}

# URL [USER PASSWORD] DATABASE_FROM: URL with that user and password (when given) and the
# database DATABASE_FROM names.
_service_roles_url() {
  python3 -c 'import sys, urllib.parse as u
url, user, password, target = sys.argv[1:]
parts = u.urlsplit(url)
netloc = parts.netloc
if user:
    host = netloc.rsplit("@", 1)[-1]
    netloc = u.quote(user, safe="") + ":" + u.quote(password, safe="") + "@" + host
print(u.urlunsplit(parts._replace(netloc=netloc, path=u.urlsplit(target).path)))' "$@"
}
