"""Small helpers the tests share: unique users, JWT reading, error expectations."""

from __future__ import annotations

import base64
import json
import secrets
import string
import subprocess
import time
import uuid

import pytest
from storage3.exceptions import StorageApiError
from supabase_auth.errors import AuthApiError

from platform_setup import strong_password

__all__ = [
    "new_email",
    "strong_password",
    "jwt_parts",
    "claims_of",
    "mutated_token",
    "with_claims",
    "expect_api_error",
    "expect_storage_error",
    "storage_headers",
    "now",
    "SESSION_KEYS",
    "USER_KEYS",
]

# The Session (token response) fields GoTrue sends and the User fields it always sends
# (docs/protocols/gotrue-reference.md §3).
SESSION_KEYS = {"access_token", "token_type", "expires_in", "expires_at", "refresh_token", "user"}
USER_KEYS = {
    "id", "aud", "role", "email", "phone", "app_metadata", "user_metadata", "identities",
    "created_at", "updated_at", "is_anonymous",
}


def new_email(tag: str = "user") -> str:
    """A fresh address per user, so tests never share one."""
    return f"sdk-{tag}-{uuid.uuid4().hex[:16]}@example.com"


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict, dict]:
    """(header, claims) of a JWT, unverified."""
    header, payload, _ = token.split(".")
    return json.loads(_b64url_decode(header)), json.loads(_b64url_decode(payload))


def claims_of(token: str) -> dict:
    return jwt_parts(token)[1]


def with_claims(token: str, **changes) -> str:
    """The same JWT with changed claims and the original signature (so no longer valid)."""
    header, payload, signature = token.split(".")
    claims = json.loads(_b64url_decode(payload))
    claims.update(changes)
    return ".".join([header, _b64url_encode(json.dumps(claims).encode()), signature])


def mutated_token(token: str) -> str:
    """A token of the same length and character classes as `token` that was never issued."""
    out = []
    for char in token:
        if char in string.digits:
            out.append(secrets.choice(string.digits))
        elif char in string.ascii_lowercase:
            out.append(secrets.choice(string.ascii_lowercase))
        elif char in string.ascii_uppercase:
            out.append(secrets.choice(string.ascii_uppercase))
        else:
            out.append(char)
    mutated = "".join(out)
    return mutated if mutated != token else mutated_token(token)


def expect_api_error(call, status: int, code: str | None, error_class=AuthApiError):
    """Runs `call`, which must raise `error_class` with this `.status` and `.code`; returns it."""
    with pytest.raises(error_class) as caught:
        call()
    error = caught.value
    assert (error.status, error.code) == (status, code), (
        f"expected {error_class.__name__} {status} {code}, got {type(error).__name__} "
        f"{getattr(error, 'status', None)} {getattr(error, 'code', None)}: {error.message}"
    )
    return error


def expect_storage_error(call, status: str, code: str) -> StorageApiError:
    """Runs `call`, which must raise storage3's `StorageApiError` with this `.status` and `.code`.

    storage3 reads them from the body: `.status` is its `statusCode` (a string, "404"), `.code`
    its `error` (the Storage API's legacy label: "not_found", "Duplicate", …), not its `code`
    (docs/protocols/storage-reference.md §1.2)."""
    with pytest.raises(StorageApiError) as caught:
        call()
    error = caught.value
    assert (error.status, error.code) == (status, code), (
        f"expected StorageApiError {status} {code}, got {error.status!r} {error.code!r}: {error.message}"
    )
    return error


def storage_headers(key: str | None, token: str | None = None, **extra: str) -> dict:
    """The headers supabase-py's storage client sends: `apikey`, and the user's token or the key
    itself as the bearer."""
    out = dict(extra)
    if key is not None:
        out["apikey"] = key
    bearer = token or key
    if bearer is not None:
        out["Authorization"] = f"Bearer {bearer}"
    return out


def now() -> int:
    return round(time.time())


def sql(platform, statement: str) -> str:
    """SQL on the services' scratch database, as an operator runs it (psql, as the superuser,
    or as the one role of a one-role set-up); several statements may be given at once."""
    assert platform.database_url, "sdk-tests.sh exports SDK_DATABASE_URL"
    result = subprocess.run(["psql", platform.database_url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-c", statement], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
