"""Fixtures of the supabase-py acceptance suite (deploy/scripts/sdk-tests.sh runs it).

Two projects (A and B) are made once per run the real way (platform_setup.register_project);
every test makes its own users with fresh emails, so tests do not depend on one another. The
clients are the real ones from PyPI, pointed at the gateway: `SyncGoTrueClient(url=<base>/auth/v1,
headers={apikey, Authorization: Bearer <key>})`, its `.admin` with the secret key; for storage,
`supabase.create_client(<base>, key).storage` (`make_supabase`), and the buckets a test makes
(`new_bucket`) are emptied and deleted after it.
"""

from __future__ import annotations

import secrets

import httpx
import pytest

import coverage_registry

# Before any client exists: the mfa/admin.mfa names are bound from the class at construction.
coverage_registry.install()

import supabase  # noqa: E402  (after install: its auth client subclasses SyncGoTrueClient)
from supabase_auth import SyncGoTrueClient  # noqa: E402

from platform_setup import Platform, Project, register_project  # noqa: E402
from support import storage_headers  # noqa: E402

supabase.create_client = coverage_registry.wrap_function("supabase.create_client", supabase.create_client)


@pytest.fixture(scope="session")
def platform() -> Platform:
    return Platform.from_environment()


@pytest.fixture(scope="session")
def project_a(platform: Platform) -> Project:
    return register_project(platform, "a")


@pytest.fixture(scope="session")
def project_b(platform: Platform) -> Project:
    return register_project(platform, "b")


def _close(client: SyncGoTrueClient) -> None:
    # A signed-in client keeps a timer thread for its next refresh: cancel it, close the socket.
    timer = getattr(client, "_refresh_token_timer", None)
    if timer is not None:
        timer.cancel()
        client._refresh_token_timer = None
    client.close()


@pytest.fixture
def make_client(platform: Platform):
    """make_client(key, **options) → a SyncGoTrueClient for that API key; closed after the test."""
    made: list[SyncGoTrueClient] = []

    def make(key: str, **options) -> SyncGoTrueClient:
        client = SyncGoTrueClient(
            url=platform.auth_v1,
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        _close(client)


@pytest.fixture
def client_a(make_client, project_a: Project) -> SyncGoTrueClient:
    """Project A's client with its publishable key."""
    return make_client(project_a.publishable)


@pytest.fixture
def client_b(make_client, project_b: Project) -> SyncGoTrueClient:
    return make_client(project_b.publishable)


@pytest.fixture
def admin_a(make_client, project_a: Project):
    """Project A's admin API (`client.admin`) with its secret key."""
    return make_client(project_a.secret).admin


@pytest.fixture
def admin_b(make_client, project_b: Project):
    return make_client(project_b.secret).admin


@pytest.fixture
def make_supabase(platform: Platform):
    """make_supabase(key, token=None, base=None) → `supabase.create_client(<storage base>, key)`
    (or `base`), with a user's access token as its bearer when given (as the client sends it once
    signed in); closed after the test. Its `.storage` is storage3's `SyncStorageClient`."""
    made: list = []

    def make(key: str, token: str | None = None, base: str | None = None):
        options = supabase.ClientOptions(headers={"Authorization": f"Bearer {token}"}) if token else None
        client = supabase.create_client(base or platform.storage_base_url, key, options)
        made.append(client)
        return client

    yield make
    for client in made:
        _close(client.auth)
        if client._storage is not None:
            client._storage.session.close()


class Buckets:
    """Buckets a test makes, emptied and deleted after it (through plain requests with the
    project's secret key, so that the client methods a test calls are its own alone)."""

    def __init__(self, platform: Platform):
        self.http = httpx.Client(base_url=platform.storage_v1, timeout=60)
        self.made: list[tuple[Project, str]] = []

    @staticmethod
    def name(tag: str) -> str:
        """A fresh bucket id (not made)."""
        return f"sdk-{tag}-{secrets.token_hex(4)}"

    def __call__(self, project: Project, tag: str, *, bucket_id: str | None = None, **options) -> str:
        """A bucket of the project made with its secret key and these options (`public`,
        `file_size_limit`, `allowed_mime_types`, the platform's `user_access`); its id."""
        bucket = bucket_id or self.name(tag)
        answer = self.http.post("/bucket", headers=storage_headers(project.secret), json={"id": bucket, "name": bucket, **options})
        assert answer.status_code == 200, answer.text
        self.adopt(project, bucket)
        return bucket

    def adopt(self, project: Project, bucket: str) -> None:
        """Removes this bucket too after the test (one the test makes itself)."""
        self.made.append((project, bucket))

    def remove_all(self) -> None:
        for project, bucket in self.made:
            for method, path in (("POST", f"/bucket/{bucket}/empty"), ("DELETE", f"/bucket/{bucket}")):
                answer = self.http.request(method, path, headers=storage_headers(project.secret), json={})
                assert answer.status_code in (200, 404), (method, path, answer.text)


@pytest.fixture
def new_bucket(platform: Platform):
    """new_bucket(project, tag, **options) → the id of a new bucket (`Buckets`), emptied and
    deleted after the test whatever it left in it; `new_bucket.name(tag)` a fresh id,
    `new_bucket.adopt(project, id)` one the test makes itself."""
    buckets = Buckets(platform)
    yield buckets
    try:
        buckets.remove_all()
    finally:
        buckets.http.close()


@pytest.fixture
def raw(platform: Platform):
    """A plain httpx client on `<base>/auth/v1`, for what the SDK does not show (headers, bodies)."""
    with httpx.Client(base_url=platform.auth_v1, timeout=30) as http:
        yield http


# --- Which client methods the tests exercised -------------------------------------------------

_failed: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    coverage_registry.begin_test()
    yield
    coverage_registry.end_test(passed=item.nodeid not in _failed)


def pytest_runtest_logreport(report):
    if report.failed:
        _failed.add(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.section("supabase-py client methods exercised")
    for line in coverage_registry.summary_lines():
        terminalreporter.write_line(line)
