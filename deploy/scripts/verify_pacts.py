#!/usr/bin/env python3
"""Provider verification of the consumer-driven contracts in contracts/pacts (Pact v3).

Started by deploy/scripts/contracts.sh with DATABASE_URL set and the pact-python tools on the
path. For every provider that has a pact: starts its real executable on a free port against
that database, replays every interaction of every pact naming it with the official Pact
verifier (pact-python's Verifier, over the pact_ffi library), and sets up each interaction's
provider state first through the state handler below, which uses the provider's own internal
API where one exists and psql otherwise. Prints one line per failed interaction, naming it,
and exits 1 when any failed.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("PACT_DO_NOT_TRACK", "true")  # the verifier would report usage over the network

from pact import Verifier  # noqa: E402  (after PACT_DO_NOT_TRACK)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_roles  # noqa: E402

# pact-python answers the verifier's state-change calls with an http.server handler that logs
# every call to stderr; the verifier's own report already names each state.
http.server.BaseHTTPRequestHandler.log_message = lambda *args, **kwargs: None  # type: ignore[method-assign]

SERVICES = ("auth", "provisioning", "realtime", "storage")
# Nothing listens here: provisioning's saga, started by the projects its states create, fails its
# first call at once and compensates, instead of reaching another service.
UNREACHABLE = "http://127.0.0.1:1"


class StateError(Exception):
    pass


# --- Helpers -----------------------------------------------------------------------------------


_handed_out: set[int] = set()


def free_port() -> int:
    """A port for a provider: below the kernel's ephemeral range (32768 and up), so none of the
    many outgoing connections of a run can take it before the provider binds; never handed out
    twice; free when checked (lib/ports.sh and TestSupport pick the same way)."""
    for _ in range(500):
        port = random.randrange(10_000, 32_000)
        if port in _handed_out:
            continue
        _handed_out.add(port)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port found")


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def call(method: str, url: str, token: str, body: Any = None, headers: dict[str, str] | None = None,
         expect: tuple[int, ...] = (200, 201, 204)) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, method=method, data=data)
    request.add_header("X-Service-Token", token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    if status not in expect:
        raise StateError(f"{method} {url} answered {status}: {answer[:300].decode(errors='replace')}")
    return status, answer


def psql(database_url: str, sql: str, **variables: str) -> str:
    """Runs `sql` (with :'name' variables) on `database_url`; returns what it printed."""
    binary = shutil.which("psql") or os.path.join(os.environ.get("PLATFORM_PG_BIN", ""), "psql")
    args = [binary, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database_url]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    result = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise StateError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


# --- Provider states ---------------------------------------------------------------------------
#
# One function per state name, called with the state's params on "setup" and again on
# "teardown" (after the interaction). Each setup makes its state true from whatever the previous
# interaction left; each teardown removes what the setup or the interaction made.


def registry_states(base: str, token: str, database_url: str, service: str) -> dict[str, Callable[[str, dict], None]]:
    def tenant_url(params: dict) -> str:
        return f"{base}/internal/v1/tenants/{params['id']}"

    def register(params: dict) -> None:
        slug = params["slug"]
        call("PUT", tenant_url(params), token, {"slug": slug, "schema": f"tenant_{slug}", "role": f"tenant_{slug}"})

    def remove(params: dict) -> None:
        # Deregistering removes the tenant's API keys and signing keys with it (auth).
        call("DELETE", tenant_url(params), token, expect=(204, 404))

    def not_registered(action: str, params: dict) -> None:
        remove(params)

    def registered(action: str, params: dict) -> None:
        if action == "setup":
            register(params)
        else:
            remove(params)

    def another_holds_slug(action: str, params: dict) -> None:
        registered(action, params)  # params name the other tenant

    states: dict[str, Callable[[str, dict], None]] = {
        "the tenant is not registered": not_registered,
        "the tenant is registered": registered,
        "another tenant holds the slug": another_holds_slug,
    }
    if service != "auth":
        return states

    def without_keys(action: str, params: dict) -> None:
        remove(params)
        if action == "setup":
            register(params)

    def with_keys(action: str, params: dict) -> None:
        remove(params)
        if action == "setup":
            register(params)
            call("PUT", tenant_url(params) + "/api-keys", token, {"keys": params["keys"]}, expect=(201,))

    def key_with_hash(action: str, params: dict) -> None:
        remove(params)
        if action == "setup":
            register(params)
            # A tenant's set is one publishable and one secret key: the given one and a made-up partner.
            other = "secret" if params["kind"] == "publishable" else "publishable"
            partner = {"id": str(uuid.uuid4()), "kind": other, "prefix": other[:1] + "k_state",
                       "sha256": uuid.uuid4().hex + uuid.uuid4().hex}
            given = {"id": params["key_id"], "kind": params["kind"], "prefix": params["prefix"], "sha256": params["sha256"]}
            call("PUT", tenant_url(params) + "/api-keys", token, {"keys": [given, partner]}, expect=(201,))

    def no_key_with_hash(action: str, params: dict) -> None:
        if action == "setup":
            psql(database_url, "DELETE FROM auth.api_keys WHERE sha256 = :'sha256';", sha256=params["sha256"])

    def no_tenant_with_slug(action: str, params: dict) -> None:
        if action == "setup":
            psql(database_url, "DELETE FROM auth.tenants WHERE slug = :'slug';", slug=params["slug"])

    def live_session(action: str, params: dict) -> None:
        # A developer (made up, no password that can sign in) with one live session.
        psql(database_url, "DELETE FROM auth.developers WHERE id = :'developer';", developer=params["developer_id"])
        if action == "setup":
            psql(database_url, """
                INSERT INTO auth.developers (id, email, email_normalized, password_hash)
                VALUES (:'developer', :'email', :'email', 'not-a-hash');
                INSERT INTO auth.sessions (id, developer_id) VALUES (:'session', :'developer');
                """, developer=params["developer_id"], session=params["session_id"], email=f"pact-{params['developer_id']}@example.com")

    def no_live_session(action: str, params: dict) -> None:
        if action == "setup":
            psql(database_url, "UPDATE auth.sessions SET revoked_at = now() WHERE id = :'session';", session=params["session_id"])

    def developer_exists(action: str, params: dict) -> None:
        # A made-up developer account (no password that can sign in).
        psql(database_url, "DELETE FROM auth.developers WHERE id = :'developer';", developer=params["developer_id"])
        if action == "setup":
            psql(database_url, """
                INSERT INTO auth.developers (id, email, email_normalized, password_hash)
                VALUES (:'developer', :'email', :'email', 'not-a-hash');
                """, developer=params["developer_id"], email=f"pact-{params['developer_id']}@example.com")

    def no_developer(action: str, params: dict) -> None:
        if action == "setup":
            psql(database_url, "DELETE FROM auth.developers WHERE id = :'developer';", developer=params["developer_id"])

    states.update({
        "a developer account exists": developer_exists,
        "no developer account has this id": no_developer,
        "a developer session is live": live_session,
        "no live session has this id": no_live_session,
        "the tenant is registered without API keys": without_keys,
        "the tenant has active API keys": with_keys,
        "an active API key has this hash": key_with_hash,
        "no active API key has this hash": no_key_with_hash,
        "no tenant has this slug": no_tenant_with_slug,
    })
    return states


def provisioning_states(base: str, token: str, database_url: str) -> dict[str, Callable[[str, dict], None]]:
    projects = f"{base}/internal/v1/projects"

    def reset(params: dict) -> None:
        """No project with the slug and no stored answer for the key (after the saga the
        project started has ended, so nothing writes to the rows being removed)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            open_runs = psql(database_url, """
                SELECT count(*) FROM provisioning.workflow_executions e JOIN provisioning.projects p ON p.id = e.project_id
                WHERE p.slug = :'slug' AND e.status IN ('pending', 'running', 'compensating');
                """, slug=params["slug"])
            if open_runs == "0":
                break
            time.sleep(0.1)
        psql(database_url, """
            BEGIN;
            DELETE FROM provisioning.idempotency_keys WHERE scope = 'POST /internal/v1/projects' AND key = :'key';
            DELETE FROM provisioning.workflow_executions
             WHERE project_id IN (SELECT id FROM provisioning.projects WHERE slug = :'slug');
            DELETE FROM provisioning.projects WHERE slug = :'slug';
            COMMIT;
            """, slug=params["slug"], key=params.get("idempotency_key", ""))

    def create(body: dict, key: str) -> None:
        call("POST", projects, token, body, headers={"Idempotency-Key": key}, expect=(202,))

    def nothing(action: str, params: dict) -> None:
        reset(params)

    def created_with_key(action: str, params: dict) -> None:
        reset(params)
        if action == "setup":
            create({"owner_id": params["owner_id"], "name": params["name"], "slug": params["slug"]}, params["idempotency_key"])

    def slug_taken(action: str, params: dict) -> None:
        reset(params)
        if action == "setup":
            create({"owner_id": str(uuid.uuid4()), "name": "Another developer's project", "slug": params["slug"]}, str(uuid.uuid4()))

    return {
        "no project has this slug or idempotency key": nothing,
        "a project was created with this idempotency key": created_with_key,
        "another project has this slug": slug_taken,
        "the idempotency key was used for another project": created_with_key,
    }


def state_handler(provider: str, states: dict[str, Callable[[str, dict], None]], failures: list[tuple[str, str]]):
    """The verifier's state callback. A failure is recorded (and fails every interaction given
    that state) but answered as success: the verifier would otherwise retry the call with a
    backoff of minutes before giving up."""
    def handle(state: str, action: str, parameters: dict | None) -> None:
        if state == "":
            return  # the verifier's generic set-up/teardown call
        function = states.get(state)
        if function is None:
            failures.append((state, f"no handler for the provider state «{state}» on {provider}: add one in deploy/scripts/verify_pacts.py"))
            return
        try:
            function(action, parameters or {})
        except Exception as error:  # noqa: BLE001  (reported below)
            failures.append((state, f"provider state «{state}» ({action}) failed: {error}"))
    return handle


# --- Providers ---------------------------------------------------------------------------------


class Provider:
    def __init__(self, name: str, binary: Path, port: int, environment: dict[str, str], log_dir: Path):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log_dir / f"{name}.log"
        handle = open(self.log, "wb")
        self.process = subprocess.Popen([str(binary)], env=environment, stdout=handle, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ready", timeout=2) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            return False

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# Starting, waiting for /ready and stopping behave as deploy/scripts/lib/services.sh does for the
# shell scripts (the same deadline, grace period and messages). That helper is not called from
# here: each provider gets an environment of its own, and its process must stay this script's
# child, so that it is reaped and seen to exit during the verification too.


def wait_ready(providers: list[Provider]) -> None:
    """Until every provider answers /ready with a 2xx, for at most PLATFORM_READY_TIMEOUT
    seconds (120) in all. A provider whose process exits fails it at once, with its log's last
    lines; so does the deadline, naming the providers not ready yet."""
    timeout = float(os.environ.get("PLATFORM_READY_TIMEOUT") or 120)
    deadline = time.monotonic() + timeout
    pending = list(providers)
    while True:
        for provider in providers:
            if provider.process.poll() is not None:
                raise RuntimeError(f"{provider.name} exited (status {provider.process.returncode}) before the services were ready; "
                                   f"last lines of {provider.log}:\n{provider.tail()}")
        pending = [provider for provider in pending if not provider.ready()]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise RuntimeError("\nerror: ".join(
                f"{provider.name} did not answer /ready on port {provider.port} within {timeout:.0f}s; "
                f"last lines of {provider.log}:\n{provider.tail()}" for provider in pending))
        time.sleep(0.2)


def stop_all(providers: list[Provider]) -> None:
    """SIGTERM to every provider still running, up to PLATFORM_STOP_GRACE seconds (30) for them
    to exit, then SIGKILL."""
    grace = float(os.environ.get("PLATFORM_STOP_GRACE") or 30)
    running = [provider for provider in providers if provider.process.poll() is None]
    for provider in running:
        provider.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for provider in running:
        try:
            provider.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"warning: {provider.name} did not stop within {grace:.0f}s of SIGTERM; sending SIGKILL", file=sys.stderr)
            provider.process.kill()
            provider.process.wait()


def pact_token(pacts: list[dict]) -> str:
    """The internal token the consumers' recorded requests carry (one for all pacts)."""
    tokens = {
        interaction["request"].get("headers", {}).get("X-Service-Token")
        for pact in pacts for interaction in pact["interactions"]
    } - {None}
    if len(tokens) != 1:
        raise SystemExit(f"error: the pacts must carry one X-Service-Token example, found {sorted(tokens)}")
    return tokens.pop()


def describe_failures(provider: str, results: dict[str, Any], state_failures: list[tuple[str, str]]) -> list[list[str]]:
    """One block of lines per failed interaction: its name, then why."""
    blocks = []
    for item in results.get("interactionResults", []):
        if item.get("pending"):
            continue
        given = item.get("providerStates") or []
        reasons = sorted({message for state, message in state_failures if state in given})
        mismatch = item.get("mismatch") or {}
        if str(item.get("result")).lower() == "ok" and not reasons:
            continue
        title = f"«{item.get('description')}»" + (f" (given {', '.join(given)})" if given else "")
        lines = [f"FAILED {item.get('consumer')} → {provider}: {title}"]
        for detail in mismatch.get("mismatches", []):
            lines.append(f"    {detail.get('type')}: {detail.get('path', '')} {detail.get('mismatch')}".rstrip())
        if mismatch.get("message"):
            lines.append(f"    {mismatch['message']}")
        lines += [f"    {reason}" for reason in reasons]
        blocks.append(lines)
    if not blocks:
        for error in results.get("errors", []):
            blocks.append([f"FAILED {error.get('interaction')}: {json.dumps(error.get('mismatch'))[:500]}"])
    return blocks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pacts", default="contracts/pacts", help="folder of Pact files")
    parser.add_argument("--bin", required=True, help="folder holding the service executables")
    parser.add_argument("--work", help="folder for logs and storage (default: a temporary one)")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("error: DATABASE_URL is not set", file=sys.stderr)
        return 2
    files = sorted(Path(args.pacts).glob("*.json"))
    if not files:
        print(f"error: no pact files in {args.pacts}", file=sys.stderr)
        return 2
    pacts = {path: json.loads(path.read_text()) for path in files}
    for path, pact in pacts.items():
        version = pact.get("metadata", {}).get("pactSpecification", {}).get("version")
        if version != "3.0.0":
            print(f"error: {path} is not a Pact v3 file (pactSpecification {version})", file=sys.stderr)
            return 2
    by_provider: dict[str, list[Path]] = {}
    for path, pact in pacts.items():
        by_provider.setdefault(pact["provider"]["name"], []).append(path)
    unknown = set(by_provider) - set(SERVICES)
    if unknown:
        print(f"error: pacts name providers that are not services here: {sorted(unknown)}", file=sys.stderr)
        return 2
    token = pact_token(list(pacts.values()))

    # Each provider as its own database role (service_roles.py), on a scratch database of this
    # run's (the services' schemas in DATABASE_URL's database may belong to one role already),
    # when with-postgres.sh made the roles; the states' SQL then runs as the superuser there,
    # an operator's view of every schema. Otherwise every provider and state uses DATABASE_URL.
    scratch = ""
    database_urls: dict[str, str] = {}
    state_url = database_url
    if service_roles.available():
        scratch = "platform_pacts_" + uuid.uuid4().hex[:8]
        psql(service_roles.admin_url(database_url), f"CREATE DATABASE {scratch};")
        scratch_url = service_roles.with_credentials(database_url, "", "", f"postgresql:///{scratch}")
        database_urls = service_roles.prepare(scratch_url) or {}
        state_url = service_roles.admin_url(scratch_url)

    work = Path(args.work or tempfile.mkdtemp(prefix="platform-contracts."))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in by_provider}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    base_environment = {key: value for key, value in os.environ.items()
                        if (not key.endswith("_URL") or key == "DATABASE_URL") and not key.endswith("_DB_PASSWORD")}
    base_environment.update({
        "HOST": "127.0.0.1", "DATABASE_URL": database_url, "INTERNAL_SERVICE_TOKEN": token,
        "SIGNING_KEY_ENCRYPTION_KEY": "pact-sealing-key-" + uuid.uuid4().hex,
        "LOG_LEVEL": os.environ.get("CONTRACTS_LOG_LEVEL", "info"),
    })
    providers: dict[str, Provider] = {}
    total = failed = 0
    report: list[str] = []
    try:
        for name in sorted(by_provider):
            environment = dict(base_environment, PORT=str(ports[name]), DATABASE_URL=database_urls.get(name, database_url))
            if name == "provisioning":
                if database_urls:
                    environment.update(service_roles.ROLE_SETTINGS)
                environment.update({
                    "PROVISIONING_URL": urls[name], "AUTH_URL": UNREACHABLE, "REALTIME_URL": UNREACHABLE,
                    "STORAGE_URL": UNREACHABLE, "PROVISIONING_STEP_MAX_ATTEMPTS": "1",
                })
            else:
                environment["AUTH_URL"] = urls.get("auth", UNREACHABLE)
            if name == "storage":
                environment["STORAGE_ROOT"] = str(work / "storage")
            binary = Path(args.bin) / name
            if not os.access(binary, os.X_OK):
                print(f"error: no executable at {binary}: build first (swift build)", file=sys.stderr)
                return 2
            if port_answers(ports[name]):
                print(f"error: something already answers on port {ports[name]} (wanted by {name})", file=sys.stderr)
                return 1
            providers[name] = Provider(name, binary, ports[name], environment, work / "logs")
        try:
            wait_ready(list(providers.values()))
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

        for name in sorted(by_provider):
            provider = providers[name]
            if name == "provisioning":
                states = provisioning_states(provider.url, token, state_url)
            else:
                states = registry_states(provider.url, token, state_url, name)
            state_failures: list[tuple[str, str]] = []
            count = sum(len(pacts[path]["interactions"]) for path in by_provider[name])
            total += count
            print(f"\n== {name}: {count} interactions from {', '.join(path.name for path in by_provider[name])}", flush=True)
            verifier = (
                Verifier(name, host="127.0.0.1")
                .add_transport(url=provider.url)
                .state_handler(state_handler(name, states, state_failures), teardown=True)
                .set_coloured_output(enabled=False)
                .set_error_on_empty_pact(enabled=True)
            )
            for path in by_provider[name]:
                verifier.add_source(path)
            try:
                verifier.verify()
                ok = True
            except RuntimeError:
                ok = False
            results = verifier.results
            (work / f"results-{name}.json").write_text(json.dumps(results, indent=1))
            blocks = describe_failures(name, results, state_failures)
            if not ok and not blocks:
                blocks = [[f"FAILED {name}: the verifier failed without naming an interaction (see its output above)"]]
            failed += len(blocks)
            report += [line for block in blocks for line in block]
            if provider.process.poll() is not None:
                failed += 0 if blocks else 1
                report.append(f"{name} exited during verification ({provider.process.returncode}); last lines of {provider.log}:\n{provider.tail()}")
    finally:
        stop_all(list(providers.values()))
        if scratch:
            psql(service_roles.admin_url(database_url), f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE);")

    print()
    if failed:
        print("\n".join(report))
        print(f"contracts: {failed} of {total} interactions FAILED (provider logs: {work / 'logs'})")
        return 1
    print(f"contracts: all {total} interactions of {len(files)} pacts verified against the real providers")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
