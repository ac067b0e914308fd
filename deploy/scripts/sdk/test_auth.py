"""supabase-py (supabase-auth 2.34.1) against the platform's GoTrue-compatible `/auth/v1`.

What each test expects is docs/protocols/gotrue-reference.md (the protocol as the client and the
GoTrue server read and write it), with the platform's documented departures from GoTrue (its §7);
the section is named where it matters. Every test makes its
own users, and asserts the state the server keeps (a refused refresh token, a user that is gone)
rather than only what one answer said.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import supabase
from supabase_auth import SyncGoTrueClient, SyncMemoryStorage
from supabase_auth._sync.gotrue_admin_api import SyncGoTrueAdminAPI
from supabase_auth.constants import EXPIRY_MARGIN, STORAGE_KEY
from supabase_auth.errors import AuthApiError, AuthInvalidJwtError, AuthWeakPasswordError
from supabase_auth.types import CreateOAuthClientParams, UpdateOAuthClientParams

from support import (
    SESSION_KEYS,
    USER_KEYS,
    claims_of,
    expect_api_error,
    jwt_parts,
    mutated_token,
    new_email,
    now,
    strong_password,
    with_claims,
)

API_VERSION = {"X-Supabase-Api-Version": "2024-01-01"}
WEAK_REASONS = {"length", "characters", "pwned"}
PHONE = "+15555550100"


def sign_up(client: SyncGoTrueClient, data: dict | None = None, tag: str = "user"):
    """A new user signed up through `client`: (email, password, AuthResponse with a session)."""
    email, password = new_email(tag), strong_password()
    credentials = {"email": email, "password": password}
    if data is not None:
        credentials["options"] = {"data": data}
    response = client.sign_up(credentials)
    assert response.session is not None, "sign_up must return a session (mailer_autoconfirm)"
    return email, password, response


def events_of(client: SyncGoTrueClient) -> list[str]:
    events: list[str] = []
    client.on_auth_state_change(lambda event, session: events.append(event))
    return events


def headers(key: str | None, *, bearer: str | None = None, version: bool = True) -> dict:
    out = dict(API_VERSION) if version else {}
    if key is not None:
        out["apikey"] = key
    if bearer is not None:
        out["Authorization"] = f"Bearer {bearer}"
    return out


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def all_users(admin) -> list:
    """Every user of the admin's project, page by page (however the server caps per_page)."""
    users = []
    for page in range(1, 201):
        batch = admin.list_users(page=page, per_page=50)
        if not batch:
            return users
        users.extend(batch)
    raise AssertionError("list_users still answers users after 200 pages of 50")


# --- Sign-up and sign-in -----------------------------------------------------------------------


def test_sign_up_returns_a_session_and_the_user(client_a):
    email, password = new_email("signup"), strong_password()
    response = client_a.sign_up({"email": email, "password": password, "options": {"data": {"name": "Ada"}}})
    session, user = response.session, response.user

    assert session is not None and user is not None
    assert session.user.id == user.id
    assert session.token_type.lower() == "bearer"
    assert session.access_token and session.refresh_token
    claims = claims_of(session.access_token)
    assert session.expires_in == claims["exp"] - claims["iat"] > 0
    assert session.expires_at == claims["exp"]

    # §3 User, and §4 signup with confirmations off
    uuid.UUID(user.id)
    assert (user.aud, user.role, user.email) == ("authenticated", "authenticated", email)
    assert user.app_metadata.get("provider") == "email"
    assert "email" in user.app_metadata.get("providers", [])
    assert user.user_metadata.get("name") == "Ada"
    assert user.email_confirmed_at is not None and user.confirmed_at is not None
    assert user.is_anonymous is False
    assert user.identities is not None and len(user.identities) == 1
    identity = user.identities[0]
    assert identity.provider == "email"
    assert identity.user_id == user.id and identity.id == user.id
    uuid.UUID(identity.identity_id)
    assert identity.identity_data.get("sub") == user.id
    assert identity.identity_data.get("email") == email

    # §3 access token claims, as the client reads them
    assert claims["sub"] == user.id
    assert claims["aud"] == "authenticated" and claims["role"] == "authenticated"
    assert claims["email"] == email
    assert claims["aal"] == "aal1" and claims["is_anonymous"] is False
    uuid.UUID(claims["session_id"])
    assert [entry["method"] for entry in claims["amr"]] == ["password"]
    assert isinstance(claims["amr"][0]["timestamp"], int)

    # the client keeps it
    assert client_a.get_session().access_token == session.access_token

    # §4 signup with confirmations off: signed in, and the address verified in the metadata
    assert user.last_sign_in_at is not None
    assert user.user_metadata.get("email_verified") is True


def test_sign_up_answer_on_the_wire(raw, project_a):
    """§3 Session and User: every field GoTrue always sends, `expires_at` included, and the JWT
    header the clients verify with (ES256 and a kid)."""
    email = new_email("wire")
    answer = raw.post("/signup", headers=headers(project_a.publishable),
                      json={"email": email, "password": strong_password(), "data": {}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert SESSION_KEYS <= body.keys(), f"missing {SESSION_KEYS - body.keys()}"
    assert body["token_type"] == "bearer"
    assert USER_KEYS <= body["user"].keys(), f"missing {USER_KEYS - body['user'].keys()}"
    assert body["user"]["email"] == email and body["user"]["phone"] == ""
    identity = body["user"]["identities"][0]
    assert {"id", "identity_id", "user_id", "identity_data", "provider", "created_at"} <= identity.keys()
    assert isinstance(identity["identity_data"], dict)
    header, claims = jwt_parts(body["access_token"])
    assert header["alg"] == "ES256" and header.get("kid") and header.get("typ") == "JWT"
    assert body["expires_at"] == claims["exp"]
    assert isinstance(body["expires_in"], int)
    assert {"email_confirmed_at", "last_sign_in_at"} <= body["user"].keys(), "§4 signup: confirmed and signed in"


def test_sign_up_lowercases_the_email(client_a):
    local = uuid.uuid4().hex[:12]
    response = client_a.sign_up({"email": f"SDK-Mixed-{local}@Example.COM", "password": strong_password()})
    assert response.user.email == f"sdk-mixed-{local}@example.com"


def test_sign_up_and_token_refuse_malformed_requests(raw, project_a):
    """§4 signup and token: GoTrue's validation answers, in its order."""
    pk = project_a.publishable
    cases = [
        ("/signup", None, {"email": new_email(), "password": ""}, 400, "validation_failed"),
        ("/signup", None, {"email": new_email(), "phone": PHONE, "password": strong_password()}, 400, "validation_failed"),
        ("/signup", None, {"email": "not-an-email", "password": strong_password()}, 400, "validation_failed"),
        ("/token", "password", {"email": new_email(), "phone": PHONE, "password": strong_password()}, 400, "validation_failed"),
        ("/token", "password", {"password": strong_password()}, 400, "validation_failed"),
        ("/token", "refresh_token", {"refresh_token": "short"}, 400, "validation_failed"),
        ("/token", "magic_words", {}, 400, "invalid_credentials"),
    ]
    for path, grant, body, status, code in cases:
        answer = raw.post(path, params={"grant_type": grant} if grant else None, headers=headers(pk), json=body)
        assert (answer.status_code, answer.json().get("code")) == (status, code), (path, grant, body, answer.text)
    malformed = raw.post("/signup", headers={**headers(pk), "Content-Type": "application/json"}, content=b"{not json")
    assert (malformed.status_code, malformed.json().get("code")) == (400, "bad_json"), malformed.text


def test_sign_in_with_password_opens_a_new_session(make_client, project_a):
    email, password, signed_up = sign_up(make_client(project_a.publishable))
    client = make_client(project_a.publishable)

    response = client.sign_in_with_password({"email": email, "password": password})

    assert response.session is not None and response.user.id == signed_up.user.id
    first, second = claims_of(signed_up.session.access_token), claims_of(response.session.access_token)
    assert second["session_id"] != first["session_id"]
    assert response.user.last_sign_in_at is not None
    assert response.user.last_sign_in_at >= response.user.created_at
    assert client.get_session().access_token == response.session.access_token
    # both sessions are live
    assert client.get_user(signed_up.session.access_token).user.id == signed_up.user.id
    assert client.get_user().user.id == signed_up.user.id


def test_sign_in_ignores_the_case_of_the_email(make_client, project_a):
    email, password, signed_up = sign_up(make_client(project_a.publishable))
    response = make_client(project_a.publishable).sign_in_with_password({"email": email.upper(), "password": password})
    assert response.user.id == signed_up.user.id


# --- Refresh -----------------------------------------------------------------------------------


def test_refresh_session_rotates_and_refuses_a_reused_token(client_a):
    """§4 refresh: every use rotates; a used token presented again outside the reuse window
    (REFRESH_REUSE_GRACE_SECONDS=0 in sdk-tests.sh) is `refresh_token_already_used` and ends the
    session (§7: the platform's one rotation rule, without GoTrue's parent-of-the-active-token
    case)."""
    _, _, signed_up = sign_up(client_a)
    token0 = signed_up.session.refresh_token
    session_id = claims_of(signed_up.session.access_token)["session_id"]

    first = client_a.refresh_session()  # the stored session's token
    token1 = first.session.refresh_token
    assert token1 != token0
    assert claims_of(first.session.access_token)["session_id"] == session_id
    assert client_a.get_session().refresh_token == token1
    assert client_a.get_user(first.session.access_token).user.id == signed_up.user.id

    second = client_a.refresh_session(token1)  # explicit
    token2 = second.session.refresh_token
    assert token2 not in (token0, token1)
    assert claims_of(second.session.access_token)["session_id"] == session_id

    expect_api_error(lambda: client_a.refresh_session(token0), 400, "refresh_token_already_used")
    with pytest.raises(AuthApiError) as caught:
        client_a.refresh_session(token2)
    assert caught.value.status == 400
    assert caught.value.code in {"refresh_token_already_used", "refresh_token_not_found"}


def test_refresh_with_an_unknown_token_is_refused(client_a):
    _, _, signed_up = sign_up(client_a)
    never_issued = mutated_token(signed_up.session.refresh_token)
    expect_api_error(lambda: client_a.refresh_session(never_issued), 400, "refresh_token_not_found")
    # the real one still works
    assert client_a.refresh_session(signed_up.session.refresh_token).session is not None


def test_refresh_ignores_a_stale_user_token_as_bearer(make_client, project_a, raw):
    """§1: public routes ignore Authorization; supabase-py sends the user's (maybe dead) access
    token there after a sign-in."""
    client = make_client(project_a.publishable)
    _, _, gone = sign_up(client)
    client.sign_out()  # gone's access token now names a session that no longer exists
    _, _, alive = sign_up(make_client(project_a.publishable))

    answer = raw.post("/token", params={"grant_type": "refresh_token"},
                      headers=headers(project_a.publishable, bearer=gone.session.access_token),
                      json={"refresh_token": alive.session.refresh_token})
    assert answer.status_code == 200, answer.text
    assert answer.json()["refresh_token"] != alive.session.refresh_token


def test_get_session_refreshes_a_session_inside_the_expiry_margin(make_client, project_a):
    """Automatic refresh: get_session() refreshes a stored session whose expires_at is within
    EXPIRY_MARGIN; the stored session is made to look that old instead of waiting."""
    storage = SyncMemoryStorage()
    client = make_client(project_a.publishable, storage=storage)
    _, _, signed_up = sign_up(client)
    events = events_of(client)
    stored = json.loads(storage.get_item(STORAGE_KEY))
    stored["expires_at"] = now() + EXPIRY_MARGIN - 1
    storage.set_item(STORAGE_KEY, json.dumps(stored))

    session = client.get_session()

    assert session.refresh_token != signed_up.session.refresh_token
    assert session.expires_at > now() + EXPIRY_MARGIN
    assert events == ["TOKEN_REFRESHED"]
    assert json.loads(storage.get_item(STORAGE_KEY))["refresh_token"] == session.refresh_token
    assert client.get_user().user.id == signed_up.user.id
    assert events == ["TOKEN_REFRESHED"], "a fresh session is not refreshed again"


def test_a_client_started_on_a_stored_session_about_to_expire_refreshes_it(make_client, project_a):
    """Automatic refresh at start: initialize() recovers the stored session and refreshes it."""
    storage = SyncMemoryStorage()
    _, _, signed_up = sign_up(make_client(project_a.publishable, storage=storage))
    stored = json.loads(storage.get_item(STORAGE_KEY))
    stored["expires_at"] = now() + 1
    storage.set_item(STORAGE_KEY, json.dumps(stored))

    restarted = make_client(project_a.publishable, storage=storage)
    events = events_of(restarted)
    restarted.initialize()

    assert events == ["TOKEN_REFRESHED"]
    session = restarted.get_session()
    assert session.refresh_token != signed_up.session.refresh_token
    assert restarted.get_user().user.id == signed_up.user.id


# --- The user ----------------------------------------------------------------------------------


def test_get_user(client_a):
    email, _, signed_up = sign_up(client_a)
    current = client_a.get_user().user
    explicit = client_a.get_user(signed_up.session.access_token).user
    assert current.id == explicit.id == signed_up.user.id
    assert current.email == email
    assert [identity.provider for identity in client_a.get_user_identities().identities] == ["email"]


def test_get_user_refuses_what_is_not_a_valid_user_token(client_a, project_a, raw):
    """§3 server-side verification: a forged signature or an API key as the user token is
    403 bad_jwt; no bearer at all is 401 no_authorization."""
    _, _, signed_up = sign_up(client_a)
    forged = with_claims(signed_up.session.access_token, sub=str(uuid.uuid4()))
    expect_api_error(lambda: client_a.get_user(forged), 403, "bad_jwt")
    expect_api_error(lambda: client_a.get_user(project_a.publishable), 403, "bad_jwt")
    anonymous = raw.get("/user", headers=headers(project_a.publishable))
    assert (anonymous.status_code, anonymous.json().get("code")) == (401, "no_authorization")


def test_update_user_merges_metadata(client_a):
    _, _, signed_up = sign_up(client_a, data={"plan": "free", "theme": "dark"})
    events = events_of(client_a)

    updated = client_a.update_user({"data": {"theme": "light", "locale": "fr"}}).user

    assert (updated.user_metadata["plan"], updated.user_metadata["theme"], updated.user_metadata["locale"]) == (
        "free", "light", "fr")
    assert client_a.get_user().user.user_metadata == updated.user_metadata
    assert events == ["USER_UPDATED"]
    # §3: the access token is not reissued, but a refresh re-reads the user into the claims
    refreshed = claims_of(client_a.refresh_session().session.access_token)
    assert refreshed["user_metadata"].get("theme") == "light"
    assert [entry["method"] for entry in refreshed["amr"]] == ["password"]

    # §4 PUT /user: a null value deletes the key
    removed = client_a.update_user({"data": {"locale": None}}).user
    assert "locale" not in removed.user_metadata and removed.user_metadata["theme"] == "light"
    assert client_a.get_user().user.user_metadata == removed.user_metadata
    assert client_a.get_session().user.user_metadata == removed.user_metadata
    assert events == ["USER_UPDATED", "TOKEN_REFRESHED", "USER_UPDATED"]


def test_update_user_password_then_sign_in_with_the_new_one(make_client, project_a):
    client = make_client(project_a.publishable)
    email, old_password, signed_up = sign_up(client)
    other = make_client(project_a.publishable).sign_in_with_password({"email": email, "password": old_password}).session
    new_password = strong_password()

    client.update_user({"password": new_password})

    expect_api_error(lambda: make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": old_password}), 400, "invalid_credentials")
    assert make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": new_password}).user.id == signed_up.user.id
    # §4: the user's other sessions end; this one goes on
    expect_api_error(lambda: client.refresh_session(other.refresh_token), 400, "refresh_token_not_found")
    expect_api_error(lambda: client.get_user(other.access_token), 403, "session_not_found")
    assert client.get_user().user.id == signed_up.user.id
    assert client.refresh_session().session is not None


def test_update_user_refuses_the_same_and_a_weak_password(client_a):
    _, password, _ = sign_up(client_a)
    expect_api_error(lambda: client_a.update_user({"password": password}), 422, "same_password")
    error = expect_api_error(lambda: client_a.update_user({"password": "short"}), 422, "weak_password",
                             AuthWeakPasswordError)
    assert "length" in error.reasons


def test_update_user_cannot_set_app_metadata(client_a):
    sign_up(client_a)
    expect_api_error(lambda: client_a.update_user({"app_metadata": {"role": "admin"}}), 403, "not_admin")
    assert "role" not in client_a.get_user().user.app_metadata


def test_update_user_phone_is_not_enabled(client_a):
    """§4 PUT /user, phone change: GoTrue would send an SMS; the platform has no phone provider
    (the reference suggests 400 phone_provider_disabled), and the phone stays unset."""
    sign_up(client_a)
    with pytest.raises(AuthApiError) as caught:
        client_a.update_user({"phone": PHONE})
    assert (caught.value.status, caught.value.code) in {(400, "phone_provider_disabled"), (422, "feature_disabled")}, (
        caught.value.status, caught.value.code)
    assert not client_a.get_user().user.phone


def test_update_user_email_is_applied_or_refused_as_not_enabled(make_client, project_a):
    """§4 PUT /user, email change: without a mailer the platform either applies it at once or
    answers 422 feature_disabled (the reference lets it pick; either way the state must say so)."""
    client = make_client(project_a.publishable)
    email, password, _ = sign_up(client)
    new = new_email("changed")
    try:
        updated = client.update_user({"email": new}).user
    except AuthApiError as error:
        assert (error.status, error.code) == (422, "feature_disabled")
        assert client.get_user().user.email == email
        return
    assert updated.email == new
    assert client.get_user().user.email == new
    assert make_client(project_a.publishable).sign_in_with_password({"email": new, "password": password}).session
    expect_api_error(lambda: make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": password}), 400, "invalid_credentials")


# --- Sign-out ----------------------------------------------------------------------------------


def _two_sessions(make_client, project):
    first = make_client(project.publishable)
    email, password, signed_up = sign_up(first)
    second = make_client(project.publishable)
    other = second.sign_in_with_password({"email": email, "password": password}).session
    return first, signed_up.session, second, other


def test_sign_out_global_ends_every_session_of_the_user(make_client, project_a):
    first, mine, second, other = _two_sessions(make_client, project_a)

    first.sign_out()

    assert first.get_session() is None
    for session in (mine, other):
        expect_api_error(lambda: first.refresh_session(session.refresh_token), 400, "refresh_token_not_found")
        expect_api_error(lambda: first.get_user(session.access_token), 403, "session_not_found")


def test_sign_out_local_ends_this_session_only(make_client, project_a):
    first, mine, second, other = _two_sessions(make_client, project_a)

    first.sign_out({"scope": "local"})

    assert first.get_session() is None
    expect_api_error(lambda: first.refresh_session(mine.refresh_token), 400, "refresh_token_not_found")
    expect_api_error(lambda: first.get_user(mine.access_token), 403, "session_not_found")
    assert second.get_user().user.id == other.user.id
    assert second.refresh_session().session is not None


def test_sign_out_others_keeps_this_session_only(make_client, project_a):
    first, mine, second, other = _two_sessions(make_client, project_a)

    first.sign_out({"scope": "others"})

    assert first.get_session().access_token == mine.access_token
    assert first.get_user().user.id == mine.user.id
    expect_api_error(lambda: first.refresh_session(other.refresh_token), 400, "refresh_token_not_found")
    expect_api_error(lambda: first.get_user(other.access_token), 403, "session_not_found")
    assert first.refresh_session().session is not None


def test_logout_on_the_wire(make_client, project_a, raw):
    """§4 POST /logout: 204 and no body; an unknown scope is 400; no bearer is 401."""
    _, _, signed_up = sign_up(make_client(project_a.publishable))
    token = signed_up.session.access_token
    pk = project_a.publishable

    bogus = raw.post("/logout", params={"scope": "everything"}, headers=headers(pk, bearer=token))
    assert (bogus.status_code, bogus.json().get("code")) == (400, "validation_failed")
    anonymous = raw.post("/logout", params={"scope": "global"}, headers=headers(pk))
    assert (anonymous.status_code, anonymous.json().get("code")) == (401, "no_authorization")

    done = raw.post("/logout", params={"scope": "global"}, headers=headers(pk, bearer=token))
    assert done.status_code == 204 and done.content == b""
    user = raw.get("/user", headers=headers(pk, bearer=token))
    assert (user.status_code, user.json().get("code")) == (403, "session_not_found")


# --- Tokens: claims, JWKS, adopting a session ----------------------------------------------------


def test_get_claims_verifies_against_the_projects_jwks(client_a):
    _, _, signed_up = sign_up(client_a)

    result = client_a.get_claims()

    assert result["claims"]["sub"] == signed_up.user.id
    assert result["headers"]["alg"] == "ES256"
    kid = result["headers"]["kid"]
    # verified locally with the JWKS (ES256 + kid), not through GET /user
    assert client_a._jwks_cached_at is not None
    assert kid in [key.get("kid") for key in client_a._jwks["keys"]]

    forged = with_claims(signed_up.session.access_token, email="someone.else@example.com")
    with pytest.raises(AuthInvalidJwtError, match="Invalid JWT signature"):
        client_a.get_claims(forged)


def test_jwks_on_the_wire(client_a, raw, project_a):
    """§4 GET /.well-known/jwks.json: public EC P-256 keys only, with kid, alg, use and key_ops."""
    _, _, signed_up = sign_up(client_a)
    kid = jwt_parts(signed_up.session.access_token)[0]["kid"]

    answer = raw.get("/.well-known/jwks.json", headers=headers(project_a.publishable))

    assert answer.status_code == 200
    assert "max-age" in answer.headers.get("cache-control", "")
    keys = answer.json()["keys"]
    assert kid in [key["kid"] for key in keys]
    for key in keys:
        assert (key["kty"], key["crv"], key["alg"], key.get("use")) == ("EC", "P-256", "ES256", "sig")
        assert "verify" in key.get("key_ops", ["verify"])
        assert "d" not in key, "a private key is published"


def test_set_session_adopts_a_session_and_refreshes_without_an_access_token(make_client, project_a):
    _, _, signed_up = sign_up(make_client(project_a.publishable))
    adopter = make_client(project_a.publishable)
    events = events_of(adopter)

    adopted = adopter.set_session(signed_up.session.access_token, signed_up.session.refresh_token)

    assert adopted.user.id == signed_up.user.id
    assert adopter.get_session().access_token == signed_up.session.access_token
    assert events == ["SIGNED_IN"]

    refresher = make_client(project_a.publishable)
    events = events_of(refresher)
    refreshed = refresher.set_session("", signed_up.session.refresh_token)
    assert refreshed.session.refresh_token != signed_up.session.refresh_token
    assert refresher.get_user().user.id == signed_up.user.id
    assert events == ["TOKEN_REFRESHED"]


# --- Admin, with the secret key ----------------------------------------------------------------


def _create(admin, **attributes):
    email, password = new_email("admin"), strong_password()
    user = admin.create_user({"email": email, "password": password, "email_confirm": True, **attributes}).user
    return email, password, user


def test_admin_list_users_by_page(admin_a):
    made = [_create(admin_a)[2] for _ in range(3)]
    newest_first = [user.id for user in reversed(made)]

    page1 = admin_a.list_users(page=1, per_page=2)
    page2 = admin_a.list_users(page=2, per_page=2)
    everyone = admin_a.list_users()

    assert [user.id for user in page1] == newest_first[:2]
    assert page2[0].id == newest_first[2]
    assert not {user.id for user in page1} & {user.id for user in page2}
    assert set(newest_first) <= {user.id for user in everyone}


def test_admin_list_users_on_the_wire(admin_a, raw, project_a):
    """§4 GET /admin/users: {users, aud}, X-Total-Count, Link with page first; empty page
    parameters are the defaults."""
    _create(admin_a)
    _create(admin_a)
    sk = project_a.secret

    answer = raw.get("/admin/users", params={"page": 1, "per_page": 1}, headers=headers(sk, bearer=sk))

    assert answer.status_code == 200
    body = answer.json()
    assert body["aud"] == "authenticated" and len(body["users"]) == 1
    total = int(answer.headers["x-total-count"])
    assert total == len(all_users(admin_a))
    link = answer.headers["link"]
    assert re.search(r'<[^>]*/admin/users\?page=2&per_page=1>; rel="next"', link), link
    assert re.search(rf'<[^>]*/admin/users\?page={total}&per_page=1>; rel="last"', link), link

    empty = raw.get("/admin/users?page=&per_page=", headers=headers(sk, bearer=sk))
    assert empty.status_code == 200 and "users" in empty.json()


def test_admin_create_user(admin_a, make_client, project_a):
    email, password, user = _create(admin_a, user_metadata={"name": "Grace"}, app_metadata={"plan": "pro"})

    assert user.email == email and user.email_confirmed_at is not None
    assert user.user_metadata.get("name") == "Grace"
    assert user.app_metadata.get("plan") == "pro" and user.app_metadata.get("provider") == "email"
    assert "email" in user.app_metadata.get("providers", [])
    assert user.identities and user.identities[0].identity_data.get("sub") == user.id
    session = make_client(project_a.publishable).sign_in_with_password({"email": email, "password": password}).session
    assert session.user.id == user.id
    assert claims_of(session.access_token)["app_metadata"].get("plan") == "pro"

    expect_api_error(lambda: admin_a.create_user({"email": email, "password": strong_password()}), 422, "email_exists")
    expect_api_error(lambda: admin_a.create_user({"password": strong_password()}), 400, "validation_failed")


def test_admin_create_user_departures(admin_a):
    """§7: an admin-set password meets the policy; password_hash import and a custom id are not
    enabled. None of them leaves a user behind."""
    email = new_email("departure")
    weak = expect_api_error(lambda: admin_a.create_user({"email": email, "password": "short"}), 422, "weak_password",
                            AuthWeakPasswordError)
    assert "length" in weak.reasons
    bcrypt = "$2a$10$" + "a" * 53
    expect_api_error(lambda: admin_a.create_user({"email": email, "password_hash": bcrypt}), 422, "feature_disabled")
    expect_api_error(lambda: admin_a.create_user({"email": email, "password": strong_password(), "id": str(uuid.uuid4())}),
                     422, "feature_disabled")
    assert email not in {listed.email for listed in all_users(admin_a)}


def test_admin_get_user_by_id(admin_a):
    email, _, user = _create(admin_a)
    found = admin_a.get_user_by_id(user.id).user
    assert (found.id, found.email) == (user.id, email)
    expect_api_error(lambda: admin_a.get_user_by_id(str(uuid.uuid4())), 404, "user_not_found")


def test_admin_update_user_metadata(admin_a, make_client, project_a):
    email, password, user = _create(admin_a, user_metadata={"a": 1, "b": 2}, app_metadata={"plan": "free"})

    updated = admin_a.update_user_by_id(user.id, {"user_metadata": {"b": 3}, "app_metadata": {"plan": "pro", "tier": 2}}).user

    assert (updated.user_metadata.get("a"), updated.user_metadata.get("b")) == (1, 3)
    assert (updated.app_metadata.get("plan"), updated.app_metadata.get("tier")) == ("pro", 2)
    assert updated.app_metadata.get("provider") == "email"
    stored = admin_a.get_user_by_id(user.id).user
    assert (stored.user_metadata, stored.app_metadata) == (updated.user_metadata, updated.app_metadata)
    session = make_client(project_a.publishable).sign_in_with_password({"email": email, "password": password}).session
    assert claims_of(session.access_token)["user_metadata"].get("b") == 3


def test_admin_ban_and_unban(admin_a, make_client, project_a):
    email, password, user = _create(admin_a)
    client = make_client(project_a.publishable)
    session = client.sign_in_with_password({"email": email, "password": password}).session

    banned = admin_a.update_user_by_id(user.id, {"ban_duration": "24h"}).user

    assert banned.banned_until is not None
    assert parse_time(banned.banned_until) > datetime.now(timezone.utc) + timedelta(hours=23)
    assert admin_a.get_user_by_id(user.id).user.banned_until is not None
    expect_api_error(lambda: make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": password}), 400, "user_banned")
    # §7: the password is checked before the ban, so a stranger learns nothing from it
    expect_api_error(lambda: make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": strong_password()}), 400, "invalid_credentials")
    # §7: a ban ends the user's sessions (GoTrue keeps them and refuses them while banned)
    expect_api_error(lambda: client.refresh_session(session.refresh_token), 400, "refresh_token_not_found")
    expect_api_error(lambda: client.get_user(session.access_token), 403, "session_not_found")

    unbanned = admin_a.update_user_by_id(user.id, {"ban_duration": "none"}).user

    assert unbanned.banned_until is None
    assert admin_a.get_user_by_id(user.id).user.banned_until is None
    assert make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": password}).user.id == user.id
    # the sessions the ban ended stay ended
    expect_api_error(lambda: client.refresh_session(session.refresh_token), 400, "refresh_token_not_found")

    expect_api_error(lambda: admin_a.update_user_by_id(user.id, {"ban_duration": "forever"}), 400, "validation_failed")


def test_admin_update_password_ends_the_users_sessions(admin_a, make_client, project_a):
    email, old_password, user = _create(admin_a)
    client = make_client(project_a.publishable)
    session = client.sign_in_with_password({"email": email, "password": old_password}).session
    new_password = strong_password()

    admin_a.update_user_by_id(user.id, {"password": new_password})

    expect_api_error(lambda: make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": old_password}), 400, "invalid_credentials")
    assert make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": new_password}).user.id == user.id
    expect_api_error(lambda: client.refresh_session(session.refresh_token), 400, "refresh_token_not_found")
    error = expect_api_error(lambda: admin_a.update_user_by_id(user.id, {"password": "short"}), 422, "weak_password",
                             AuthWeakPasswordError)
    assert "length" in error.reasons


def test_admin_delete_user(admin_a, make_client, project_a):
    email, password, user = _create(admin_a)
    client = make_client(project_a.publishable)
    session = client.sign_in_with_password({"email": email, "password": password}).session

    admin_a.delete_user(user.id)

    expect_api_error(lambda: admin_a.get_user_by_id(user.id), 404, "user_not_found")
    assert user.id not in {listed.id for listed in all_users(admin_a)}
    expect_api_error(lambda: make_client(project_a.publishable).sign_in_with_password(
        {"email": email, "password": password}), 400, "invalid_credentials")
    expect_api_error(lambda: client.refresh_session(session.refresh_token), 400, "refresh_token_not_found")
    with pytest.raises(AuthApiError) as caught:
        client.get_user(session.access_token)
    assert (caught.value.status, caught.value.code) in {(403, "user_not_found"), (403, "session_not_found")}


def test_admin_soft_delete_deletes(admin_a):
    """§7: the platform keeps no deleted users, so should_soft_delete=True deletes as well."""
    _, _, user = _create(admin_a)
    admin_a.delete_user(user.id, should_soft_delete=True)
    expect_api_error(lambda: admin_a.get_user_by_id(user.id), 404, "user_not_found")


def test_admin_calls_with_the_publishable_key_are_not_admin(make_client, project_a, admin_a, platform):
    _, _, victim = _create(admin_a)
    not_admin = make_client(project_a.publishable).admin
    intruder_email = new_email("intruder")
    calls = [
        lambda: not_admin.list_users(),
        lambda: not_admin.create_user({"email": intruder_email, "password": strong_password()}),
        lambda: not_admin.get_user_by_id(victim.id),
        lambda: not_admin.update_user_by_id(victim.id, {"user_metadata": {"owned": True}}),
        lambda: not_admin.delete_user(victim.id),
    ]
    for call in calls:
        expect_api_error(call, 403, "not_admin")

    # nor with a user's token as the bearer
    _, _, user = sign_up(make_client(project_a.publishable))
    with_user_token = SyncGoTrueAdminAPI(
        url=platform.auth_v1,
        headers={"apikey": project_a.publishable, "Authorization": f"Bearer {user.session.access_token}"},
    )
    try:
        expect_api_error(lambda: with_user_token.list_users(), 403, "not_admin")
    finally:
        with_user_token.close()

    stored = admin_a.get_user_by_id(victim.id).user
    assert "owned" not in stored.user_metadata
    assert intruder_email not in {listed.email for listed in all_users(admin_a)}


# --- Errors as the client surfaces them ---------------------------------------------------------


def test_wrong_password_and_unknown_email_are_invalid_credentials(make_client, project_a):
    email, _, _ = sign_up(make_client(project_a.publishable))
    client = make_client(project_a.publishable)
    expect_api_error(lambda: client.sign_in_with_password({"email": email, "password": strong_password()}),
                     400, "invalid_credentials")
    expect_api_error(lambda: client.sign_in_with_password({"email": new_email("nobody"), "password": strong_password()}),
                     400, "invalid_credentials")
    assert client.get_session() is None


def test_sign_up_with_a_taken_email(make_client, project_a):
    email, _, _ = sign_up(make_client(project_a.publishable))
    client = make_client(project_a.publishable)
    expect_api_error(lambda: client.sign_up({"email": email, "password": strong_password()}), 422, "user_already_exists")
    expect_api_error(lambda: client.sign_up({"email": email.upper(), "password": strong_password()}),
                     422, "user_already_exists")


def test_sign_up_with_a_weak_password(client_a):
    email = new_email("weak")
    short = expect_api_error(lambda: client_a.sign_up({"email": email, "password": "short"}), 422, "weak_password",
                             AuthWeakPasswordError)
    assert "length" in short.reasons and set(short.reasons) <= WEAK_REASONS
    common = expect_api_error(lambda: client_a.sign_up({"email": email, "password": "q1w2e3r4t5y6"}), 422,
                              "weak_password", AuthWeakPasswordError)
    assert common.reasons and set(common.reasons) <= WEAK_REASONS
    # nothing was created: the address is still free
    assert client_a.sign_up({"email": email, "password": strong_password()}).session is not None


def test_error_bodies_carry_the_api_version(raw, project_a):
    """§2: with X-Supabase-Api-Version 2024-01-01 the error is {code, message} and the header is
    echoed (without it the client loses the code); without it, the legacy {code, error_code, msg}."""
    body = {"email": new_email("nobody"), "password": strong_password()}
    answer = raw.post("/token", params={"grant_type": "password"}, headers=headers(project_a.publishable), json=body)
    assert answer.status_code == 400
    assert answer.headers.get("x-supabase-api-version") == "2024-01-01"
    assert answer.headers.get("content-type", "").startswith("application/json")
    assert answer.json()["code"] == "invalid_credentials" and answer.json()["message"]
    assert answer.headers.get("x-sb-error-code") == "invalid_credentials"

    legacy = raw.post("/token", params={"grant_type": "password"}, headers=headers(project_a.publishable, version=False),
                      json=body)
    assert legacy.status_code == 400
    assert "x-supabase-api-version" not in legacy.headers
    assert legacy.json()["code"] == 400 and legacy.json()["error_code"] == "invalid_credentials"
    assert legacy.json()["msg"]


def test_a_missing_or_unknown_api_key_is_401_with_a_message(raw, platform, project_a, make_client):
    """§1: Kong's answers, which the clients read the message of."""
    cases = [(None, "No API key found in request")] + [
        (key, "Invalid API key") for key in ("pk_" + uuid.uuid4().hex, "sb_publishable_" + uuid.uuid4().hex, "not a key")]
    for key, message in cases:
        for method, path in (("GET", "/settings"), ("POST", "/token?grant_type=password"), ("GET", "/user")):
            answer = raw.request(method, path, headers=headers(key), json={} if method == "POST" else None)
            assert answer.status_code == 401, (key, path, answer.status_code, answer.text)
            assert answer.json().get("message") == message, (key, path, answer.text)
    # as the client sees it (Kong's shape carries no code, so only the status is certain)
    unknown = make_client("pk_" + uuid.uuid4().hex)
    with pytest.raises(AuthApiError) as caught:
        unknown.sign_in_with_password({"email": new_email(), "password": strong_password()})
    assert caught.value.status == 401 and caught.value.message


def test_cors_lets_browser_clients_read_the_error_code(raw, project_a, admin_a):
    """§1 CORS (supabase-js in a browser): the preflight allows the clients' headers and
    methods, and answers expose X-Supabase-Api-Version (without it the error code is lost),
    X-Total-Count and Link."""
    origin = {"Origin": "https://app.example.com"}
    preflight = raw.options("/token", params={"grant_type": "password"}, headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "apikey, authorization, content-type, x-client-info, x-supabase-api-version"})
    assert 200 <= preflight.status_code < 300, preflight.text
    assert preflight.headers.get("access-control-allow-origin") in ("*", origin["Origin"])
    allowed = {name.strip().lower() for name in preflight.headers.get("access-control-allow-headers", "").split(",")}
    assert {"apikey", "authorization", "content-type", "x-client-info", "x-supabase-api-version"} <= allowed
    methods = {name.strip().upper() for name in preflight.headers.get("access-control-allow-methods", "").split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods

    refused = raw.post("/token", params={"grant_type": "password"}, headers={**headers(project_a.publishable), **origin},
                       json={"email": new_email("nobody"), "password": strong_password()})
    assert refused.status_code == 400
    assert refused.headers.get("access-control-allow-origin") in ("*", origin["Origin"])
    exposed = {name.strip().lower() for name in refused.headers.get("access-control-expose-headers", "").split(",")}
    assert {"x-supabase-api-version", "x-total-count", "link"} <= exposed


def test_settings(raw, project_a):
    answer = raw.get("/settings", headers=headers(project_a.publishable))
    assert answer.status_code == 200
    body = answer.json()
    assert body["external"]["email"] is True
    assert body["external"]["phone"] is False and body["external"]["anonymous_users"] is False
    assert body["disable_signup"] is False and body["mailer_autoconfirm"] is True


# --- What the platform does not implement: the documented "disabled" answers (§5) -----------------

NOT_ENABLED = [
    ("sign_in_with_otp-email", False, lambda c, u: c.sign_in_with_otp({"email": new_email("otp")}), 422, "email_provider_disabled"),
    ("sign_in_with_otp-phone", False, lambda c, u: c.sign_in_with_otp({"phone": PHONE}), 400, "phone_provider_disabled"),
    ("sign_up-phone", False, lambda c, u: c.sign_up({"phone": PHONE, "password": strong_password()}), 400, "phone_provider_disabled"),
    ("sign_in_with_password-phone", False,
     lambda c, u: c.sign_in_with_password({"phone": PHONE, "password": strong_password()}), 422, "phone_provider_disabled"),
    ("sign_in_anonymously", False, lambda c, u: c.sign_in_anonymously(), 422, "anonymous_provider_disabled"),
    ("verify_otp", False, lambda c, u: c.verify_otp({"type": "email", "email": new_email(), "token": "123456"}), 403, "otp_expired"),
    ("resend-signup", False, lambda c, u: c.resend({"type": "signup", "email": new_email()}), 422, "feature_disabled"),
    # §7: /resend is 422 feature_disabled whatever the type (GoTrue: 400 phone_provider_disabled for sms)
    ("resend-sms", False, lambda c, u: c.resend({"type": "sms", "phone": PHONE}), 422, "feature_disabled"),
    ("reset_password_for_email", False, lambda c, u: c.reset_password_for_email(new_email()), 422, "feature_disabled"),
    ("reset_password_email", False, lambda c, u: c.reset_password_email(new_email()), 422, "feature_disabled"),
    ("sign_in_with_id_token", False,
     lambda c, u: c.sign_in_with_id_token({"provider": "google", "token": "header.payload.signature"}), 400, "provider_disabled"),
    ("exchange_code_for_session", False,
     lambda c, u: c.exchange_code_for_session({"auth_code": str(uuid.uuid4()), "code_verifier": "v" * 43}), 404, "flow_state_not_found"),
    ("sign_in_with_sso", False, lambda c, u: c.sign_in_with_sso({"domain": "example.com"}), 404, "saml_provider_disabled"),
    ("reauthenticate", True, lambda c, u: c.reauthenticate(), 422, "feature_disabled"),
    ("link_identity", True, lambda c, u: c.link_identity({"provider": "github"}), 404, "manual_linking_disabled"),
    ("unlink_identity", True, lambda c, u: c.unlink_identity(u.identities[0]), 404, "manual_linking_disabled"),
    ("mfa.enroll-totp", True, lambda c, u: c.mfa.enroll({"factor_type": "totp"}), 422, "mfa_totp_enroll_not_enabled"),
    ("mfa.enroll-phone", True, lambda c, u: c.mfa.enroll({"factor_type": "phone", "phone": PHONE}), 422, "mfa_phone_enroll_not_enabled"),
    ("mfa.challenge", True, lambda c, u: c.mfa.challenge({"factor_id": str(uuid.uuid4())}), 404, "mfa_factor_not_found"),
    ("mfa.verify", True,
     lambda c, u: c.mfa.verify({"factor_id": str(uuid.uuid4()), "challenge_id": str(uuid.uuid4()), "code": "123456"}),
     404, "mfa_factor_not_found"),
    ("mfa.unenroll", True, lambda c, u: c.mfa.unenroll({"factor_id": str(uuid.uuid4())}), 404, "mfa_factor_not_found"),
    ("mfa.challenge_and_verify", True,
     lambda c, u: c.mfa.challenge_and_verify({"factor_id": str(uuid.uuid4()), "code": "123456"}), 404, "mfa_factor_not_found"),
]


@pytest.mark.parametrize("needs_session,call,status,code", [case[1:] for case in NOT_ENABLED],
                         ids=[case[0] for case in NOT_ENABLED])
def test_not_enabled_feature_answers_its_disabled_error(client_a, needs_session, call, status, code):
    user = sign_up(client_a)[2].user if needs_session else None
    expect_api_error(lambda: call(client_a, user), status, code)
    if needs_session:
        assert client_a.get_user().user.id == user.id, "the session survives a disabled feature"


ADMIN_NOT_ENABLED = [
    ("invite_user_by_email", lambda a, u: a.invite_user_by_email(new_email("invite")), 422, "feature_disabled"),
    ("generate_link", lambda a, u: a.generate_link({"type": "magiclink", "email": u.email}), 422, "feature_disabled"),
    ("mfa.delete_factor", lambda a, u: a.mfa.delete_factor({"user_id": u.id, "id": str(uuid.uuid4())}), 404, "mfa_factor_not_found"),
    ("oauth.list_clients", lambda a, u: a.oauth.list_clients(), 404, "feature_disabled"),
    ("oauth.create_client", lambda a, u: a.oauth.create_client(
        CreateOAuthClientParams(client_name="sdk", redirect_uris=["https://app.example.com/callback"])), 404, "feature_disabled"),
    ("oauth.get_client", lambda a, u: a.oauth.get_client(str(uuid.uuid4())), 404, "feature_disabled"),
    ("oauth.update_client", lambda a, u: a.oauth.update_client(str(uuid.uuid4()), UpdateOAuthClientParams(client_name="x")),
     404, "feature_disabled"),
    ("oauth.delete_client", lambda a, u: a.oauth.delete_client(str(uuid.uuid4())), 404, "feature_disabled"),
    ("oauth.regenerate_client_secret", lambda a, u: a.oauth.regenerate_client_secret(str(uuid.uuid4())), 404,
     "feature_disabled"),
]


@pytest.mark.parametrize("call,status,code", [case[1:] for case in ADMIN_NOT_ENABLED],
                         ids=[case[0] for case in ADMIN_NOT_ENABLED])
def test_admin_not_enabled_feature_answers_its_disabled_error(admin_a, call, status, code):
    user = _create(admin_a)[2]
    expect_api_error(lambda: call(admin_a, user), status, code)


def test_mfa_reads_work_without_factors(client_a, admin_a):
    """§5: list_factors and the assurance level are local reads (no factors, aal1 by password);
    the admin list of a user's factors is empty."""
    _, _, signed_up = sign_up(client_a)
    factors = client_a.mfa.list_factors()
    assert (factors.all, factors.totp, factors.phone) == ([], [], [])
    level = client_a.mfa.get_authenticator_assurance_level()
    assert (level.current_level, level.next_level) == ("aal1", "aal1")
    assert [entry.method for entry in level.current_authentication_methods] == ["password"]
    assert admin_a.mfa.list_factors({"user_id": signed_up.user.id}) == []


def test_sign_in_with_oauth_provider_is_not_enabled(client_a, project_a, platform):
    """§5: sign_in_with_oauth only builds the /authorize URL; the browser that follows it (with
    the key as `apikey` query parameter, as Kong accepts) gets 400 validation_failed."""
    oauth = client_a.sign_in_with_oauth({"provider": "github"})
    assert oauth.url.startswith(f"{platform.auth_v1}/authorize?")
    answer = httpx.get(oauth.url, params={"apikey": project_a.publishable}, follow_redirects=False, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json().get("error_code") == "validation_failed"


# --- Across projects ---------------------------------------------------------------------------


def test_a_user_token_of_another_project_is_a_tenant_mismatch(client_a, client_b):
    _, _, of_b = sign_up(client_b)
    expect_api_error(lambda: client_a.get_user(of_b.session.access_token), 403, "tenant_mismatch")
    expect_api_error(lambda: client_a.admin.sign_out(of_b.session.access_token, "global"), 403, "tenant_mismatch")
    # B's session was not touched
    assert client_b.get_user().user.id == of_b.user.id


def test_a_user_of_one_project_cannot_sign_in_on_another(make_client, project_a, project_b):
    email, password, _ = sign_up(make_client(project_a.publishable))
    client = make_client(project_b.publishable)
    expect_api_error(lambda: client.sign_in_with_password({"email": email, "password": password}), 400, "invalid_credentials")


def test_a_refresh_token_of_another_project_is_unknown(client_a, client_b):
    _, _, of_a = sign_up(client_a)
    expect_api_error(lambda: client_b.refresh_session(of_a.session.refresh_token), 400, "refresh_token_not_found")
    assert client_a.refresh_session(of_a.session.refresh_token).session is not None


def test_another_projects_secret_key_cannot_reach_its_users(admin_a, admin_b, client_a):
    email, password, user = _create(admin_a)
    expect_api_error(lambda: admin_b.get_user_by_id(user.id), 404, "user_not_found")
    assert user.id not in {listed.id for listed in all_users(admin_b)}
    expect_api_error(lambda: admin_b.update_user_by_id(user.id, {"user_metadata": {"owned": True}}), 404, "user_not_found")
    expect_api_error(lambda: admin_b.delete_user(user.id), 404, "user_not_found")
    stored = admin_a.get_user_by_id(user.id).user
    assert "owned" not in stored.user_metadata
    assert client_a.sign_in_with_password({"email": email, "password": password}).user.id == user.id


def test_claims_of_another_project_do_not_verify(client_a, client_b):
    _, _, of_a = sign_up(client_a)
    with pytest.raises(AuthInvalidJwtError, match="No matching signing key"):
        client_b.get_claims(of_a.session.access_token)


def test_the_host_name_names_the_project(platform, project_a, project_b):
    """Issue 11: `<slug>.<PLATFORM_DOMAIN>` names the project as hosted Supabase's host does; a key
    of another project than the host names is refused; the public JWKS needs only the host."""
    assert platform.domain, "sdk-tests.sh sets PLATFORM_DOMAIN (SDK_PLATFORM_DOMAIN)"
    host_a = f"{project_a.slug}.{platform.domain}"
    with httpx.Client(base_url=platform.auth_v1, timeout=30) as http:
        own = http.get("/settings", headers={**headers(project_a.publishable), "Host": host_a})
        assert own.status_code == 200, own.text
        foreign = http.get("/settings", headers={**headers(project_b.publishable), "Host": host_a})
        assert (foreign.status_code, foreign.json().get("code")) == (403, "tenant_mismatch"), foreign.text
        jwks_a = http.get("/.well-known/jwks.json", headers={"Host": host_a})
        assert jwks_a.status_code == 200, jwks_a.text
        by_key = http.get("/.well-known/jwks.json", headers=headers(project_a.publishable))
        assert jwks_a.json() == by_key.json()
        keyless = http.get("/settings", headers={**API_VERSION, "Host": host_a})
        assert keyless.status_code == 401, keyless.text


# --- The supabase client ------------------------------------------------------------------------


def test_supabase_create_client(platform, project_a):
    """`supabase.create_client(<gateway>, <publishable key>)`, as the README shows: its auth
    client sends `apiKey`, and the user's token as bearer once signed in."""
    client = supabase.create_client(platform.base_url, project_a.publishable)
    try:
        email, password = new_email("supabase"), strong_password()
        signed_up = client.auth.sign_up({"email": email, "password": password})
        assert signed_up.session is not None
        assert client.options.headers["Authorization"] == f"Bearer {signed_up.session.access_token}"
        assert client.auth.get_user().user.id == signed_up.user.id

        refreshed = client.auth.refresh_session()
        assert refreshed.session.refresh_token != signed_up.session.refresh_token
        assert client.options.headers["Authorization"] == f"Bearer {refreshed.session.access_token}"

        client.auth.sign_out()
        assert client.auth.get_session() is None
        assert client.options.headers["Authorization"] == f"Bearer {project_a.publishable}"
        expect_api_error(lambda: client.auth.refresh_session(refreshed.session.refresh_token), 400, "refresh_token_not_found")

        signed_in = client.auth.sign_in_with_password({"email": email, "password": password})
        assert signed_in.user.id == signed_up.user.id
    finally:
        timer = client.auth._refresh_token_timer
        if timer is not None:
            timer.cancel()
        client.auth.close()
