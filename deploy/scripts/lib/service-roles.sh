# shellcheck shell=bash
# Sourced by run.sh, fuzz.sh and sdk-tests.sh: each service connects as its own database role,
# as a deployment's do (deploy/postgres/service-roles.sql makes the roles, service-schemas.sql
# their schemas). The work is deploy/scripts/service_roles.py's, which chaos.py imports too.
#
#   service_roles_prepare
#       When with-postgres.sh made the services' roles (AUTH_DB_PASSWORD, PROVISIONING_DB_PASSWORD,
#       REALTIME_DB_PASSWORD, STORAGE_DB_PASSWORD and DATABASE_ADMIN_URL are set): makes their
#       schemas in DATABASE_URL's database, as the superuser, and sets AUTH_DATABASE_URL,
#       PROVISIONING_DATABASE_URL, REALTIME_DATABASE_URL and STORAGE_DATABASE_URL (that database,
#       each service's own role), which services_start gives each service as its DATABASE_URL;
#       they are not exported, so no service's environment holds another's password. Exports
#       provisioning's AUTH_DATABASE_ROLE and REALTIME_DATABASE_ROLE; service_roles_admin_url
#       is the superuser's URL on that database (an operator's view of every schema). Otherwise
#       (a DATABASE_URL the caller gave) it does nothing, and every service connects as
#       DATABASE_URL's role.

service_roles_prepare() {
  local assignments
  assignments="$(python3 "$(dirname "${BASH_SOURCE[0]}")/../service_roles.py")" || return 1
  eval "$assignments"
}
