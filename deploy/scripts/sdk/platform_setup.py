"""The platform the suite runs against, and the projects it makes there the real way.

Read from the environment (deploy/scripts/sdk-tests.sh sets it):

- `SDK_BASE_URL`: the base URL a supabase client is given (the gateway; `…/auth/v1` is auth's
  GoTrue API under it).
- `SDK_PLATFORM_AUTH_URL`: where auth's own API is (`POST /v1/register`), through the gateway's
  `/platform/auth` prefix or auth's port.
- `SDK_PROVISIONING_URL`: provisioning's operator API (`GET /v1/projects/{id}`).
- `INTERNAL_SERVICE_TOKEN`: the service token provisioning's operator API asks for.
- `SDK_PLATFORM_DOMAIN`: auth's `PLATFORM_DOMAIN` (`<slug>.<domain>` names a project).
- `SDK_STORAGE_BASE_URL`: the base URL a supabase client is given for storage (`…/storage/v1`
  under it): the gateway, or storage's own port with `SDK_VIA_GATEWAY=0`.
- `SDK_STORAGE_URL`: storage's own port, for its internal routes (the gateway never exposes
  them) and its `GET /v1/tenants/{slug}/limits`.
- `SDK_DATABASE_URL`: the scratch database the services use, where an operator's change to a
  project's storage quota is made (`storage.tenants.quota_bytes`; no API sets it).
- `SDK_PROJECT_TIMEOUT` (180): seconds a project may take to become ready.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Platform:
    base_url: str
    platform_auth_url: str
    provisioning_url: str
    service_token: str
    domain: str | None = None
    storage_base_url: str | None = None
    storage_url: str | None = None
    database_url: str | None = None

    @property
    def auth_v1(self) -> str:
        return f"{self.base_url}/auth/v1"

    @property
    def storage_v1(self) -> str:
        return f"{self.storage_base_url or self.base_url}/storage/v1"

    @staticmethod
    def from_environment() -> "Platform":
        missing = [
            name
            for name in ("SDK_BASE_URL", "SDK_PLATFORM_AUTH_URL", "SDK_PROVISIONING_URL", "INTERNAL_SERVICE_TOKEN")
            if not os.environ.get(name)
        ]
        if missing:
            raise RuntimeError(
                "the SDK suite needs " + ", ".join(missing) + " (deploy/scripts/sdk-tests.sh sets them)"
            )
        return Platform(
            base_url=os.environ["SDK_BASE_URL"].rstrip("/"),
            platform_auth_url=os.environ["SDK_PLATFORM_AUTH_URL"].rstrip("/"),
            provisioning_url=os.environ["SDK_PROVISIONING_URL"].rstrip("/"),
            service_token=os.environ["INTERNAL_SERVICE_TOKEN"],
            domain=os.environ.get("SDK_PLATFORM_DOMAIN") or None,
            storage_base_url=(os.environ.get("SDK_STORAGE_BASE_URL") or os.environ["SDK_BASE_URL"]).rstrip("/"),
            storage_url=(os.environ.get("SDK_STORAGE_URL") or "").rstrip("/") or None,
            database_url=os.environ.get("SDK_DATABASE_URL") or None,
        )


@dataclass(frozen=True)
class Project:
    label: str
    id: str
    slug: str
    publishable: str
    secret: str


def strong_password() -> str:
    """At least 12 characters, on no common-password list, never an email."""
    return "Sdk-" + secrets.token_urlsafe(18)


def register_project(platform: Platform, label: str) -> Project:
    """A developer and their project through `POST /v1/register`, followed on provisioning until
    it is ready; its API keys are in the first ready answer, and only there."""
    suffix = secrets.token_hex(4)
    slug = f"sdk_{label}_{suffix}"
    with httpx.Client(timeout=30) as http:
        answer = http.post(
            f"{platform.platform_auth_url}/v1/register",
            json={
                "email": f"sdk-developer-{label}-{suffix}@example.com",
                "password": strong_password(),
                "project_name": f"SDK acceptance {label} {suffix}",
                "slug": slug,
            },
        )
        if answer.status_code != 202:
            raise RuntimeError(f"POST /v1/register answered {answer.status_code}: {answer.text}")
        project_id = answer.json()["project_id"]
        deadline = time.monotonic() + float(os.environ.get("SDK_PROJECT_TIMEOUT", "180"))
        state = "unknown"
        while time.monotonic() < deadline:
            status = http.get(
                f"{platform.provisioning_url}/v1/projects/{project_id}",
                headers={"X-Service-Token": platform.service_token},
            )
            if status.status_code != 200:
                raise RuntimeError(f"GET /v1/projects/{project_id} answered {status.status_code}: {status.text}")
            body = status.json()
            state = body["status"]
            if state == "ready":
                revealed = http.get(
                    f"{platform.provisioning_url}/v1/projects/{project_id}/api-keys",
                    headers={"X-Service-Token": platform.service_token},
                )
                keys = {key["kind"]: key.get("key") for key in revealed.json().get("keys", [])} if revealed.status_code == 200 else {}
                if not keys.get("publishable") or not keys.get("secret"):
                    raise RuntimeError(f"project {slug} is ready but its first key answer reveals no keys: {revealed.text}")
                return Project(label, project_id, body["slug"], keys["publishable"], keys["secret"])
            if state in ("failed", "deprovisioning", "deleted"):
                raise RuntimeError(f"project {slug} ended {state}: {body}")
            time.sleep(0.2)  # polling the project's state, not waiting for it
        raise RuntimeError(f"project {slug} is still {state} after the deadline")
