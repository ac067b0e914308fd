#!/usr/bin/env bash
# Per-statement cost of the tenant DDL and of auth's tenant transaction as tenants accumulate
# (issue 16, "Provisioning slows with every tenant"), the two candidate designs at the largest
# scale, and a reproduction of the `42501 permission denied for schema tenant_…` race.
#
#   deploy/scripts/bench-tenant-ddl.sh [levels=0,1000,3000] [samples=50] [fsync=on] [race_trials=100]
#
# What it does, on a throwaway PostgreSQL cluster (with-postgres.sh, always a new one: an
# inherited DATABASE_URL is ignored; fsync, synchronous_commit and full_page_writes are on
# unless fsync=off), whose application role `platform` is a LOGIN CREATEROLE non-superuser
# exactly as with-postgres.sh and the README make it:
#
# 1. For each level N: fills the cluster up to N tenants the platform role is a member of
#    (the cheapest faithful method: the same role / membership / schema / tenant migration,
#    as the superuser, 20 tenants a transaction, two sessions at once), then measures, on one
#    psql session as `platform`, per statement, p50 / p99 / mean over SAMPLES fresh tenants:
#      schema.*  create_tenant_schema, the statements of TenantDatabase.createSchemaAndRole
#                (the DO block with CREATE ROLE, GRANT … TO CURRENT_USER, CREATE SCHEMA …
#                AUTHORIZATION, REVOKE ALL ON SCHEMA … FROM PUBLIC), in one transaction;
#      tables.*  create_tenant_tables, the statements MigrationRunner(role:) sends: advisory lock,
#                ledger DDL, checksums, ledger read, then one transaction with search_path,
#                SET LOCAL ROLE, the tenant migration body (read at run time from
#                Services/Provisioning/TenantMigrations/*.sql), RESET ROLE, ledger insert;
#      auth.*    auth's tenant transaction (TenantUserStore.asTenant + credentials):
#                BEGIN; SET LOCAL ROLE tenant_x; SELECT … FROM tenant_x.users …; COMMIT.
#    Each in two conditions: `warm` (no role change by anyone since the session's last
#    statement, beyond what the measured DDL itself does) and `after_grant` (right before each
#    sample another connection of the platform, via dblink, did CREATE ROLE + GRANT … TO
#    CURRENT_USER, as a concurrent provisioning does). A `superuser` row set runs the same
#    provisioning DDL as the superuser for reference. *.TOTAL rows are the whole step.
# 2. At the largest level, the candidate designs (see docs/measurements/tenant-ddl-roles.md):
#      design_b  ALTER ROLE platform NOINHERIT (schema privileges the ledger needs are granted
#                to the platform directly, by the tenant role);
#      design_a  provisioning as a CREATEROLE role `provisioner` that is a member of no tenant
#                role but the one it is provisioning (GRANT … TO CURRENT_USER, REVOKE at the
#                end; it also grants the tenant role to `platform`, which stands for a separate
#                access role auth could SET ROLE from); auth through SECURITY DEFINER functions
#                owned by the tenant role, called by a login role `gateway` that is a member of
#                nothing.
# Times are psql's \timing (client side, one round trip each), not pgbench -r: pgbench
# reports only a mean per statement, and the p50/p99 per statement are wanted here.
# 3. The race: RACE_TRIALS times, this session runs a statement that rebuilds its cached role
#    memberships (another tenant's ledger DDL, or SET ROLE) at a random moment around the
#    commit of a new tenant's create_tenant_schema on another connection; then, in a new
#    transaction after that commit, it runs the new tenant's ledger DDL (variant privs) or
#    SET LOCAL ROLE (variant members) and, on failure, the same once more. privs_control is
#    privs where the other connection's role change leaves the cached pg_auth_members lists
#    valid. Run at the first and the last level, and under design_a at the last.
#
# Prints one table (statement, n, p50, p99, mean in ms; the `N` column is how many tenant
# roles the acting role was a member of when the row set started — for the superuser rows,
# platform's — so it includes what earlier row sets created) and the race counts.
# Bounded: BENCH_TIMEOUT seconds (default 1500) for the whole run; everything it starts
# (cluster, psql sessions) is stopped and removed on exit (BENCH_KEEP_WORK=1 keeps the generated
# SQL and psql outputs in /tmp/bench-tenant-ddl.*). About 3–5 minutes at the
# defaults on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
levels="${1:-0,1000,3000}"
samples="${2:-50}"
fsync="${3:-on}"
race_trials="${4:-100}"

if [ -z "${BENCH_TENANT_DDL_INSIDE:-}" ]; then
  export BENCH_TENANT_DDL_INSIDE=1 PLATFORM_PG_FSYNC="$fsync"
  exec timeout "${BENCH_TIMEOUT:-1500}" env -u DATABASE_URL -u DATABASE_ADMIN_URL \
    "$here/with-postgres.sh" "$0" "$@"
fi

pg_bin="$PLATFORM_PG_BIN"
app_url="$DATABASE_URL"
admin_url="$DATABASE_ADMIN_URL"
migration_file="$(ls "$root"/Services/Provisioning/TenantMigrations/0001_*.sql)"
work="$(mktemp -d /tmp/bench-tenant-ddl.XXXXXX)"
trap '[ -n "${BENCH_KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
results="$work/results.tsv"
: > "$results"
role_url() { echo "${app_url/\/\/platform:/\/\/$1:}"; }
export PGOPTIONS="-c statement_timeout=300s -c client_min_messages=warning"

psql_as() { # url, then psql arguments
  local url="$1"; shift
  "$pg_bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 "$url" "$@"
}
admin() { psql_as "$admin_url" "$@"; }
memberships() { # how many roles $1 is a member of
  admin -c "SELECT count(*) FROM pg_auth_members WHERE member = '$1'::regrole"
}
log() { echo "[$(date +%T)] $*" >&2; }

password="$(echo "$app_url" | sed -E 's#.*//platform:([^@]*)@.*#\1#')"
admin >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE ROLE provisioner LOGIN CREATEROLE PASSWORD '$password';
GRANT CREATE ON DATABASE platform TO provisioner;
CREATE ROLE gateway LOGIN PASSWORD '$password';
SQL

# ---------------------------------------------------------------------------------------------
# SQL generators. Every measured statement is preceded by `\echo @@ <label>`; psql's \timing
# prints `Time: … ms` after each statement; `@@ -` marks statements that are not measured;
# `@@+ g` / `@@- g` open and close a group whose statements are also summed as g.
# ---------------------------------------------------------------------------------------------

# create_tenant_schema, as TenantDatabase.createSchemaAndRole sends it (one simple query, so
# one implicit transaction; here BEGIN … COMMIT so that each statement is timed).
#   variant base: as is.  noinherit: the platform role is NOINHERIT, so the tenant role (the
#   owner) revokes PUBLIC and grants the platform the schema privileges the ledger needs.
#   transient: also grants the tenant role to the access role `platform` (design a keeps that
#   role only as auth's alternative; see the report).
schema_step() {
  local t="$1" variant="$2"
  cat <<SQL
\\echo @@+ schema.TOTAL
\\echo @@ schema.begin
BEGIN;
\\echo @@ schema.create_role_do
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '$t') THEN
        CREATE ROLE "$t" NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- created concurrently: same result
END
\$\$;
\\echo @@ schema.grant_to_current_user
GRANT "$t" TO CURRENT_USER;
\\echo @@ schema.create_schema_authorization
CREATE SCHEMA IF NOT EXISTS "$t" AUTHORIZATION "$t";
SQL
  case "$variant" in
    base|transient)
      printf '%s\n' '\echo @@ schema.revoke_all_from_public' "REVOKE ALL ON SCHEMA \"$t\" FROM PUBLIC;" ;;
    noinherit)
      printf '%s\n' '\echo @@ schema.set_local_role' "SET LOCAL ROLE \"$t\";" \
        '\echo @@ schema.revoke_all_from_public' "REVOKE ALL ON SCHEMA \"$t\" FROM PUBLIC;" \
        '\echo @@ schema.grant_schema_to_platform' "GRANT USAGE, CREATE ON SCHEMA \"$t\" TO platform;" \
        '\echo @@ schema.reset_role' "RESET ROLE;" ;;
  esac
  if [ "$variant" = transient ]; then
    printf '%s\n' '\echo @@ schema.grant_to_access_role' "GRANT \"$t\" TO platform;"
  fi
  printf '%s\n' '\echo @@ schema.commit' 'COMMIT;' '\echo @@- schema.TOTAL'
}

# create_tenant_tables, as MigrationRunner(schema:, migrations:, role:).run sends it.
tables_step() {
  local t="$1" variant="$2"
  cat <<SQL
\\echo @@+ tables.TOTAL
\\echo @@ tables.advisory_lock
SELECT pg_advisory_lock(hashtextextended('platform.migrations.$t', 0));
\\echo @@ tables.ledger_ddl
CREATE SCHEMA IF NOT EXISTS "$t" \\; CREATE TABLE IF NOT EXISTS "$t"._migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer     NOT NULL DEFAULT 0
);
\\echo @@ tables.checksums
SELECT encode(sha256(convert_to(:'migration', 'UTF8')), 'hex');
\\echo @@ tables.ledger_read
SELECT version, name, checksum FROM "$t"._migrations ORDER BY version;
\\echo @@ tables.begin
BEGIN;
\\echo @@ tables.search_path
SELECT set_config('search_path', '"$t", public', true);
\\echo @@ tables.set_local_role
SET LOCAL ROLE "$t";
\\echo @@ tables.migration_body
\\i $migration_file
\\echo @@ tables.reset_role
RESET ROLE;
\\echo @@ tables.ledger_insert
INSERT INTO "$t"._migrations (version, name, checksum, duration_ms)
VALUES (1, 'users_and_audit_log', encode(sha256(convert_to(:'migration', 'UTF8')), 'hex'), 0);
\\echo @@ tables.commit
COMMIT;
\\echo @@ tables.advisory_unlock
SELECT pg_advisory_unlock(hashtextextended('platform.migrations.$t', 0));
SQL
  if [ "$variant" = transient ]; then
    printf '%s\n' '\echo @@ tables.revoke_from_current_user' "REVOKE \"$t\" FROM CURRENT_USER;"
  fi
  printf '%s\n' '\echo @@- tables.TOTAL'
}

# auth's tenant transaction: TenantUserStore.asTenant { credentials(email) }.
auth_setrole() {
  local t="$1"
  cat <<SQL
\\echo @@+ auth.TOTAL
\\echo @@ auth.begin
BEGIN;
\\echo @@ auth.set_local_role
SET LOCAL ROLE "$t";
\\echo @@ auth.select_user
SELECT id, email, role, metadata, created_at, updated_at, last_sign_in_at, banned_until, password_hash
FROM "$t".users WHERE email_normalized = 'nobody@example.com';
\\echo @@ auth.commit
COMMIT;
\\echo @@- auth.TOTAL
SQL
}

# design a: the same read through a SECURITY DEFINER function owned by the tenant role.
auth_secdef() {
  local t="$1"
  cat <<SQL
\\echo @@+ auth.TOTAL
\\echo @@ auth.begin
BEGIN;
\\echo @@ auth.call_definer_function
SELECT * FROM "$t".user_credentials('nobody@example.com');
\\echo @@ auth.commit
COMMIT;
\\echo @@- auth.TOTAL
SQL
}

# What another connection of the platform does before an after_grant sample: a concurrent
# provisioning's role and membership.
other_grant() {
  local r="$1"
  printf '%s\n' '\echo @@ -' \
    "SELECT dblink_exec('other', 'CREATE ROLE \"$r\" NOLOGIN; GRANT \"$r\" TO CURRENT_USER');"
}

session_header() {
  printf '%s\n' '\timing on' "\\set migration \`cat $migration_file\`" '\echo @@ -' \
    "SELECT dblink_connect('other', '$app_url');"
}

# Parses a session's stdout into rows of $results: section, N, label, n, p50, p99, mean.
summarise() {
  local section="$1" n="$2" out="$3"
  awk '
    /^@@\+ / { open_[$2] = 1; cur[$2] = 0; if (!($2 in ord)) ord[$2] = ++k; next }
    /^@@- / { if ($2 in open_) { print ord[$2], $2, cur[$2]; delete open_[$2] } next }
    /^@@ / {
      if (lab != "" && lab != "-" && have) print ord[lab], lab, acc
      lab = $2; acc = 0; have = 0
      if (lab != "-" && !(lab in ord)) ord[lab] = ++k
      next
    }
    /^Time: / { acc += $2; have = 1; for (g in open_) cur[g] += $2; next }
    END { if (lab != "" && lab != "-" && have) print ord[lab], lab, acc }
  ' "$out" | sort -k1,1n -k3,3g | awk -v s="$section" -v n="$n" '
    function flush() {
      if (cnt == 0) return
      i50 = int(cnt * 0.50 + 0.999999); i99 = int(cnt * 0.99 + 0.999999)
      printf "%s\t%s\t%s\t%d\t%.2f\t%.2f\t%.2f\n", s, n, lab, cnt, v[i50], v[i99], sum / cnt
    }
    $2 != lab { flush(); lab = $2; cnt = 0; sum = 0 }
    { v[++cnt] = $3; sum += $3 }
    END { flush() }
  ' >> "$results"
}

next_id=0
# A new name (sets $name; no subshell, so the counter survives).
fresh() { next_id=$((next_id + 1)); name="$1$next_id"; }
declare -a with_tables=()

# Provisioning: samples fresh tenants, schema step then tables step on one session.
measure_provisioning() { # section url variant cond acting_role
  local section="$1" url="$2" variant="$3" cond="$4" acting="$5" sql="$work/s.sql" out="$work/s.out"
  local n; n="$(memberships "$acting")"
  session_header > "$sql"
  for _ in $(seq 1 "$samples"); do
    fresh tenant_m; local t="$name"
    if [ "$cond" = after_grant ]; then fresh tenant_g; other_grant "$name" >> "$sql"; fi
    schema_step "$t" "$variant" >> "$sql"
    tables_step "$t" "$variant" >> "$sql"
    # the superuser's GRANT … TO CURRENT_USER makes it, not platform, the member
    [ "$url" = "$admin_url" ] || with_tables+=("$t")
  done
  psql_as "$url" -o /dev/null -f "$sql" > "$out"
  summarise "$section/$cond" "$n" "$out"
}

# Auth: samples transactions on random existing tenants.
measure_auth() { # section url kind cond acting_role
  local section="$1" url="$2" kind="$3" cond="$4" acting="$5" sql="$work/a.sql" out="$work/a.out"
  local n; n="$(memberships "$acting")"
  local count=${#with_tables[@]}
  session_header > "$sql"
  # warm-up: the first transaction of a session loads its caches
  "auth_$kind" "${with_tables[0]}" | sed 's/^\\echo @@.*/\\echo @@ -/' >> "$sql"
  for _ in $(seq 1 "$samples"); do
    local t="${with_tables[$(( (RANDOM * 32768 + RANDOM) % count ))]}"
    if [ "$cond" = after_grant ]; then fresh tenant_g; other_grant "$name" >> "$sql"; fi
    "auth_$kind" "$t" >> "$sql"
  done
  psql_as "$url" -o /dev/null -f "$sql" > "$out"
  summarise "$section/$cond" "$n" "$out"
}

# Fill: up to $1 memberships of platform, with the tenant DDL run by the superuser.
fill_to() {
  local target="$1" have; have="$(memberships platform)"
  local missing=$((target - have))
  [ "$missing" -le 0 ] && return 0
  log "filling: $have -> $target tenants"
  local half=$(((missing + 1) / 2)) first=$((next_id + 1))
  next_id=$((next_id + missing))
  fill_range() {
    local from="$1" to="$2"
    echo "SET synchronous_commit = off;"
    echo "BEGIN;"
    for i in $(seq "$from" "$to"); do
      local t="tenant_f$i"
      [ $(((i - from) % 20)) -eq 19 ] && echo "COMMIT; BEGIN;"
      cat <<SQL
CREATE ROLE "$t" NOLOGIN;
GRANT "$t" TO platform;
CREATE SCHEMA "$t" AUTHORIZATION "$t";
REVOKE ALL ON SCHEMA "$t" FROM PUBLIC;
CREATE TABLE "$t"._migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL DEFAULT 0);
ALTER TABLE "$t"._migrations OWNER TO platform;
SET search_path = "$t", public;
SET ROLE "$t";
SQL
      cat "$migration_file"
      echo "RESET ROLE; RESET search_path;"
      echo "INSERT INTO \"$t\"._migrations (version, name, checksum) VALUES (1, 'users_and_audit_log', 'fill');"
    done
    echo "COMMIT;"
  }
  fill_range "$first" $((first + half - 1)) | admin -o /dev/null &
  local p1=$!
  fill_range $((first + half)) $((first + missing - 1)) | admin -o /dev/null
  wait "$p1"
  for i in $(seq "$first" $((first + missing - 1))); do with_tables+=("tenant_f$i"); done
  # so that autovacuum of the grown catalogs does not run during the measurements
  admin -c "VACUUM (ANALYZE) pg_catalog.pg_auth_members, pg_catalog.pg_authid, pg_catalog.pg_shdepend,
    pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_namespace, pg_catalog.pg_depend,
    pg_catalog.pg_type, pg_catalog.pg_proc, pg_catalog.pg_trigger, pg_catalog.pg_constraint,
    pg_catalog.pg_index, pg_catalog.pg_attrdef, pg_catalog.pg_sequence" >/dev/null
}

# The race. Another session ('other') completes tenant W's create_tenant_schema; this session
# then runs W's create_tenant_tables ledger DDL (privs) or SET ROLE W (members), which rebuilds
# its membership cache, 0-100 ms (at random) after connection 'a' started tenant Y's
# create_tenant_schema (which itself rebuilds a's caches before it commits), so that Y's commit
# falls at random before, during or after this session's rebuild; then this session runs Y's
# step (a fresh transaction, after Y's commit) and, if it fails, once more.
# Variant privs_control is privs with W's step replaced: 'other' only creates role W (no GRANT:
# the cached pg_auth_members lists stay valid, so the rebuild reads no catalog) and this session
# reads the ledger of an existing tenant; it tells whether the loss needs catalog reads (that is,
# invalidation processing) inside the rebuild.
race() { # section url variant(privs|privs_control|members) transient(0|1)
  local section="$1" url="$2" variant="$3" transient="$4" sql="$work/r.sql" err="$work/r.err"
  local acting=platform; [ "$transient" = 1 ] && acting=provisioner
  local n; n="$(memberships "$acting")"
  {
    echo "SELECT dblink_connect('other', '$(role_url "$acting")');"
    echo "SELECT dblink_connect('a', '$(role_url "$acting")');"
    # a new session: load the catalog caches and both membership lists before the first trial
    echo "SELECT count(*) FROM pg_namespace WHERE has_schema_privilege(oid, 'USAGE');"
    echo "SELECT count(*) FROM pg_roles WHERE pg_has_role(oid, 'MEMBER');"
  } > "$sql"
  local ddl='CREATE ROLE "%s" NOLOGIN; GRANT "%s" TO CURRENT_USER; CREATE SCHEMA "%s" AUTHORIZATION "%s"; REVOKE ALL ON SCHEMA "%s" FROM PUBLIC;'
  local step
  if [ "$variant" != members ]; then
    step='CREATE SCHEMA IF NOT EXISTS "%s" \; CREATE TABLE IF NOT EXISTS "%s"._migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL DEFAULT 0);'
  else
    step='BEGIN; SET LOCAL ROLE "%s"; COMMIT;'
  fi
  for i in $(seq 1 "$race_trials"); do
    fresh tenant_rw; local w="$name"
    fresh tenant_ry; local y="$name"
    local pause; pause="$(awk -v r="$RANDOM" 'BEGIN { printf "%.4f", (r % 101) / 1000 }')"
    local wd yd ws ys
    # shellcheck disable=SC2059
    wd="$(printf "$ddl" "$w" "$w" "$w" "$w" "$w")"
    # shellcheck disable=SC2059
    yd="$(printf "$ddl" "$y" "$y" "$y" "$y" "$y")"
    # shellcheck disable=SC2059
    if [ "$variant" = members ]; then ws="$(printf "$step" "$w")"; ys="$(printf "$step" "$y")"
    else ws="$(printf "$step" "$w" "$w")"; ys="$(printf "$step" "$y" "$y")"; fi
    if [ "$variant" = privs_control ]; then
      wd="CREATE ROLE \"$w\" NOLOGIN;"
      ws="SELECT version FROM \"${with_tables[$(( (RANDOM * 32768 + RANDOM) % ${#with_tables[@]} ))]}\"._migrations;"
    fi
    cat >> "$sql" <<SQL
SELECT dblink_exec('other', \$q\$$wd\$q\$);
SELECT dblink_send_query('a', \$q\$DO \$d\$ BEGIN $yd END \$d\$\$q\$);
SELECT pg_sleep($pause);
\\warn TRIAL $i rebuild
$ws
SELECT * FROM dblink_get_result('a') AS r(status text);
SELECT * FROM dblink_get_result('a') AS r(status text);
\\warn TRIAL $i first
$ys
\\warn TRIAL $i retry
$ys
SQL
    if [ "$transient" = 1 ]; then
      echo "REVOKE \"$w\", \"$y\" FROM CURRENT_USER;" >> "$sql"
    fi
  done
  "$pg_bin/psql" -X -q -t -A -o /dev/null "$url" -f "$sql" 2> "$err" >/dev/null || true
  awk -v s="$section" -v n="$n" -v v="$variant" -v trials="$race_trials" '
    /^TRIAL / { phase = $3; next }
    /permission denied/ && phase == "first" { first++; next }
    /permission denied/ && phase == "retry" { retry++; next }
    /ERROR/ { other++; if (other <= 3) print "unexpected: " $0 > "/dev/stderr" }
    END { printf "%s\t%s\trace.%s\t%d\t%d failed\t%d failed again on retry\t%d other errors\n", s, n, v, trials, first, retry, other }
  ' "$err" >> "$results"
}

started=$(date +%s)
log "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), fsync=$fsync, levels=$levels, samples=$samples, cores=$(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a level_list <<< "$levels"
last_level="${level_list[$((${#level_list[@]} - 1))]}"
for level in "${level_list[@]}"; do
  fill_to "$level"
  log "level $level: measuring"
  measure_provisioning "N>=$level/platform" "$app_url" base warm platform
  measure_provisioning "N>=$level/platform" "$app_url" base after_grant platform
  measure_auth "N>=$level/platform" "$app_url" setrole warm platform
  measure_auth "N>=$level/platform" "$app_url" setrole after_grant platform
  measure_provisioning "N>=$level/superuser" "$admin_url" base warm platform
  if [ "$level" = "${level_list[0]}" ] || [ "$level" = "$last_level" ]; then
    log "level $level: race"
    race "N>=$level/platform" "$app_url" privs 0
    race "N>=$level/platform" "$app_url" members 0
    [ "$level" = "$last_level" ] && race "N>=$level/platform" "$app_url" privs_control 0
  fi
done

log "design b: NOINHERIT"
admin -c "ALTER ROLE platform NOINHERIT" >/dev/null
measure_provisioning "N>=$last_level/design_b" "$app_url" noinherit warm platform
measure_provisioning "N>=$last_level/design_b" "$app_url" noinherit after_grant platform
measure_auth "N>=$last_level/design_b" "$app_url" setrole warm platform
measure_auth "N>=$last_level/design_b" "$app_url" setrole after_grant platform
admin -c "ALTER ROLE platform INHERIT" >/dev/null

log "design a: transient membership, SECURITY DEFINER access"
measure_provisioning "N>=$last_level/design_a" "$(role_url provisioner)" transient warm provisioner
measure_provisioning "N>=$last_level/design_a" "$(role_url provisioner)" transient after_grant provisioner
{
  for t in "${with_tables[@]}"; do
    cat <<SQL
SET ROLE "$t";
CREATE FUNCTION "$t".user_credentials(p_email text) RETURNS SETOF "$t".users
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = "$t", pg_temp
AS \$\$ SELECT * FROM "$t".users WHERE email_normalized = p_email \$\$;
REVOKE ALL ON FUNCTION "$t".user_credentials(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "$t".user_credentials(text) TO gateway;
GRANT USAGE ON SCHEMA "$t" TO gateway;
RESET ROLE;
SQL
  done
} | admin -o /dev/null
measure_auth "N>=$last_level/design_a" "$(role_url gateway)" secdef warm gateway
measure_auth "N>=$last_level/design_a" "$(role_url gateway)" secdef after_grant gateway
log "design a: race"
race "N>=$last_level/design_a" "$(role_url provisioner)" privs 1
race "N>=$last_level/design_a" "$(role_url provisioner)" members 1

# so that the shutdown checkpoint (fsync=on, thousands of relations) has little left to write
log "checkpoint"
admin -c "CHECKPOINT" >/dev/null
log "done in $(( $(date +%s) - started )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%s\n' "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'), fsync=$fsync, samples=$samples, cores=$(nproc); times in ms (psql \timing, client side)"
{
  printf 'rows\tN\tstatement\tn\tp50\tp99\tmean\n'
  cat "$results"
} | column -t -s "$(printf '\t')"
