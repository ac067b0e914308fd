"""Fixtures of the supabase-py acceptance suite (deploy/scripts/sdk-tests.sh runs it).

Two projects (A and B) are made once per run the real way (platform_setup.register_project);
every test makes its own users with fresh emails, so tests do not depend on one another. The
clients are the real ones from PyPI, pointed at the gateway: `SyncGoTrueClient(url=<base>/auth/v1,
headers={apikey, Authorization: Bearer <key>})`, its `.admin` with the secret key.
"""

from __future__ import annotations

import httpx
import pytest

import coverage_registry

# Before any client exists: the mfa/admin.mfa names are bound from the class at construction.
coverage_registry.install()

import supabase  # noqa: E402  (after install: its auth client subclasses SyncGoTrueClient)
from supabase_auth import SyncGoTrueClient  # noqa: E402

from platform_setup import Platform, Project, register_project  # noqa: E402

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
