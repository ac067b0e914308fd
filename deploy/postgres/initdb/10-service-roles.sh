#!/bin/sh
# Runs once, when the postgres container starts on an empty data volume (the official image
# runs /docker-entrypoint-initdb.d/*.sh as the superuser, against its temporary socket-only
# server). Makes what deploy/compose.yaml's services connect to:
#
#   1. deploy/postgres/service-roles.sql: the four services' login roles, platform_auth,
#      platform_provisioning (the only one with CREATEROLE: it creates a NOLOGIN role per
#      tenant), platform_realtime and platform_storage, with the passwords AUTH_DB_PASSWORD,
#      PROVISIONING_DB_PASSWORD, REALTIME_DB_PASSWORD and STORAGE_DB_PASSWORD;
#   2. the database `platform`, owned by the superuser (no service owns it);
#   3. deploy/postgres/service-schemas.sql in it: CONNECT and TEMPORARY for the four roles
#      only, CREATE (tenant schemas) for provisioning only, and the schemas auth, provisioning,
#      realtime and storage, each owned by its service's role.
#
# The two SQL files are mounted at /etc/platform-postgres (compose.yaml), not in this folder:
# the image would run a .sql file here by itself, without the passwords service-roles.sql
# needs. The passwords reach psql through its environment (\getenv), not its command line.
# The superuser (POSTGRES_PASSWORD) stays with the operator. This runs on an empty volume
# only: a later password change is `ALTER ROLE … PASSWORD` (or service-roles.sql run again).
set -eu
: "${AUTH_DB_PASSWORD:?AUTH_DB_PASSWORD must be set for the postgres container}"
: "${PROVISIONING_DB_PASSWORD:?PROVISIONING_DB_PASSWORD must be set for the postgres container}"
: "${REALTIME_DB_PASSWORD:?REALTIME_DB_PASSWORD must be set for the postgres container}"
: "${STORAGE_DB_PASSWORD:?STORAGE_DB_PASSWORD must be set for the postgres container}"
# PLATFORM_POSTGRES_SQL moves the SQL files (a test of this script outside the image).
sql="${PLATFORM_POSTGRES_SQL:-/etc/platform-postgres}"
export AUTH_DB_PASSWORD PROVISIONING_DB_PASSWORD REALTIME_DB_PASSWORD STORAGE_DB_PASSWORD

psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
     -v sql="$sql" <<'SQL'
\getenv auth_password AUTH_DB_PASSWORD
\getenv provisioning_password PROVISIONING_DB_PASSWORD
\getenv realtime_password REALTIME_DB_PASSWORD
\getenv storage_password STORAGE_DB_PASSWORD
\set roles :sql '/service-roles.sql'
\set schemas :sql '/service-schemas.sql'
\i :roles
CREATE DATABASE platform;
\connect platform
\i :schemas
SQL
