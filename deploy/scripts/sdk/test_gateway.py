"""The gateway's own rules, seen from outside (deploy/gateway/gateway.conf.template): what it
routes, what it never exposes, and that its own answers are JSON. The routes through it are
exercised by every other test of the suite; this file runs only when the suite goes through the
gateway (sdk-tests.sh leaves it out with SDK_VIA_GATEWAY=0)."""

from __future__ import annotations

import httpx
import pytest
from storage3.exceptions import StorageApiError


@pytest.fixture
def gateway(platform):
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        yield http


def test_gateway_health_is_its_own(gateway):
    answer = gateway.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "service": "gateway"}


@pytest.mark.parametrize(
    "path",
    [
        "/internal/v1/routes",
        "/metrics",
        "/platform/auth/internal/v1/routes",
        "/platform/provisioning/internal/v1/projects",
        "/platform/auth/metrics",
        "/platform/storage/METRICS",
        "/platform/auth/%69nternal/v1/routes",
        "/no/such/prefix",
    ],
)
def test_internal_routes_and_metrics_are_never_exposed(gateway, platform, path):
    # Even with the service token: the internal API is for the services' own network.
    answer = gateway.get(path, headers={"X-Service-Token": platform.service_token})
    assert answer.status_code == 404, path
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "not_found"


def test_platform_prefixes_reach_their_service(gateway):
    for service in ("auth", "provisioning", "realtime", "storage"):
        answer = gateway.get(f"/platform/{service}/health")
        assert answer.status_code == 200, service
        assert answer.json()["service"] == service


def test_the_request_id_travels_through(gateway, project_a):
    answer = gateway.get("/auth/v1/settings", headers={"apikey": project_a.publishable, "X-Request-Id": "sdk-trace-0001"})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "sdk-trace-0001"
