#!/bin/sh
# Runs once, when the postgres container starts on an empty data volume (the official image
# runs /docker-entrypoint-initdb.d/*.sh as the superuser). Creates the role the services
# connect as, and its database — the same set-up deploy/scripts/with-postgres.sh makes for
# the tests.
#
# CREATEROLE, not superuser: provisioning creates one NOLOGIN role per tenant (`tenant_<slug>`)
# and grants it to itself; nothing else it does needs more than owning the `platform` database.
# The superuser (POSTGRES_PASSWORD) stays with the operator.
set -eu
: "${PLATFORM_DB_PASSWORD:?PLATFORM_DB_PASSWORD must be set for the postgres container}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     --set=platform_password="$PLATFORM_DB_PASSWORD" <<'SQL'
CREATE ROLE platform LOGIN CREATEROLE PASSWORD :'platform_password';
CREATE DATABASE platform OWNER platform;
SQL
