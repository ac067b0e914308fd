#!/usr/bin/env python3
"""Fault campaign for the provisioning saga (run through deploy/scripts/chaos.sh).

Starts the four service executables on the database in DATABASE_URL (chaos.sh makes a
throwaway one), with short leases, then runs RUNS randomized rounds. Each round creates
projects (one at a time and concurrently), deletes some ready ones, and meanwhile injects
faults at random moments:

  - SIGKILL of any service (restarted after a random pause), which also lands between a
    step's side effect and its record, and in the middle of deprovisioning;
  - SIGSTOP of a downstream service for a while, then SIGCONT, so calls to it time out;
  - pg_terminate_backend of every connection of one service.

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
violation is printed on a line of its own; the last line is "N passed, M failed" over the
rounds. The seed is printed first: `chaos.sh RUNS SEED` replays a campaign (the faults' kinds,
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

SERVICES = ["auth", "provisioning", "realtime", "storage"]
DOWNSTREAM = ["auth", "realtime", "storage"]
TERMINAL = {"ready", "failed", "deleted"}
TOKEN = "chaos-internal-token-" + uuid.uuid4().hex


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
        environment = dict(os.environ, **self.environment, PORT=str(self.port))
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
        environment = {
            "DATABASE_URL": self.database_url,
            "INTERNAL_SERVICE_TOKEN": TOKEN,
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
        log_dir = work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.services = {name: Service(name, bin_dir / name, port, environment, log_dir)
                         for name, port in zip(SERVICES, ports)}
        self.projects: dict[str, str] = {}  # id → slug
        self.fault_counts: dict[str, int] = {}
        self.lock = threading.Lock()

    # --- the platform -----------------------------------------------------------------------

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
        for service in self.services.values():
            service.stop()

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

    def inject(self, kind: str, target: str, pause: float) -> None:
        service = self.services[target]
        with self.lock:
            self.fault_counts[kind] = self.fault_counts.get(kind, 0) + 1
        with service.faults:
            self.inject_locked(kind, service, pause)

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
            psql(self.admin_url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 f"WHERE application_name = '{target}' AND pid <> pg_backend_pid()")

    def round(self, number: int) -> None:
        # The plan comes from the seeded generator only; threads carry it out.
        creations = self.random.randint(2, 5)
        concurrent = self.random.random() < 0.5
        faults = []
        for _ in range(self.random.randint(1, 3)):
            kind = self.random.choice(["sigkill", "sigkill", "sigstop", "terminate_backends"])
            target = self.random.choice(SERVICES if kind != "sigstop" else DOWNSTREAM)
            faults.append((self.random.uniform(0, 1.5), kind, target, self.random.uniform(0.2, 2.5)))
        delete = self.random.random() < 0.5
        log(f"round {number}: {creations} projects{' at once' if concurrent else ''}, faults "
            + ", ".join(f"{kind} {target} at +{at:.2f}s" for at, kind, target, _ in faults)
            + (", deletes" if delete else ""))

        def fault_thread(at: float, kind: str, target: str, pause: float) -> threading.Thread:
            def run() -> None:
                time.sleep(at)
                self.inject(kind, target, pause)
            return threading.Thread(target=run)

        threads = [fault_thread(*fault) for fault in faults]
        for thread in threads:
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
                    # audit_log_verify() is NULL when the chain holds, else the first broken row.
                    broken = psql(self.admin_url, f"SELECT {name}.audit_log_verify()")
                    if broken:
                        violations.append(f"ready {slug}: audit chain broken at row {broken[0][0]}")
            elif status in ("failed", "deleted"):
                for what, present in [("schema", name in schemas), ("role", name in roles), ("storage directory", pid in directories),
                                      ("active keys", pid in active_keys)] + [(f"{s} registration", pid in registrations[s]) for s in DOWNSTREAM]:
                    if present:
                        violations.append(f"{status} {slug}: {what} left behind")
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
        self.ensure_up()
        missed = self.self_test()
        for miss in missed:
            print(f"VIOLATION self-test: {miss}", flush=True)
        if not missed:
            log("self-test: the checker named every planted orphan (schema and role, directory, registration)")
        passed = failed = 0
        try:
            for number in range(1, self.runs + 1):
                self.round(number)
                try:
                    violations = self.settle() or self.check()
                except RuntimeError as error:  # a service that cannot come back: the campaign ends here
                    violations = [str(error)]
                for violation in violations:
                    print(f"VIOLATION run {number} (seed {self.seed}): {violation}", flush=True)
                if violations:
                    failed += 1
                else:
                    passed += 1
                if any("did not become ready" in v or "exited" in v for v in violations):
                    break
        finally:
            self.shutdown()
        states = psql(self.admin_url, "SELECT status, count(*) FROM provisioning.projects GROUP BY status ORDER BY status")
        log("projects: " + ", ".join(f"{count} {status}" for status, count in states))
        log("faults injected: " + ", ".join(f"{count} {kind}" for kind, count in sorted(self.fault_counts.items())))
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
