#!/usr/bin/env python3
"""Fault campaign for the provisioning saga (run through deploy/scripts/chaos.sh).

Starts the four service executables on the database in DATABASE_URL (chaos.sh makes a
throwaway one), each as its own database role (service_roles.py), with short leases, then runs RUNS randomized rounds. Each round creates
projects (one at a time and concurrently), deletes some ready ones, and meanwhile injects
faults at random moments:

  - SIGKILL of any service (restarted after a random pause), which also lands between a
    step's side effect and its record, and in the middle of deprovisioning;
  - SIGSTOP of a downstream service for a while, then SIGCONT, so calls to it time out;
  - pg_terminate_backend of every connection of one service;
  - a restart of PostgreSQL itself (pg_ctl restart, fast or immediate) in some rounds;
  - faults between provisioning and auth, realtime and storage: provisioning reaches each
    through a fault-injecting HTTP proxy (fault_proxy.py, in a thread of this process), and
    0-2 times per round one of them, for its next 1-3 requests, resets the connection before
    forwarding a request, or after forwarding it but before relaying the answer (the effect
    happened, the caller sees a reset), delays the request or the answer (past provisioning's
    call timeout, which the campaign sets to 3 s, sometimes), or answers 503 or 500 itself;
  - in some rounds provisioning runs with its test-only failpoint
    (PROVISIONING_FAILPOINT=after_effect:<step or *>:<p>), so it kills itself between a step's
    side effect and its record; it is restarted whenever it died, and without the failpoint
    before the round settles.

Then the round settles (every service up, no project left pending, running or
deprovisioning) and the invariant is checked over what exists:

  - every project is ready, failed or deleted;
  - a ready project has its schema, role, tables, three registrations, exactly two active keys
    (the ones its key set records) and its storage directory;
  - a failed or deleted project has none of them;
  - no schema, role, registration, key or directory exists without a ready project;
  - no project was provisioned twice (at most one succeeded provision execution per project);
  - every ready tenant's audit chain verifies.

Before the first round the checker tests itself: it plants an orphan schema and role, a storage
directory and a realtime registration, and fails the campaign unless it names each. Every
violation is printed on a line of its own, once: a round reports only the violations that are
new in it (one leak is not reported again by every later round), and fails when it has any;
the summary counts every distinct violation and how many were still there at the end. The
fault mix (how many of each kind were injected, and how many requests each proxy fault hit)
is printed at the end. The last line is "N passed, M failed" over the rounds. The seed is
printed first: `chaos.sh RUNS SEED` replays a campaign (the faults' kinds,
targets and moments come from it; what the machine's scheduling does with them does not).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_proxy import KINDS as PROXY_FAULTS, FaultProxy, ProxyGroup  # noqa: E402
import service_roles  # noqa: E402

SERVICES = ["auth", "provisioning", "realtime", "storage"]
DOWNSTREAM = ["auth", "realtime", "storage"]
TERMINAL = {"ready", "failed", "deleted"}
# Step row names the failpoint may name: the provision steps (a compensation runs under its
# step's name) and the deprovision steps.
STEPS = ["create_tenant_schema", "create_tenant_tables", "register_auth", "register_realtime",
         "register_storage", "generate_api_keys", "activate"]
UNDO_STEPS = ["drop_tenant_schema", "drop_tenant_tables", "deregister_auth", "deregister_realtime",
              "deregister_storage", "revoke_api_keys", "deactivate"]
CALL_TIMEOUT_SECONDS = 3.0
TOKEN = "chaos-internal-token-" + uuid.uuid4().hex
SEALING_KEY = "chaos-sealing-key-" + uuid.uuid4().hex


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Service:
    """One executable, restartable, its output appended to a log file."""

    def __init__(self, name: str, binary: Path, port: int, environment: dict[str, str], log_dir: Path):
        self.name, self.binary, self.port, self.environment = name, binary, port, environment
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.stopped = False  # SIGSTOPped
        # Faults on one service are carried out one at a time (two overlapping kill-and-restarts
        # would start it twice).
        self.faults = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Not the superuser's URL, nor the services' database passwords (each has its own URL).
        inherited = {key: value for key, value in os.environ.items()
                     if key != "DATABASE_ADMIN_URL" and not key.endswith("_DB_PASSWORD")}
        environment = dict(inherited, **self.environment, PORT=str(self.port))
        if "PROVISIONING_FAILPOINT" not in self.environment:  # only when the campaign sets it
            environment.pop("PROVISIONING_FAILPOINT", None)
        with open(self.log_path, "ab") as output:
            self.process = subprocess.Popen([str(self.binary)], env=environment, stdout=output, stderr=output)
        self.stopped = False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, number: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(number)

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            if self.stopped:
                self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
        self.stopped = False

    def stop(self, grace: float = 30) -> None:
        if not self.alive():
            return
        assert self.process is not None
        if self.stopped:
            self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready; see {self.log_path}")


def call(method: str, url: str, body: object | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"X-Service-Token": TOKEN, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else {})
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text) if text else {}
        except ValueError:
            return error.code, {}
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, {}


def psql(url: str, sql: str) -> list[list[str]]:
    output = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                            check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in output.splitlines() if line]


class Campaign:
    def __init__(self, runs: int, seed: int, bin_dir: Path, work: Path):
        self.runs, self.seed = runs, seed
        self.random = random.Random(seed)
        self.database_url = os.environ["DATABASE_URL"]
        self.admin_url = os.environ.get("DATABASE_ADMIN_URL", self.database_url)
        self.storage_root = work / "storage"
        self.storage_root.mkdir(parents=True, exist_ok=True)
        ports = [int(p) for p in os.environ["CHAOS_PORTS"].split()]
        urls = {name: f"http://127.0.0.1:{port}" for name, port in zip(SERVICES, ports)}
        # Provisioning reaches the downstream services through a fault proxy each (port 0: the
        # kernel picks); everyone else, the campaign included, goes direct.
        (work / "logs").mkdir(parents=True, exist_ok=True)
        self.proxy_log = open(work / "logs" / "proxy.log", "a")  # every request through a proxy
        self.proxies = {name: FaultProxy(name, 0, port, seed=seed + index, log=self.proxy_log)
                        for index, (name, port) in enumerate(zip(SERVICES, ports)) if name in DOWNSTREAM}
        self.proxy_group = ProxyGroup(list(self.proxies.values()))
        self.proxy_group.start()
        environment = {
            "DATABASE_URL": self.database_url,
            "INTERNAL_SERVICE_TOKEN": TOKEN,
            "SIGNING_KEY_ENCRYPTION_KEY": SEALING_KEY,
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "info",
            "STORAGE_ROOT": str(self.storage_root),
            "PROVISIONING_LEASE_SECONDS": "2",
            "PROVISIONING_STEP_MAX_ATTEMPTS": "6",
            "PROVISIONING_RETRY_BASE_MS": "50",
            "PROVISIONING_RETRY_MAX_MS": "400",
            "PROVISIONING_POLL_MS": "200",
            "PROVISIONING_WORKERS": "3",
            "SHUTDOWN_GRACE_SECONDS": "5",
            **{name.upper() + "_URL": url for name, url in urls.items()},
        }
        # Each service as its own database role, as a deployment has it (service_roles.py).
        database_urls = service_roles.prepare(self.database_url) or {}
        if database_urls:
            environment.update(service_roles.ROLE_SETTINGS)
        log_dir = work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.services = {name: Service(name, bin_dir / name, port,
                                       dict(environment, DATABASE_URL=database_urls.get(name, self.database_url)), log_dir)
                         for name, port in zip(SERVICES, ports)}
        self.services["provisioning"].environment.update(
            {name.upper() + "_URL": f"http://127.0.0.1:{proxy.port}" for name, proxy in self.proxies.items()},
            PROVISIONING_CALL_TIMEOUT_MS=str(int(CALL_TIMEOUT_SECONDS * 1000)))
        # The throwaway cluster, to restart it (with-postgres.sh exports where it lives).
        self.pg_dir = os.environ.get("PLATFORM_PG_DIR")
        self.pg_bin = os.environ.get("PLATFORM_PG_BIN")
        self.reported: set[str] = set()  # every violation printed so far
        self.errors: list[str] = []  # faults that could not be injected, this round
        self.lingering: list[threading.Thread] = []  # this round's proxy faults
        self.projects: dict[str, str] = {}  # id → slug
        self.fault_counts: dict[str, int] = {}
        self.lock = threading.Lock()

    # --- the platform -----------------------------------------------------------------------

    def durable_commits(self) -> None:
        """The cluster runs with synchronous_commit=off (with-postgres.sh); an immediate restart
        would then lose commits the services were told about, which is no fault of theirs. The
        campaign's database gets synchronous_commit=on (fsync stays off: what reached the
        kernel survives a killed postmaster)."""
        psql(self.admin_url, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', "
                             "current_database()); END $$")

    def ensure_up(self) -> None:
        for service in self.services.values():
            if service.stopped:
                service.signal(signal.SIGCONT)
                service.stopped = False
            if not service.alive():
                service.start()
        deadline = time.monotonic() + 120
        for service in self.services.values():
            service.wait_ready(deadline)

    def shutdown(self) -> None:
        for proxy in self.proxies.values():
            proxy.clear_fault()
        for service in self.services.values():
            service.stop()
        self.proxy_group.stop()

    # --- work -------------------------------------------------------------------------------

    def create(self) -> None:
        slug = "chaos_" + uuid.uuid4().hex[:10]
        key = uuid.uuid4().hex
        body = {"owner_id": str(uuid.uuid4()), "name": "Chaos " + slug, "slug": slug}
        url = self.services["provisioning"].url + "/internal/v1/projects"
        for _ in range(5):  # the same Idempotency-Key: a repeat after a lost answer makes no second project
            request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
                "X-Service-Token": TOKEN, "Content-Type": "application/json", "Idempotency-Key": key})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
                    with self.lock:
                        self.projects[answer["project_id"]] = slug
                    return
            except urllib.error.HTTPError as error:
                if error.code < 500 and error.code != 409:
                    log(f"  create {slug}: {error.code}")
                    return
            except (urllib.error.URLError, OSError, TimeoutError):
                pass
            time.sleep(0.5)

    def delete_some_ready(self) -> None:
        with self.lock:
            ids = list(self.projects)
        self.random.shuffle(ids)
        for project in ids[:2]:
            status, answer = call("GET", self.services["provisioning"].url + f"/v1/projects/{project}")
            if status == 200 and answer.get("status") == "ready":
                call("DELETE", self.services["provisioning"].url + f"/v1/projects/{project}")

    # --- faults -----------------------------------------------------------------------------

    def count(self, kind: str, number: int = 1) -> None:
        with self.lock:
            self.fault_counts[kind] = self.fault_counts.get(kind, 0) + number

    def inject(self, kind: str, target: str, pause: float) -> None:
        self.count(kind)
        if kind.startswith("pg_restart"):
            self.restart_postgres(kind.removeprefix("pg_restart_"))
            return
        service = self.services[target]
        with service.faults:
            self.inject_locked(kind, service, pause)

    def restart_postgres(self, mode: str) -> None:
        """pg_ctl restart of the throwaway cluster (as with-postgres.sh runs it: as postgres
        when root); the services must ride it out and reconnect."""
        if not self.pg_dir or not self.pg_bin:
            log("  pg_restart skipped: PLATFORM_PG_DIR / PLATFORM_PG_BIN not set (not a throwaway cluster)")
            return
        as_db = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        result = subprocess.run(as_db + [f"{self.pg_bin}/pg_ctl", "-D", f"{self.pg_dir}/data", "-l", f"{self.pg_dir}/server.log",
                                         "-m", mode, "-w", "-t", "60", "restart"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl restart -m {mode} failed: {result.stderr.strip() or result.stdout.strip()}")

    def proxy_fault(self, target: str, kind: str, probability: float, seconds: float, budget: int, length: float) -> None:
        """Sets `kind` on the proxy in front of `target` for the next `budget` requests it hits
        (each hit with `probability`), for at most `length` seconds."""
        proxy = self.proxies[target]
        self.count(f"proxy {kind}")
        proxy.set_fault(kind, probability, seconds, budget)
        deadline = time.monotonic() + length
        while time.monotonic() < deadline and not proxy.spent:
            time.sleep(0.05)
        proxy.clear_fault()

    def set_failpoint(self, failpoint: str | None) -> None:
        """Restarts provisioning with PROVISIONING_FAILPOINT set to `failpoint` (or unset)."""
        service = self.services["provisioning"]
        with service.faults:
            if failpoint is None:
                service.environment.pop("PROVISIONING_FAILPOINT", None)
            else:
                service.environment["PROVISIONING_FAILPOINT"] = failpoint
            service.kill()
            service.start()

    def watch_failpoint(self, done: threading.Event) -> None:
        """While the round runs, restarts provisioning whenever it died by itself (its failpoint)."""
        service = self.services["provisioning"]
        while not done.wait(0.1):
            with service.faults:
                if not service.alive():
                    assert service.process is not None
                    if service.process.returncode == -signal.SIGKILL:
                        self.count("failpoint crash")
                    service.start()

    def inject_locked(self, kind: str, service: Service, pause: float) -> None:
        target = service.name
        if kind == "sigkill":
            service.kill()
            time.sleep(pause)
            service.start()
        elif kind == "sigstop":
            if service.alive():
                service.signal(signal.SIGSTOP)
                service.stopped = True
                time.sleep(pause)
                service.signal(signal.SIGCONT)
                service.stopped = False
        elif kind == "terminate_backends":
            try:
                psql(self.admin_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     f"WHERE application_name = '{target}' AND pid <> pg_backend_pid()")
            except subprocess.CalledProcessError:  # PostgreSQL itself restarting meanwhile
                pass

    def round(self, number: int) -> None:
        # The plan comes from the seeded generator only; threads carry it out.
        creations = self.random.randint(2, 5)
        concurrent = self.random.random() < 0.5
        faults = []
        for _ in range(self.random.randint(0, 2)):
            kind = self.random.choice(["sigkill", "sigkill", "sigstop", "terminate_backends"])
            target = self.random.choice(SERVICES if kind != "sigstop" else DOWNSTREAM)
            faults.append((self.random.uniform(0, 1.5), kind, target, self.random.uniform(0.2, 2.5)))
        if self.random.random() < 0.15:
            # Unfaulted sagas call the other services within the first ~0.5 s of a round: that
            # is where a restart, and a proxy fault, land mid-saga.
            faults.append((self.random.uniform(0.05, 0.5), "pg_restart_" + self.random.choice(["fast", "immediate"]), "postgres", 0.0))
        proxy_faults = []  # (at, target, kind, probability, seconds, budget, length)
        for _ in range(self.random.randint(0, 2)):
            proxy_faults.append((self.random.uniform(0, 0.4), self.random.choice(DOWNSTREAM), self.random.choice(PROXY_FAULTS),
                                 self.random.uniform(0.5, 1.0), self.random.uniform(0.3, 4.0), self.random.randint(1, 3), 3.0))
        delete = self.random.random() < 0.5
        failpoint = None
        if self.random.random() < 0.2:
            step = self.random.choice(["*", "*", "*"] + STEPS + (UNDO_STEPS if delete else []))
            failpoint = f"after_effect:{step}:{self.random.uniform(0.2, 0.5) if step == '*' else self.random.uniform(0.5, 1.0):.2f}"
        if not faults and not proxy_faults and failpoint is None:
            faults.append((self.random.uniform(0, 1.5), "sigkill", self.random.choice(SERVICES), self.random.uniform(0.2, 2.5)))
        log(f"round {number}: {creations} projects{' at once' if concurrent else ''}, faults "
            + ", ".join([f"{kind} {target} at +{at:.2f}s" for at, kind, target, _ in faults]
                        + [f"proxy {kind}{f' {sec:.1f}s' if kind.startswith('delay') else ''} {target} at +{at:.2f}s "
                           f"(next {budget} requests, p={p:.2f})" for at, target, kind, p, sec, budget, _ in proxy_faults]
                        + ([f"failpoint {failpoint}"] if failpoint else []))
            + (", deletes" if delete else ""))

        def fault_thread(at: float, kind: str, target: str, pause: float) -> threading.Thread:
            def run() -> None:
                time.sleep(at)
                try:
                    self.inject(kind, target, pause)
                except Exception as error:  # reported as a violation after the round
                    with self.lock:
                        self.errors.append(f"{kind} {target}: {error}")
            return threading.Thread(target=run)

        def proxy_thread(at: float, target: str, kind: str, probability: float, seconds: float, budget: int,
                         length: float) -> threading.Thread:
            def run() -> None:
                time.sleep(at)
                self.proxy_fault(target, kind, probability, seconds, budget, length)
            return threading.Thread(target=run)

        watching = threading.Event()
        watcher = None
        if failpoint is not None:
            self.count("failpoint round")
            self.set_failpoint(failpoint)
            self.services["provisioning"].wait_ready(time.monotonic() + 60)
            watcher = threading.Thread(target=self.watch_failpoint, args=(watching,))
            watcher.start()
        threads = [fault_thread(*fault) for fault in faults]
        # Proxy faults may outlast the round's work and overlap the settling (they end by
        # themselves within seconds); they are over before the check.
        self.lingering = [proxy_thread(*fault) for fault in proxy_faults]
        for thread in threads + self.lingering:
            thread.start()
        if delete:
            self.delete_some_ready()
        if concurrent:
            workers = [threading.Thread(target=self.create) for _ in range(creations)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        else:
            for _ in range(creations):
                self.create()
        for thread in threads:
            thread.join()
        if watcher is not None:
            watching.set()
            watcher.join()
            self.set_failpoint(None)

    # --- settle and check -------------------------------------------------------------------

    def settle(self, timeout: float = 180) -> list[str]:
        self.ensure_up()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            open_projects = psql(self.admin_url, "SELECT id, status FROM provisioning.projects "
                                                 "WHERE status NOT IN ('ready', 'failed', 'deleted')")
            if not open_projects:
                return []
            for service in self.services.values():  # a service that died on its own is a finding too
                if not service.alive():
                    return [f"{service.name} exited by itself while settling (see {service.log_path})"]
            time.sleep(0.5)
        return [f"project {row[0]} still {row[1]} after {timeout:.0f} s" for row in open_projects]

    def check(self) -> list[str]:
        violations: list[str] = []
        rows = psql(self.admin_url, "SELECT id, slug, status, is_active FROM provisioning.projects")
        projects = {row[0]: (row[1], row[2], row[3] == "t") for row in rows}
        ready = {pid for pid, (_, status, _) in projects.items() if status == "ready"}
        for pid, (slug, status, active) in projects.items():
            if status not in TERMINAL:
                violations.append(f"project {slug} ({pid}) is {status}")
            if active != (status == "ready"):
                violations.append(f"project {slug}: is_active={active} while {status}")

        def ids(sql: str) -> set[str]:
            return {row[0] for row in psql(self.admin_url, sql)}

        schemas = ids("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'")
        roles = ids("SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\\_%'")
        registrations = {name: ids(f"SELECT id FROM {name}.tenants") for name in DOWNSTREAM}
        active_keys: dict[str, set[str]] = {}
        for tenant, sha in psql(self.admin_url, "SELECT tenant_id, sha256 FROM auth.api_keys WHERE revoked_at IS NULL"):
            active_keys.setdefault(tenant, set()).add(sha)
        key_sets = {row[0]: {row[1], row[2]} for row in psql(
            self.admin_url, "SELECT project_id, publishable_sha256, secret_sha256 FROM provisioning.api_key_sets")}
        directories = {p.name for p in self.storage_root.iterdir() if p.is_dir()}
        tables = {}
        for schema, count in psql(self.admin_url, "SELECT table_schema, count(*) FROM information_schema.tables "
                                                  "WHERE table_schema LIKE 'tenant\\_%' AND table_name IN ('users', 'audit_log', '_migrations') "
                                                  "GROUP BY table_schema"):
            tables[schema] = int(count)
        twice = psql(self.admin_url, "SELECT project_id, count(*) FROM provisioning.workflow_executions "
                                     "WHERE kind = 'provision' AND status = 'succeeded' GROUP BY project_id HAVING count(*) > 1")
        violations += [f"project {row[0]} was provisioned {row[1]} times" for row in twice]

        expected_names = set()
        chains: list[tuple[str, str]] = []  # ready tenants whose audit chain is verified below
        for pid, (slug, status, _) in projects.items():
            name = "tenant_" + slug
            if status == "ready":
                expected_names.add(name)
                for what, present in [("schema", name in schemas), ("role", name in roles),
                                      ("tables", tables.get(name) == 3), ("storage directory", pid in directories)]:
                    if not present:
                        violations.append(f"ready {slug}: no {what}")
                for service in DOWNSTREAM:
                    if pid not in registrations[service]:
                        violations.append(f"ready {slug}: not registered with {service}")
                keys = active_keys.get(pid, set())
                if len(keys) != 2 or keys != key_sets.get(pid):
                    violations.append(f"ready {slug}: {len(keys)} active keys, {'matching' if keys == key_sets.get(pid) else 'not matching'} its key set")
                if name in schemas and tables.get(name) == 3:
                    chains.append((slug, name))
            elif status in ("failed", "deleted"):
                for what, present in [("schema", name in schemas), ("role", name in roles), ("storage directory", pid in directories),
                                      ("active keys", pid in active_keys)] + [(f"{s} registration", pid in registrations[s]) for s in DOWNSTREAM]:
                    if present:
                        violations.append(f"{status} {slug}: {what} left behind")
        # Every chain in one query: audit_log_verify() is NULL when the chain holds, else the
        # first broken row (query_to_xml leaves a NULL out, so the xpath finds nothing).
        if chains:
            names = ",".join("'" + name + "'" for _, name in chains)
            broken = psql(self.admin_url, f"""
                SELECT n, b FROM (
                    SELECT n, (xpath('/row/b/text()', query_to_xml(format('SELECT %I.audit_log_verify() AS b', n), false, true, '')))[1]::text AS b
                    FROM unnest(ARRAY[{names}]) AS n) v
                WHERE b IS NOT NULL""")
            slugs = {name: slug for slug, name in chains}
            violations += [f"ready {slugs[row[0]]}: audit chain broken at row {row[1]}" for row in broken]
        known = set(projects)
        for name in (schemas | roles) - expected_names:
            if not any("tenant_" + slug == name for slug, status, _ in projects.values() if status in ("failed", "deleted")):
                violations.append(f"{name} exists without a project")
        for service in DOWNSTREAM:
            for pid in registrations[service] - known:
                violations.append(f"{service} registration {pid} without a project")
        for pid in set(active_keys) - known:
            violations.append(f"active keys of {pid} without a project")
        for pid in directories - known:
            violations.append(f"storage directory {pid} without a project")
        return violations

    def self_test(self) -> list[str]:
        """The checker must see what it claims to: plant one orphan of each kind, check, expect
        each named, and remove them again. Returns what it failed to see."""
        orphan = str(uuid.uuid4())
        name = "tenant_orphan_" + uuid.uuid4().hex[:8]
        psql(self.admin_url, f"CREATE ROLE {name} NOLOGIN; CREATE SCHEMA {name} AUTHORIZATION {name}")
        (self.storage_root / orphan).mkdir()
        status, _ = call("PUT", self.services["realtime"].url + f"/internal/v1/tenants/{orphan}",
                         {"slug": name[len("tenant_"):], "schema": name, "role": name})
        try:
            seen = "\n".join(self.check())
            expected = {f"{name} exists without a project": name in seen,
                        f"storage directory {orphan}": f"storage directory {orphan}" in seen,
                        f"realtime registration {orphan}": status == 201 and f"realtime registration {orphan}" in seen}
            return [f"the checker missed: {what}" for what, found in expected.items() if not found]
        finally:
            psql(self.admin_url, f"DROP SCHEMA {name}; DROP ROLE {name}")
            (self.storage_root / orphan).rmdir()
            call("DELETE", self.services["realtime"].url + f"/internal/v1/tenants/{orphan}")

    def run(self) -> int:
        log(f"chaos: {self.runs} runs, seed {self.seed}")
        self.durable_commits()
        self.ensure_up()
        missed = self.self_test()
        for miss in missed:
            print(f"VIOLATION self-test: {miss}", flush=True)
        if not missed:
            log("self-test: the checker named every planted orphan (schema and role, directory, registration)")
        passed = failed = 0
        last: list[str] = []
        try:
            for number in range(1, self.runs + 1):
                began = time.monotonic()
                self.proxy_log.write(f"{time.time():.3f} round {number}\n")
                self.round(number)
                faulted = settled = time.monotonic()
                try:
                    violations = [f"fault injection failed: {error}" for error in self.errors]
                    self.errors.clear()
                    unsettled = self.settle()
                    for thread in self.lingering:
                        thread.join()
                    settled = time.monotonic()
                    violations += unsettled or self.check()
                except RuntimeError as error:  # a service that cannot come back: the campaign ends here
                    violations = [str(error)]
                log(f"  round {number}: work and faults done after {faulted - began:.1f}s, settled after "
                    f"{settled - faulted:.1f}s, checked in {time.monotonic() - settled:.1f}s")
                last = violations
                new = [violation for violation in violations if violation not in self.reported]
                self.reported.update(new)
                for violation in new:
                    print(f"VIOLATION run {number} (seed {self.seed}): {violation}", flush=True)
                if new:
                    failed += 1
                else:
                    passed += 1
                if any("did not become ready" in v or "exited" in v or "pg_ctl" in v for v in violations):
                    break
        finally:
            self.shutdown()
        states = psql(self.admin_url, "SELECT status, count(*) FROM provisioning.projects GROUP BY status ORDER BY status")
        log("projects: " + ", ".join(f"{count} {status}" for status, count in states))
        for proxy in self.proxies.values():
            for kind, hits in proxy.hits.items():
                self.count(f"proxy {kind} requests hit", hits)
        log("proxied requests: " + ", ".join(f"{proxy.forwarded} to {name}" for name, proxy in self.proxies.items()))
        log("fault mix: " + ", ".join(f"{count} {kind}" for kind, count in sorted(self.fault_counts.items())))
        log(f"violations: {len(self.reported)} distinct over the campaign, {len(last)} still there after the last round")
        if missed:
            failed += 1
        print(f"chaos (seed {self.seed}): {passed} passed, {failed} failed")
        print(f"{passed} passed, {failed} failed")
        return 0 if failed == 0 else 1


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else random.SystemRandom().randrange(1, 2**31)
    bin_dir = Path(os.environ["CHAOS_BIN_DIR"])
    work = Path(os.environ["CHAOS_WORK_DIR"])
    return Campaign(runs, seed, bin_dir, work).run()


if __name__ == "__main__":
    sys.exit(main())
