#!/usr/bin/env python3
"""Load tool for bench-saga.sh and bench-scale.sh (issue 16): standard library only.

Talks to the services over HTTP (provisioning's internal/operator project API, auth's tenant
user API, every service's /ready) and writes the pgbench script that runs provisioning's tenant
DDL bare. Figures are printed, never asserted. Result rows go to stdout as tab-separated
`metric  n  p50_ms  p99_ms  max_ms  note` lines (the scripts gather them into one table);
progress goes to stderr.

Subcommands (see --help of each):
  burst        create COUNT projects back to back, then watch them all: the orchestrators' pace
  provision    create projects through POST /internal/v1/projects with W workers (W=1: one at
               a time), each watching its project until `ready` by polling
               GET /v1/projects/{id} every --poll-ms; latency and tenants/s
  deprovision  DELETE /v1/projects/{id} for projects of a projects file, until `deleted`
  ready-times  time from a given start until each service's /ready answers 200
  http-latency GET latency of URLs (e.g. /ready)
  user-auth    tenant end-user sign-up and password sign-in latency on provisioned tenants
  bare-ddl     the pgbench script of the tenant DDL as provisioning sends it, read at run time
               from TenantDatabase.swift, Migrations.swift and the tenant migration files
  pgbench-log  percentiles of pgbench -l transaction logs
"""

import argparse
import hashlib
import http.client
import json
import math
import os
import random
import re
import string
import sys
import threading
import time
import urllib.parse
import uuid


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p of the values at or below it."""
    if not sorted_values:
        return float("nan")
    index = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[min(index, len(sorted_values)) - 1]


def row(metric, values_ms, note=""):
    values = sorted(values_ms)
    n = len(values)
    if n == 0:
        print(f"{metric}\t0\t-\t-\t-\t{note}", flush=True)
        return
    print(f"{metric}\t{n}\t{percentile(values, 0.5):.1f}\t{percentile(values, 0.99):.1f}\t{values[-1]:.1f}\t{note}", flush=True)


class Client:
    """One keep-alive HTTP connection per base URL, per thread (not shared between threads)."""

    def __init__(self, timeout=30.0):
        self.timeout = timeout
        self.connections = {}

    def request(self, method, url, body=None, headers=None):
        parts = urllib.parse.urlsplit(url)
        key = (parts.hostname, parts.port)
        path = parts.path + ("?" + parts.query if parts.query else "")
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json"}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        for attempt in (1, 2):
            connection = self.connections.get(key)
            if connection is None:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
                self.connections[key] = connection
            try:
                connection.request(method, path, body=data, headers=all_headers)
                response = connection.getresponse()
                payload = response.read()
                return response.status, payload
            except (http.client.HTTPException, ConnectionError, OSError):
                connection.close()
                self.connections.pop(key, None)
                # A GET may be repeated; anything else only when the connection was refused
                # outright (then nothing was sent).
                if attempt == 2 or method != "GET":
                    raise

    def json(self, method, url, body=None, headers=None, expect=(200,)):
        status, payload = self.request(method, url, body, headers)
        if status not in expect:
            raise RuntimeError(f"{method} {url} answered {status}: {payload[:300]!r}")
        return json.loads(payload) if payload else None


def token_headers(token):
    return {"X-Service-Token": token}


def watch(client, base, project_id, token, until, poll_s, backoff=0.0, deadline_s=120.0):
    """Polls the project until its status is one of `until`; returns (status, body). Between
    polls: poll_s, or `backoff` × the time watched so far when that is longer (so that many
    clients watching slow projects do not load the service with polls: the detection delay
    stays within that fraction of the latency)."""
    url = f"{base}/v1/projects/{project_id}"
    began = time.monotonic()
    give_up = began + deadline_s
    while True:
        body = client.json("GET", url, headers=token_headers(token))
        if body["status"] in until:
            return body["status"], body
        if time.monotonic() > give_up:
            raise RuntimeError(f"project {project_id} still {body['status']} after {deadline_s:.0f} s")
        pause = max(poll_s, backoff * (time.monotonic() - began))
        if pause > 0:
            time.sleep(pause)


def cmd_provision(args):
    bases = args.provisioning.split(",")
    lock = threading.Lock()
    latencies = []
    failures = []
    records = []
    counter = {"next": 0}
    stop_at = time.monotonic() + args.seconds if args.seconds else None
    started = time.monotonic()
    last_ready = {"t": started}
    progress = {"t": started}

    def take():
        with lock:
            if args.count is not None and counter["next"] >= args.count:
                return None
            if stop_at is not None and time.monotonic() >= stop_at:
                return None
            counter["next"] += 1
            return counter["next"] - 1

    def worker(index):
        client = Client()
        while True:
            number = take()
            if number is None:
                return
            base = bases[number % len(bases)]
            slug = f"{args.prefix}_{number}"
            t0 = time.perf_counter()
            try:
                accepted = client.json("POST", f"{base}/internal/v1/projects", headers=token_headers(args.token),
                                       body={"owner_id": str(uuid.uuid4()), "name": f"Bench {slug}", "slug": slug},
                                       expect=(202,))
                status, body = watch(client, base, accepted["project_id"], args.token, ("ready", "failed"), args.poll_ms / 1000,
                                     args.poll_backoff)
            except Exception as error:  # noqa: BLE001 - reported, the run goes on
                with lock:
                    failures.append(f"{slug}: {error}")
                continue
            elapsed_ms = (time.perf_counter() - t0) * 1000
            with lock:
                last_ready["t"] = time.monotonic()
                if status != "ready":
                    failures.append(f"{slug}: ended {status}: {(body.get('workflow') or {}).get('error')}")
                    continue
                latencies.append(elapsed_ms)
                keys = {}
                if args.out:  # the keys are revealed (and then deleted) only when they are recorded
                    revealed = client.json("GET", f"{base}/v1/projects/{body['id']}/api-keys", headers=token_headers(args.token),
                                           expect=(200,))
                    keys = {key["kind"]: key.get("key") for key in revealed["keys"]}
                records.append({"id": body["id"], "slug": slug, "ms": round(elapsed_ms, 2),
                                "publishable": keys.get("publishable"), "secret": keys.get("secret")})
                done = len(latencies)
            if args.progress and done % args.progress == 0:
                now = time.monotonic()
                with lock:
                    since, progress["t"] = progress["t"], now
                log(f"{args.label}: {done} ready ({args.progress / (now - since):.1f}/s over the last {args.progress})")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = last_ready["t"] - started
    if args.out:
        with open(args.out, "a") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
    rate = len(latencies) / wall if wall > 0 else float("nan")
    note = f"clients={args.workers} replicas={len(bases)} poll={args.poll_ms:g}ms"
    if args.poll_backoff:
        note += f" (or {args.poll_backoff:g}×elapsed)"
    if args.workers > 1 or args.seconds:
        note += f" wall={wall:.1f}s tenants/s={rate:.1f}"
    if failures:
        note += f" FAILED={len(failures)}"
        for failure in failures[:5]:
            log(f"{args.label}: failure: {failure}")
    row(args.label, latencies, note)
    if args.rate_file:
        with open(args.rate_file, "a") as out:
            out.write(f"{args.label}\t{args.workers}\t{len(bases)}\t{len(latencies)}\t{wall:.2f}\t{rate:.2f}\t{len(failures)}\n")


def cmd_burst(args):
    """COUNT projects created back to back (round-robin over the replicas), then every one
    watched until it ends: the orchestrators' own pace with a full queue, without the clients'
    think time. tenants/s = ready projects / (last `ready` seen − first POST)."""
    bases = args.provisioning.split(",")
    client = Client()
    started = time.monotonic()
    accepted = []
    for number in range(args.count):
        base = bases[number % len(bases)]
        slug = f"{args.prefix}_{number}"
        body = client.json("POST", f"{base}/internal/v1/projects", headers=token_headers(args.token),
                           body={"owner_id": str(uuid.uuid4()), "name": f"Bench {slug}", "slug": slug}, expect=(202,))
        accepted.append((base, body["project_id"], time.monotonic()))
    posted = time.monotonic() - started
    latencies, failures, last = [], 0, started
    for base, project_id, t0 in accepted:
        status, _ = watch(client, base, project_id, args.token, ("ready", "failed"), args.poll_ms / 1000)
        now = time.monotonic()
        last = max(last, now)
        if status == "ready":
            latencies.append((now - t0) * 1000)
        else:
            failures += 1
    wall = last - started
    note = (f"replicas={len(bases)} all POSTed in {posted:.2f}s, then watched (poll={args.poll_ms:g}ms)"
            f" wall={wall:.1f}s tenants/s={len(latencies) / wall:.1f}")
    if failures:
        note += f" FAILED={failures}"
    row(args.label, latencies, note)
    if args.rate_file:
        with open(args.rate_file, "a") as out:
            out.write(f"{args.label}\tburst\t{len(bases)}\t{len(latencies)}\t{wall:.2f}\t{len(latencies) / wall:.2f}\t{failures}\n")


def load_projects(path):
    with open(path) as source:
        return [json.loads(line) for line in source if line.strip()]


def cmd_deprovision(args):
    projects = load_projects(args.projects)[: args.count]
    lock = threading.Lock()
    latencies, failures = [], []
    queue = list(projects)
    started = time.monotonic()

    def worker():
        client = Client()
        while True:
            with lock:
                if not queue:
                    return
                project = queue.pop(0)
            t0 = time.perf_counter()
            try:
                client.json("DELETE", f"{args.provisioning}/v1/projects/{project['id']}", headers=token_headers(args.token),
                            expect=(202,))
                status, body = watch(client, args.provisioning, project["id"], args.token, ("deleted",), args.poll_ms / 1000)
            except Exception as error:  # noqa: BLE001
                with lock:
                    failures.append(f"{project['slug']}: {error}")
                continue
            with lock:
                latencies.append((time.perf_counter() - t0) * 1000)
                done = len(latencies)
            if args.progress and done % args.progress == 0:
                log(f"deprovision: {done} deleted")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.monotonic() - started
    note = f"clients={args.workers} total={total:.1f}s ({len(latencies) / total if total else 0:.1f}/s)"
    if failures:
        note += f" FAILED={len(failures)}"
        for failure in failures[:5]:
            log(f"deprovision: failure: {failure}")
    row(args.label, latencies, note)


def cmd_ready_times(args):
    """Each NAME=URL from --start-us (microseconds since the epoch) until it answers 200, each
    watched by its own thread (a new connection every 5 ms)."""
    start = args.start_us / 1e6
    results, lock = {}, threading.Lock()

    def watch_ready(name, url):
        parts = urllib.parse.urlsplit(url)
        give_up = time.time() + args.timeout
        while time.time() < give_up:
            try:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
                connection.request("GET", parts.path)
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = None
            if status == 200:
                with lock:
                    results[name] = (time.time() - start) * 1000
                return
            time.sleep(0.005)

    specs = [spec.split("=", 1) for spec in args.services]
    threads = [threading.Thread(target=watch_ready, args=(name, url), daemon=True) for name, url in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, _ in specs:
        if name in results:
            row(f"{args.label}{name}", [results[name]], "process start → /ready 200")
        else:
            print(f"{args.label}{name}\t0\t-\t-\t-\tnot ready within {args.timeout:g}s", flush=True)
    if len(results) < len(specs):
        sys.exit(1)


def cmd_http_latency(args):
    client = Client()
    for spec in args.urls:
        name, url = spec.split("=", 1)
        client.request("GET", url)  # a warm connection
        values = []
        for _ in range(args.count):
            t0 = time.perf_counter()
            status, _ = client.request("GET", url)
            values.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise SystemExit(f"{url} answered {status}")
        row(f"{args.label}{name}", values)


def cmd_user_auth(args):
    projects = [p for p in load_projects(args.projects) if p.get("publishable")]
    if not projects:
        print(f"{args.label}signup\t0\t-\t-\t-\tno project with a revealed key", flush=True)
        return
    rng = random.Random(args.seed)
    client = Client()
    signup, signin = [], []
    password = "bench " + "".join(rng.choice(string.ascii_lowercase) for _ in range(20))
    for i in range(args.count):
        project = projects[rng.randrange(len(projects))]
        base = f"{args.auth}/v1/tenants/{project['slug']}"
        headers = {"apikey": project["publishable"]}
        email = f"user{i}_{uuid.uuid4().hex[:8]}@example.test"
        t0 = time.perf_counter()
        client.json("POST", f"{base}/signup", body={"email": email, "password": password}, headers=headers, expect=(200, 201))
        t1 = time.perf_counter()
        client.json("POST", f"{base}/token?grant_type=password", body={"email": email, "password": password},
                    headers=headers, expect=(200,))
        t2 = time.perf_counter()
        signup.append((t1 - t0) * 1000)
        signin.append((t2 - t1) * 1000)
    note = f"random tenants of {len(projects)}; includes argon2id"
    row(f"{args.label}signup", signup, note)
    row(f"{args.label}signin", signin, note)


# --- the bare tenant DDL -------------------------------------------------------------------

def swift_function_literals(source, function):
    """The multi-line string literals (\"\"\" … \"\"\") in the body of `func <function>`, in order,
    with the closing delimiter's indentation removed, as Swift does."""
    start = source.find(f"func {function}(")
    if start < 0:
        raise ValueError(f"func {function} not found")
    # The body ends at the next `func ` at the same or a lower indentation (good enough here).
    following = re.search(r"\n\s*(?:public |private |internal |@\w+ )*func ", source[start + 5:])
    body = source[start: start + 5 + following.start()] if following else source[start:]
    literals = []
    for match in re.finditer(r'"""\n(.*?)\n([ \t]*)"""', body, re.S):
        indent = match.group(2)
        lines = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in match.group(1).split("\n")]
        literals.append("\n".join(lines))
    if not literals:
        raise ValueError(f"no multi-line SQL literal in func {function}")
    return literals


def interpolate(literal, names):
    """Replaces Swift's \\(…) interpolations of the tenant's names: quoteLiteral(x) → 'name',
    quoteIdentifier(x) or a bare x → "name", where x is `schema`, `role`, `tenant.schema` or
    `tenant.role` (`names` maps 'schema' / 'role' to the value). Any other interpolation is an
    error, not a guess: the mirror must then be updated by hand."""
    pattern = re.compile(r"PostgresQuery\.(quoteLiteral|quoteIdentifier)\((?:tenant\.)?(schema|role)\)"
                         r"|()(?:tenant\.)?(schema|role)")

    def replace(match):
        expression = match.group(1)
        known = pattern.fullmatch(expression)
        if not known:
            raise ValueError(f"unknown interpolation \\({expression})")
        value = names[known.group(2) or known.group(4)]
        if known.group(1) == "quoteLiteral":
            return "'" + value.replace("'", "''") + "'"
        return '"' + value.replace('"', '""') + '"'

    # Nested parentheses one level deep: \\(PostgresQuery.quoteLiteral(tenant.role))
    text = re.sub(r"\\\(((?:[^()]|\([^()]*\))*)\)", replace, literal)
    return text.replace("\\\\", "\\")


def split_statements(sql):
    """Top-level SQL statements (aware of quotes, dollar quotes and comments), without the
    terminating semicolons; comment-only pieces are dropped."""
    statements, current, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            current.append(sql[i:j]); i = j; continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            current.append(sql[i:j]); i = j; continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2; continue
                    break
                j += 1
            current.append(sql[i:j + 1]); i = j + 1; continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                j = n if j < 0 else j + len(tag)
                current.append(sql[i:j]); i = j; continue
        if c == ";":
            statements.append("".join(current)); current = []; i += 1; continue
        current.append(c); i += 1
    statements.append("".join(current))
    def meaningful(statement):
        stripped = re.sub(r"--[^\n]*", "", statement)
        return stripped.strip() != ""
    return [s.strip() for s in statements if meaningful(s)]


def one_message(sql):
    """pgbench: statements joined by \\; are sent as one simple-query message, as
    `execute(simple:)` sends a multi-statement string. Comments are dropped (pgbench's
    lexer would keep them; they cost nothing but bytes)."""
    statements = [re.sub(r"^\s*--[^\n]*\n", "", s, flags=re.M).strip() for s in split_statements(sql)]
    return " \\;\n".join(s for s in statements if s) + ";"


def cmd_bare_ddl(args):
    try:
        bare_ddl(args)
    except (ValueError, OSError) as error:
        print(f"bare-ddl: cannot mirror the tenant DDL from the sources: {error}; update saga_load.py", file=sys.stderr)
        sys.exit(3)


def bare_ddl(args):
    root = args.root
    name = f"{args.prefix}:id"  # pgbench substitutes :id with a fresh random number per run
    names = {"schema": name, "role": name}
    tenant_src = open(os.path.join(root, "Services/Provisioning/Saga/TenantDatabase.swift")).read()
    runner_src = open(os.path.join(root, "Shared/Postgres/Migrations.swift")).read()
    schema_literals = [interpolate(l, names) for l in swift_function_literals(tenant_src, "createSchemaAndRole")]
    # The bootstrap literal's first line creates the schema only for a runner without a role.
    ledger_literal = swift_function_literals(runner_src, "readLedger")[0]
    ledger_ddl = interpolate("\n".join(l for l in ledger_literal.split("\n") if "role == nil" not in l), names)
    if "RoleMembership" not in runner_src:
        raise ValueError("MigrationRunner no longer takes a transient membership (RoleMembership)")
    if not re.search(r"role: tenant\.role, oneTransaction: true\)", tenant_src):
        raise ValueError("TenantDatabase.migrate no longer runs the tenant migrations in one transaction")
    # The tenant migrations, as Migration.load reads them: NNNN_name.sql, by version.
    directory = os.path.join(root, "Services/Provisioning/TenantMigrations")
    migrations = []
    for file in sorted(os.listdir(directory)):
        m = re.fullmatch(r"(\d+)_(.+)\.sql", file)
        if m:
            migrations.append((int(m.group(1)), m.group(2), open(os.path.join(directory, file), encoding="utf-8").read()))
    migrations.sort()
    role_match = re.search(r"MigrationRunner\(schema: tenant\.(\w+), migrations: migrations, role: tenant\.(\w+)[,)]", tenant_src)
    if not role_match or role_match.groups() != ("schema", "role"):
        raise ValueError("TenantDatabase.migrate no longer calls MigrationRunner(schema: tenant.schema, "
                         "migrations: migrations, role: tenant.role)")
    lock_key = f"'platform.migrations.{name}'"
    versions = ",".join(str(v) for v, _, _ in migrations)
    texts = ",".join(f"$mig{v}$" + sql + f"$mig{v}$" for v, _, sql in migrations)
    out = ["\\set id random(1, 2000000000)",
           "-- TenantDatabase.createSchemaAndRole: " + str(len(schema_literals)) + " simple-query message(s)"]
    out += [one_message(l) for l in schema_literals]
    out += ["-- MigrationRunner(schema:, migrations:, role:).run",
            f"SELECT pg_advisory_lock(hashtextextended({lock_key}, 0));",
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
            f"WHERE r.rolname = '{name}' AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)) AS member;",
            "SELECT v.version, encode(sha256(convert_to(s.sql, 'UTF8')), 'hex') AS checksum "
            f"FROM unnest(ARRAY[{versions}]::int8[]) WITH ORDINALITY AS v(version, n) "
            f"JOIN unnest(ARRAY[{texts}]::text[]) WITH ORDINALITY AS s(sql, n) USING (n);",
            "BEGIN;",
            f'GRANT "{name}" TO CURRENT_USER;',
            one_message(ledger_ddl),
            f'SELECT version, name, checksum FROM "{name}"._migrations ORDER BY version;']
    # oneTransaction: every pending migration in the same transaction, one membership.
    for version, mig_name, sql in migrations:
        checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        out += [f"SELECT set_config('search_path', '\"{name}\", public', true);",
                f'SET LOCAL ROLE "{name}";',
                one_message(sql),
                "RESET ROLE;",
                f'INSERT INTO "{name}"._migrations (version, name, checksum, duration_ms) '
                f"VALUES ({version}, '{mig_name}', '{checksum}', 0);"]
    out += [f'REVOKE "{name}" FROM CURRENT_USER;', "COMMIT;"]
    out.append(f"SELECT pg_advisory_unlock(hashtextextended({lock_key}, 0));")
    sys.stdout.write("\n".join(out) + "\n")
    log(f"bare DDL: createSchemaAndRole {len(schema_literals)} message(s), ledger DDL, "
        f"{len(migrations)} tenant migration(s) ({', '.join(f'{v}_{n}' for v, n, _ in migrations)}) as the tenant role")


def cmd_pgbench_log(args):
    values = []
    for path in args.logs:
        with open(path) as source:
            for line in source:
                fields = line.split()
                if len(fields) >= 3:
                    values.append(int(fields[2]) / 1000)  # microseconds
    row(args.label, values, args.note)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("provision")
    p.add_argument("--provisioning", required=True, help="base URL(s), comma-separated: round-robin")
    p.add_argument("--token", required=True)
    p.add_argument("--prefix", required=True, help="slug prefix (slug = PREFIX_<n>)")
    p.add_argument("--label", default="saga")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--count", type=int)
    p.add_argument("--seconds", type=float, help="start new projects until then (then finish those in flight)")
    p.add_argument("--poll-ms", type=float, default=2)
    p.add_argument("--poll-backoff", type=float, default=0.0,
                   help="poll no more often than this fraction of the time watched so far")
    p.add_argument("--out", help="append one JSON line per ready project (id, slug, keys)")
    p.add_argument("--rate-file")
    p.add_argument("--progress", type=int, default=0)
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("burst")
    p.add_argument("--provisioning", required=True, help="base URL(s), comma-separated: round-robin")
    p.add_argument("--token", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--label", default="burst")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--poll-ms", type=float, default=5)
    p.add_argument("--rate-file")
    p.set_defaults(func=cmd_burst)

    p = sub.add_parser("deprovision")
    p.add_argument("--provisioning", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--projects", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--poll-ms", type=float, default=2)
    p.add_argument("--label", default="deprovision")
    p.add_argument("--progress", type=int, default=0)
    p.set_defaults(func=cmd_deprovision)

    p = sub.add_parser("ready-times")
    p.add_argument("--start-us", type=int, required=True)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--label", default="startup.")
    p.add_argument("services", nargs="+", help="NAME=URL of /ready")
    p.set_defaults(func=cmd_ready_times)

    p = sub.add_parser("http-latency")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--label", default="")
    p.add_argument("urls", nargs="+", help="NAME=URL")
    p.set_defaults(func=cmd_http_latency)

    p = sub.add_parser("user-auth")
    p.add_argument("--auth", required=True)
    p.add_argument("--projects", required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--label", default="tenant_user.")
    p.set_defaults(func=cmd_user_auth)

    p = sub.add_parser("bare-ddl")
    p.add_argument("--root", required=True)
    p.add_argument("--prefix", default="tenant_bare_")
    p.set_defaults(func=cmd_bare_ddl)

    p = sub.add_parser("pgbench-log")
    p.add_argument("--label", default="bare_ddl")
    p.add_argument("--note", default="")
    p.add_argument("logs", nargs="+")
    p.set_defaults(func=cmd_pgbench_log)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
