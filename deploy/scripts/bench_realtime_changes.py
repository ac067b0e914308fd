"""The measuring half of `bench-realtime.sh changes`: database changes (`postgres_changes`)
delivered to S sockets, without and with row-level security, on a project made the real way.

Setup (once): the project; its realtime limits raised (as bench_realtime.py does); the table
`bench_rows (id bigint primary key, owner uuid not null, body text not null)` made in the
project's schema as the project's role (the platform role becomes it for one transaction, as a
developer's migration would run, and as deploy/scripts/sdk/test_realtime.py does), with a policy
`FOR SELECT USING (owner = <schema>.auth_uid())`, and opted in through realtime's API
(`PUT /v1/tenants/{slug}/realtime/tables/bench_rows`, the secret key); U users signed up through
auth (`POST /v1/tenants/{slug}/signup`, the publishable key), each with one session.

Each run (a fresh realtime, started by the shell): the variant set as the project's role — A,
`DISABLE ROW LEVEL SECURITY` (the policy is then ignored), or B, `ENABLE ROW LEVEL SECURITY` —;
a warm-up (one socket, one row); then S sockets (the V1 protocol, the publishable key as apikey)
join one channel each with the binding `{"event": "INSERT", "schema": "public", "table":
"bench_rows"}`; for B each join carries a user's access token (`access_token`), socket i user i
mod U, so there are U distinct tokens; for A none. (Realtime checks a row once per distinct
claims *text* among its subscribers, and the same token's claims are not always the same text:
the checks actually run are counted, as PostgreSQL transactions, see below.) Then M = rate ×
seconds rows are inserted at the fixed rate, one per transaction, as the project's role, row n
owned by user n mod U (A: over every user signed up), from one psycopg connection: the throwaway
cluster's superuser (DATABASE_ADMIN_URL, with-postgres.sh) after `SET ROLE tenant_<slug>`, or,
without it, the platform role with GRANT / SET LOCAL ROLE / REVOKE inside each transaction. Each
row's `body` is its send time (µs since the epoch, just before the INSERT is sent), so every
receiving socket takes receive − send as that delivery's latency (the insert's commit is in it).

What should arrive: A, every row at every socket; B, each row at its owner's sockets only. A row
of another user's at a B socket is a violation (reported, and not counted as a delivery).
Realtime's CPU, PostgreSQL's (the postmaster and its backends, from /proc) and the box's are
read over the window from the first insert to the end of the drain (every socket has its rows,
--drain seconds after the last insert, or --quiet seconds without a frame); per inserted row and
per delivery. PostgreSQL's sessions opened and transactions committed (pg_stat_database, the
whole cluster) are read from before the sockets connect to after the drain: each rights check is
a transaction, so B's transactions per row beyond A's are the checks realtime ran per row. The
receivers are bench_realtime.py's, with the changes' join and frame handling. Prints, per size,
A and each B side by side with B/A; writes the figures as JSON; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
import urllib.error
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench_common import call, project_keys
from bench_realtime import MIB, Receiver, Socket, add_report_command, add_run_arguments, fan_out, percentile, raise_limits

TABLE = "bench_rows"
BINDING = {"event": "INSERT", "schema": "public", "table": TABLE}


# --- The database -------------------------------------------------------------------------------

def database_counts(connection) -> tuple[int, int]:
    """Sessions opened and transactions committed on the cluster so far (pg_stat_database;
    `sessions` from PostgreSQL 14). A backend's counts reach the view about a second after it
    goes idle."""
    connection.execute("SELECT pg_stat_clear_snapshot()")
    return connection.execute("SELECT coalesce(sum(sessions), 0)::bigint, coalesce(sum(xact_commit), 0)::bigint "
                              "FROM pg_stat_database").fetchone()


def as_project(database: str, schema: str, statements: list[str]) -> None:
    """Statements as the project's role: the platform role becomes it for one transaction only
    (its membership is granted and revoked inside it, so no other session ever sees it)."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as connection, connection.transaction():
        connection.execute(f"GRANT {schema} TO CURRENT_USER")
        connection.execute(f"SET LOCAL ROLE {schema}")
        for statement in statements:
            connection.execute(statement)
        connection.execute("RESET ROLE")
        connection.execute(f"REVOKE {schema} FROM CURRENT_USER")


class Inserter:
    """One connection inserting rows into the table as the project's role, one per transaction.

    Not the platform role holding the project's role across transactions: a member of the
    table's owner is treated as its owner, and owners bypass row-level security, so realtime's
    checks (as the platform role, on other connections) would then see every row."""

    def __init__(self, database: str, schema: str):
        import psycopg

        self.schema = schema
        self.insert_sql = f"INSERT INTO {schema}.{TABLE} (id, owner, body) VALUES (%s, %s, %s)"
        admin = os.environ.get("DATABASE_ADMIN_URL")
        if admin:
            self.connection = psycopg.connect(admin, autocommit=True)
            self.connection.execute(f"SET ROLE {schema}")
            self.how = "superuser session after SET ROLE"
        else:
            self.connection = psycopg.connect(database, autocommit=True)
            self.how = "platform role, GRANT / SET LOCAL ROLE / REVOKE in each transaction"
        self.admin = bool(admin)
        self.insert_ms: list[float] = []
        self.sent_ns: list[int] = []

    def insert(self, row: int, owner: str) -> int:
        """One row; its send time (ns), also in its body (µs)."""
        sent = time.time_ns()
        values = (row, uuid.UUID(owner), str(sent // 1000))
        if self.admin:
            self.connection.execute(self.insert_sql, values, prepare=True)
        else:
            with self.connection.transaction():
                self.connection.execute(f"GRANT {self.schema} TO CURRENT_USER")
                self.connection.execute(f"SET LOCAL ROLE {self.schema}")
                self.connection.execute(self.insert_sql, values, prepare=True)
                self.connection.execute("RESET ROLE")
                self.connection.execute(f"REVOKE {self.schema} FROM CURRENT_USER")
        return sent

    def run(self, first_row: int, count: int, rate: float, owners: list[str]) -> tuple[int, int]:
        """Rows first_row … first_row + count − 1, `1/rate` apart (an insert slower than that
        delays the next ones), row n owned by owners[n mod len]; (first, last) send time in ns."""
        start = time.monotonic() + 0.05
        for n in range(count):
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            began = time.monotonic()
            self.sent_ns.append(self.insert(first_row + n, owners[n % len(owners)]))
            self.insert_ms.append((time.monotonic() - began) * 1000)
        return self.sent_ns[0], self.sent_ns[-1]

    def close(self) -> None:
        self.connection.close()


# --- A receiver process -------------------------------------------------------------------------

class ChangeReceiver(Receiver):
    """bench_realtime's receiver, joined with the changes binding (and, for B, a user's token),
    counting `postgres_changes` frames of the table."""

    def __init__(self, pipe, url: str, topic: str, count: int, concurrency: int, offset: int, owners: list[str],
                 tokens: list[str] | None):
        super().__init__(pipe, url, topic, count, concurrency)
        self.offset, self.owners, self.tokens = offset, owners, tokens

    def user(self, socket: Socket) -> int:
        return (self.offset + socket.index) % len(self.owners)

    def join_payload(self, socket: Socket) -> dict:
        payload = {"config": {"postgres_changes": [BINDING]}}
        if self.tokens:
            payload["access_token"] = self.tokens[self.user(socket)]
        return payload

    def expected(self, socket: Socket, count: int) -> int:
        if not self.tokens:
            return count
        users = len(self.owners)
        return count // users + (1 if self.user(socket) < count % users else 0)

    def take(self, socket: Socket, frame: dict, now: int) -> None:
        event = frame["event"]
        if event == "system":
            payload = frame["payload"]
            if payload.get("extension") == "postgres_changes" and payload.get("status") != "ok":
                self.failures[f"postgres_changes system: {payload.get('message')}"[:160]] += 1
            return
        if event != "postgres_changes":
            return
        record = frame["payload"]["data"]["record"]
        row, sent, owner = record["id"], int(record["body"]), record["owner"]
        if not self.counting:
            return
        if self.tokens and owner.lower() != self.owners[self.user(socket)]:
            self.extra["violations"] += 1
            return
        self.count_delivery(socket, row, row, now // 1000 - sent, now)


# --- Setup --------------------------------------------------------------------------------------

def setup(args) -> None:
    slug, keys = project_keys(args)
    raise_limits(args.database, slug, args.max_sockets)
    schema = f"tenant_{slug}"
    as_project(args.database, schema, [
        f"CREATE TABLE {schema}.{TABLE} (id bigint PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL)",
        f"CREATE POLICY own_rows ON {schema}.{TABLE} FOR SELECT USING (owner = {schema}.auth_uid())",
    ])
    # Opted in through realtime's API; a project realtime does not know yet, or whose schema
    # predates tenant migration 5, answers 404 or 409 for a moment.
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = call("PUT", f"{args.realtime}/v1/tenants/{slug}/realtime/tables/{TABLE}", headers={"apikey": keys["secret"]})
            break
        except urllib.error.HTTPError as error:
            if error.code not in (404, 409) or time.monotonic() > deadline:
                raise SystemExit(f"opting {TABLE} in: {error.code} {error.read()[:300]!r}")
            time.sleep(0.5)
    if TABLE not in answer.get("tables", []):
        raise SystemExit(f"opting {TABLE} in answered {answer}")

    def sign_up(i: int) -> dict:
        suffix = secrets.token_hex(4)
        answer = call("POST", f"{args.auth}/v1/tenants/{slug}/signup",
                      {"email": f"rt-user-{i}-{suffix}@example.com", "password": f"a long benchmark passphrase {suffix}"},
                      {"apikey": keys["publishable"]})
        # The id as PostgreSQL writes a uuid (auth's JSON has it in capitals).
        return {"id": str(uuid.UUID(answer["user"]["id"])), "token": answer["access_token"]}

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        users = list(pool.map(sign_up, range(args.users)))
    print(f"{TABLE} made in {schema} and opted in; {len(users)} users signed up in {time.monotonic() - started:.1f}s",
          file=sys.stderr)
    with open(args.project, "w") as out:
        json.dump({"slug": slug, "schema": schema, "publishable": keys["publishable"], "secret": keys["secret"],
                   "users": users}, out)


def plan(args) -> None:
    """The runs, one line of `run` arguments each: every size, A then B at each number of users."""
    for n in (int(s) for s in args.sizes.split(",") if s):
        print(f"--sockets {n} --variant A --users 0 --rate {args.rate}")
        for users in (int(u) for u in args.users.split(",") if u):
            print(f"--sockets {n} --variant B --users {users} --rate {args.rate}")


# --- One run ------------------------------------------------------------------------------------

def warm_up(args, project: dict, inserter: Inserter, row: int, owner: dict) -> float | None:
    """One socket (the first user's token, seen in both variants) joins with the binding and
    gets one row: realtime's first change, its row-security read and first check are not in the
    run. The seconds it took, or None when the row did not come."""
    async def once() -> float | None:
        from websockets.asyncio.client import connect

        url = args.realtime.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={project['publishable']}&vsn=1.0.0"
        async with connect(url, compression=None, ping_interval=None, proxy=None) as ws:
            await ws.send(json.dumps({"topic": "realtime:warm-up", "event": "phx_join", "ref": "1", "join_ref": "1",
                                      "payload": {"config": {"postgres_changes": [BINDING]}, "access_token": owner["token"]}}))
            subscribed = False
            while not subscribed:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                subscribed = frame["event"] == "system" and frame["payload"].get("extension") == "postgres_changes"
            started = time.monotonic()
            await asyncio.to_thread(inserter.insert, row, owner["id"])
            try:
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame["event"] == "postgres_changes" and frame["payload"]["data"]["record"]["id"] == row:
                        return time.monotonic() - started
            except asyncio.TimeoutError:
                return None

    took = asyncio.run(once())
    time.sleep(1)
    return took


def run(args) -> None:
    with open(args.project) as file:
        project = json.load(file)
    schema, secured = project["schema"], args.variant == "B"
    # A fresh realtime (the shell restarts it) has not read the table's row security yet.
    as_project(args.database, schema, [f"ALTER TABLE {schema}.{TABLE} {'ENABLE' if secured else 'DISABLE'} ROW LEVEL SECURITY"])
    users = project["users"][:args.users] if secured else project["users"]
    if secured and len(users) < args.users:
        raise SystemExit(f"{args.users} users asked, {len(users)} signed up")
    owners = [u["id"] for u in users]
    inserter = Inserter(args.database, schema)
    base = time.time_ns() // 1000  # row ids: unique over the runs, exact as doubles (below 2^53)
    warm = warm_up(args, project, inserter, base, users[0])
    if warm is None:
        print("warning: the warm-up row did not arrive within 30 s", file=sys.stderr)
    inserter.insert_ms.clear()
    inserter.sent_ns.clear()

    topic = f"bench-changes-{secrets.token_hex(3)}"
    ws_url = args.realtime.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={project['publishable']}&vsn=1.0.0"
    tokens = [u["token"] for u in users] if secured else None
    count = max(1, round(args.rate * args.seconds))

    def send(count: int) -> tuple[int, int]:
        print(f"[{args.sockets} sockets, {args.variant}] inserting {count} rows at {args.rate:g}/s ({inserter.how})", file=sys.stderr)
        return inserter.run(base + 1, count, args.rate, owners)

    label = f"{'B, ' + str(len(users)) + ' users' if secured else 'A'} on topic {topic}"
    import psycopg

    with psycopg.connect(args.database, autocommit=True) as watcher:
        before = database_counts(watcher)
        figures = fan_out(args, args.sockets, count,
                          lambda share, offset, concurrency: (ChangeReceiver, ws_url, topic, share, concurrency, offset, owners, tokens),
                          send, label, quiet=args.quiet)
        time.sleep(2)
        after = database_counts(watcher)
    inserter.close()
    first_send, last_send, last_receive = figures["first_send_ns"], figures.pop("last_send_ns"), figures["last_receive_ns"]
    send_span = (last_send - first_send) / 1e9
    insert_ms = sorted(inserter.insert_ms)
    delivery_span = figures["delivery_seconds"]
    claims = min(len(users), args.sockets) if secured else 0
    figures = {
        "variant": args.variant,
        "sockets": args.sockets,
        "users": len(users) if secured else 0,
        "distinct_claims": claims,
        "inserted_by": inserter.how,
        "warm_up_seconds": warm,
        "rows": count,
        "rate_per_second": args.rate,
        "send_seconds": send_span,
        "rate_achieved_per_second": (count - 1) / send_span if send_span > 0 else None,
        "insert_p50_ms": percentile(insert_ms, 0.5),
        "insert_p99_ms": percentile(insert_ms, 0.99),
        "violations": figures["receiver_counts"].get("violations", 0),
        "rows_received": figures["messages_received"],
        "rows_delivered_per_second": figures["messages_received"] / delivery_span if delivery_span and delivery_span > 0 else 0,
        "behind_at_last_insert_seconds": (last_receive - last_send) / 1e9 if last_receive else None,
        "rights_checks": count * claims,
        # From the receivers' connecting to the drain's end, the whole cluster: realtime's rights
        # checks are a transaction each, the inserts one per row.
        "postgres_sessions_opened": after[0] - before[0],
        "postgres_transactions": after[1] - before[1],
        "postgres_transactions_per_row": (after[1] - before[1]) / count,
        "realtime_cpu_ms_per_row": figures["server_cpu_seconds"] / count * 1000,
        "postgres_cpu_ms_per_row": figures["postgres_cpu_seconds"] / count * 1000 if figures["postgres_cpu_seconds"] is not None else None,
        **figures,
    }
    with open(os.path.join(args.out, "runs.jsonl"), "a") as out:
        out.write(json.dumps(figures) + "\n")


# --- The report ---------------------------------------------------------------------------------

def number(value, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


def cores(r: dict) -> str:
    parts = [r["cores_realtime"], r["cores_postgres"], r["cores_receivers"], r["cores_sender"]]
    if r["cores_box"] is None or None in parts:
        return "-"
    return "/".join(f"{p:.2f}" for p in parts + [max(0.0, r["cores_box"] - sum(parts))])


# (name, the cell, the number B/A divides or None)
MEASURES = [
    ("sockets joined / held after", lambda r: f"{r['joined']} / {r['held']}", None),
    ("users (distinct tokens)", lambda r: f"{r['distinct_claims']}" if r["variant"] == "B" else "-", None),
    ("rights checks per row (transactions B − A)", lambda r: number(r.get("rights_checks_per_row")) if r["variant"] == "B" else "-", None),
    ("rows inserted @ rows/s", lambda r: f"{r['rows']} @ {number(r['rate_achieved_per_second'])}", None),
    ("insert p50 / p99 ms (one per transaction)", lambda r: f"{number(r['insert_p50_ms'], 2)} / {number(r['insert_p99_ms'], 2)}",
     lambda r: r["insert_p50_ms"]),
    ("deliveries / expected", lambda r: f"{r['deliveries']} / {r['deliveries_expected']}", None),
    ("deliveries to another user's socket", lambda r: f"{r['violations']}" if r["variant"] == "B" else "-", None),
    ("sockets short / out of order", lambda r: f"{r['sockets_short']} / {r['out_of_order']}", None),
    ("changes delivered/s (frames)", lambda r: number(r["deliveries_per_second"], 0), lambda r: r["deliveries_per_second"]),
    ("rows delivered/s (to any socket)", lambda r: number(r["rows_delivered_per_second"]), lambda r: r["rows_delivered_per_second"]),
    ("last delivery after the last insert, s", lambda r: number(r["behind_at_last_insert_seconds"], 2),
     lambda r: r["behind_at_last_insert_seconds"]),
    ("latency p50 ms (insert→receive)", lambda r: number(r["latency_p50_ms"]), lambda r: r["latency_p50_ms"]),
    ("latency p99 ms", lambda r: number(r["latency_p99_ms"]), lambda r: r["latency_p99_ms"]),
    ("latency max ms", lambda r: number(r["latency_max_ms"]), lambda r: r["latency_max_ms"]),
    ("per row: first socket p50/p99 ms",
     lambda r: f"{number(r['first_socket_latency_p50_ms'])} / {number(r['first_socket_latency_p99_ms'])}", None),
    ("per row: last socket p50/p99 ms",
     lambda r: f"{number(r['last_socket_latency_p50_ms'])} / {number(r['last_socket_latency_p99_ms'])}", None),
    ("realtime CPU µs per delivered change", lambda r: number(r["server_cpu_us_per_delivery"]), lambda r: r["server_cpu_us_per_delivery"]),
    ("realtime CPU ms per row", lambda r: number(r["realtime_cpu_ms_per_row"], 2), lambda r: r["realtime_cpu_ms_per_row"]),
    ("PostgreSQL CPU ms per row", lambda r: number(r["postgres_cpu_ms_per_row"], 2), lambda r: r["postgres_cpu_ms_per_row"]),
    ("per rights check, CPU µs: PostgreSQL / realtime (est.)",
     lambda r: f"{number(r.get('postgres_cpu_us_per_check'))} / {number(r.get('realtime_cpu_us_per_check'))}" if r["variant"] == "B" else "-",
     None),
    ("PostgreSQL transactions per row (connect → drain)", lambda r: number(r["postgres_transactions_per_row"]),
     lambda r: r["postgres_transactions_per_row"]),
    ("PostgreSQL sessions opened (connect → drain)", lambda r: f"{r['postgres_sessions_opened']}", None),
    ("PostgreSQL cores: run / idle (settle)",
     lambda r: f"{number(r['cores_postgres'], 2)} / {number(r['cores_postgres_idle'], 2)}", lambda r: r["cores_postgres"]),
    ("realtime cores: run / idle (settle)",
     lambda r: f"{number(r['cores_realtime'], 2)} / {number(r['cores_realtime_idle'], 2)}", lambda r: r["cores_realtime"]),
    ("cores: realtime/pg/receivers/inserter/rest", cores, None),
    ("box CPU busy", lambda r: f"{r['box_cpu_busy_during_fanout'] * 100:.0f}%" if r["box_cpu_busy_during_fanout"] is not None else "-", None),
    ("receiver CPU per process", lambda r: " ".join(f"{u:.2f}" for u in r["receiver_cpu_utilisation"])
     + (" SATURATED" if r["receivers_saturated"] else ""), None),
    ("realtime RSS connected MiB", lambda r: number(r["rss_connected_bytes"] / MIB), None),
    ("closed by the server", lambda r: f"{sum(r['closed_by_server'].values())}", None),
]


def table(runs: list[dict]) -> str:
    """One size: A, then each B with its ratio to A."""
    base = next((r for r in runs if r["variant"] == "A"), None)
    columns = []  # (heading, cells)
    for r in runs:
        columns.append(("A: no RLS" if r["variant"] == "A" else f"B: RLS, {r['users']} users", [cell(r) for _, cell, _ in MEASURES]))
        if r["variant"] == "B" and base is not None:
            ratios = []
            for _, _, value in MEASURES:
                a, b = (value(base), value(r)) if value else (None, None)
                ratios.append(f"×{b / a:.2f}" if a and b is not None and a == a and b == b else "")
            columns.append(("B/A", ratios))
    names = ["measure"] + [name for name, _, _ in MEASURES]
    width = max(len(name) for name in names) + 2
    widths = [max(len(heading), *(len(c) for c in cells)) + 2 for heading, cells in columns]
    lines = [f"{names[0]:<{width}}" + "".join(f"{heading:>{w}}" for (heading, _), w in zip(columns, widths))]
    for i, name in enumerate(names[1:]):
        lines.append(f"{name:<{width}}" + "".join(f"{cells[i]:>{w}}" for (_, cells), w in zip(columns, widths)))
    return "\n".join(lines)


def report(args) -> None:
    with open(args.project) as file:
        slug = json.load(file)["slug"]
    with open(os.path.join(args.out, "runs.jsonl")) as file:
        runs = [json.loads(line) for line in file if line.strip()]
    # The rights checks realtime ran, each a transaction: B's transactions per row beyond A's
    # (the insert and the cluster's background) at the same size. What one costs: PostgreSQL's
    # CPU per row beyond A's, over them; realtime's, beyond A's CPU per delivery times B's
    # deliveries per row (B delivers fewer frames than A), over them.
    for r in runs:
        base = next((a for a in runs if a["variant"] == "A" and a["sockets"] == r["sockets"]), None)
        if r["variant"] != "B" or base is None:
            continue
        checks = r["postgres_transactions_per_row"] - base["postgres_transactions_per_row"]
        r["rights_checks_per_row"] = checks
        if checks < 1:
            continue
        if r["postgres_cpu_ms_per_row"] is not None and base["postgres_cpu_ms_per_row"] is not None:
            r["postgres_cpu_us_per_check"] = (r["postgres_cpu_ms_per_row"] - base["postgres_cpu_ms_per_row"]) * 1000 / checks
        if base["server_cpu_us_per_delivery"]:
            delivering = base["server_cpu_us_per_delivery"] * r["deliveries"] / r["rows"] / 1000
            r["realtime_cpu_us_per_check"] = (r["realtime_cpu_ms_per_row"] - delivering) * 1000 / checks
    header = (f"realtime database changes (postgres_changes, INSERT on {TABLE}), {os.cpu_count()} cores, "
              f"load {' '.join(open('/proc/loadavg').read().split()[:3])}; realtime restarted before each run; "
              f"rows inserted by {runs[0]['inserted_by'] if runs else '-'}")
    print("\n" + header)
    for size in sorted({r["sockets"] for r in runs}):
        group = [r for r in runs if r["sockets"] == size]
        print(f"\n{size} sockets, {group[0]['rows']} rows at {group[0]['rate_per_second']:g}/s")
        print(table(group))
    print("\nA: every socket should get every row. B: each row only at its owner's sockets (S/U of them); a row at\n"
          "another user's socket is a violation. Latency: the INSERT sent → the frame parsed (the insert's commit is\n"
          "in it). CPU per row: over the window from the first insert to the drain's end, whatever ran in it\n"
          "(PostgreSQL's idle share is shown beside it). Rights checks per row: B's PostgreSQL transactions per row\n"
          "beyond A's (each check is a transaction). Per rights check: B's PostgreSQL CPU per row beyond A's, and\n"
          "realtime's beyond its A cost per delivery times B's deliveries, over the checks per row. 'rest': the other\n"
          "services and anything else on the box.")
    for r in runs:
        notes = []
        if r["violations"]:
            notes.append(f"{r['violations']} DELIVERIES TO ANOTHER USER'S SOCKET")
        checks = r.get("rights_checks_per_row")
        if checks is not None and checks > 1.5 * r["distinct_claims"]:
            notes.append(f"realtime ran {checks:.0f} rights checks per row for {r['distinct_claims']} distinct tokens "
                         f"(one per distinct claims text: the same token's claims are not always the same text)")
        if r["connect_failures"]:
            notes.append(f"connect/join failures {r['connect_failures']}")
        if r["closed_by_server"]:
            notes.append(f"closed by the server {r['closed_by_server']}")
        if r["receiver_errors"]:
            notes.append(f"receiver errors {r['receiver_errors']}")
        if r["unparsed_frames"]:
            notes.append(f"{r['unparsed_frames']} frames not understood")
        if r["out_of_order"]:
            notes.append(f"{r['out_of_order']} deliveries out of order")
        if r["sockets_short"]:
            notes.append(f"{r['sockets_short']} sockets short of their rows at the drain's end "
                         f"({r['deliveries_expected'] - r['deliveries']} deliveries missing)")
        if r["warm_up_seconds"] is None:
            notes.append("the warm-up row did not arrive")
        if r["rate_achieved_per_second"] and r["rate_achieved_per_second"] < 0.95 * r["rate_per_second"]:
            notes.append(f"the inserter reached {r['rate_achieved_per_second']:.1f} rows/s, not {r['rate_per_second']:g}")
        if r["receivers_saturated"]:
            notes.append("a receiver process was CPU-saturated: latency and deliveries/s are partly the load tool's")
        slow = r["metrics_after"].get("realtime_slow_consumers_closed_total")
        if slow:
            notes.append(f"realtime_slow_consumers_closed_total = {slow:g}")
        if notes:
            print(f"S={r['sockets']} {r['variant']}" + (f" U={r['users']}" if r["variant"] == "B" else "") + ": " + "; ".join(notes))
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as out:
        json.dump({"header": header, "project": slug, "runs": runs}, out, indent=2)
    print(f"figures: {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("setup", help="the project, its limits raised, the table opted in, the users")
    for name in ("auth", "provisioning", "token", "database", "project", "realtime"):
        one.add_argument("--" + name, required=True)
    one.add_argument("--max-sockets", type=int, required=True)
    one.add_argument("--users", type=int, required=True, help="users to sign up (the largest U)")
    one.set_defaults(act=setup)
    one = commands.add_parser("plan", help="the runs, one line of run arguments each")
    one.add_argument("--sizes", default="100,1000", help="socket counts, comma-separated")
    one.add_argument("--users", default="10,100", help="B's numbers of users, comma-separated")
    one.add_argument("--rate", type=float, default=10, help="rows inserted per second")
    one.set_defaults(act=plan)
    one = commands.add_parser("run", help="one size and variant; its figures appended to OUT/runs.jsonl")
    for name in ("realtime", "project", "out", "database"):
        one.add_argument("--" + name, required=name != "database")
    add_run_arguments(one, settle="seconds between the last join and the inserts", drain=120,
                      drain_help="seconds after the last insert to wait at most for deliveries")
    one.add_argument("--variant", choices=("A", "B"), required=True)
    one.add_argument("--users", type=int, required=True, help="B: the users the sockets are spread over")
    one.add_argument("--rate", type=float, required=True, help="rows/s")
    one.add_argument("--seconds", type=float, default=20, help="how long rows are inserted")
    one.add_argument("--quiet", type=float, default=15, help="the drain also ends after this many seconds without a frame")
    one.set_defaults(act=run)
    add_report_command(commands, report, "the tables of OUT/runs.jsonl; OUT/results.json")
    args = parser.parse_args()
    if getattr(args, "database", None) is None:
        args.database = os.environ.get("DATABASE_URL")
    args.act(args)


if __name__ == "__main__":
    main()
