"""storage3's signed URLs against the platform (docs/protocols/storage-reference.md §4):
`create_signed_url`, `create_signed_urls`, `create_signed_upload_url`, `upload_to_signed_url`,
through the gateway, and the links they return opened as a browser would (no credentials).

The platform's departure (§12): a tampered, expired or misused token is HTTP 403 with the same
codes (`InvalidJWT`, `InvalidSignature`) where Supabase answers 400.
"""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions

from support import expect_storage_error
from test_storage import sign_up


@pytest.fixture
def browser():
    """A client with no credentials at all: what opens a link."""
    with httpx.Client(timeout=30) as client:
        yield client


def test_a_signed_url_downloads_without_credentials(make_supabase, new_bucket, project_a, browser):
    """`create_signed_url` → an absolute URL under `/storage/v1/object/sign/`; a GET of it with no
    headers returns the bytes, with `Expires`; `{"download": True}` adds the attachment header;
    a token changed by one character is 403 `InvalidJWT`."""
    admin = make_supabase(project_a.secret).storage
    bucket = new_bucket(project_a, "signed")
    data = b"private bytes \x00\xff"
    admin.from_(bucket).upload("docs/report 1.pdf", data, {"content-type": "application/pdf"})

    signed = admin.from_(bucket).create_signed_url("docs/report 1.pdf", 60)
    url = signed["signedURL"]
    assert url == signed["signedUrl"] and "/storage/v1/object/sign/" in url and "token=" in url
    answer = browser.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.content == data and answer.headers["content-type"] == "application/pdf"
    assert "expires" in answer.headers

    download = admin.from_(bucket).create_signed_url("docs/report 1.pdf", 60, {"download": True})["signedURL"]
    attached = browser.get(download)
    assert attached.status_code == 200 and attached.headers["content-disposition"].startswith("attachment")

    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    refused = browser.get(urllib.parse.urlunsplit(parts._replace(query="token=" + forged)))
    assert refused.status_code == 403 and refused.json()["code"] == "InvalidJWT", refused.text

    expect_storage_error(lambda: admin.from_(bucket).create_signed_url("docs/missing.pdf", 60), "404", "not_found")


def test_signed_urls_for_several_paths(make_supabase, new_bucket, project_a, browser):
    """`create_signed_urls`: one entry per path in order; a missing object gets an `error` and no
    URL; each URL serves its own object only."""
    admin = make_supabase(project_a.secret).storage
    bucket = new_bucket(project_a, "signed-many")
    admin.from_(bucket).upload("a.txt", b"alpha", {"content-type": "text/plain"})
    admin.from_(bucket).upload("b.txt", b"beta", {"content-type": "text/plain"})

    entries = admin.from_(bucket).create_signed_urls(["a.txt", "missing.txt", "b.txt"], 60)
    assert [entry["path"] for entry in entries] == ["a.txt", "missing.txt", "b.txt"]
    assert entries[1]["signedURL"] is None and entries[1]["error"]
    assert browser.get(entries[0]["signedURL"]).content == b"alpha"
    assert browser.get(entries[2]["signedURL"]).content == b"beta"
    # a.txt's token on b.txt's path
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(entries[0]["signedURL"]).query)["token"][0]
    other = entries[2]["signedURL"].split("?")[0] + "?token=" + token
    refused = browser.get(other)
    assert refused.status_code == 403 and refused.json()["code"] == "InvalidSignature", refused.text


def test_a_signed_upload_url_stores_as_the_signing_user(make_supabase, platform, new_bucket, project_a, browser):
    """`create_signed_upload_url` by a signed-in user, then `upload_to_signed_url` from another
    client: the object is the user's (they read it, another user does not); the link cannot
    replace it (409 `Duplicate`) unless signed with `upsert`."""
    admin = make_supabase(project_a.secret).storage
    bucket = new_bucket(project_a, "signed-upload", user_access="owner")
    alice, bob = sign_up(make_supabase, platform, project_a, "alice"), sign_up(make_supabase, platform, project_a, "bob")

    link = alice.storage.from_(bucket).create_signed_upload_url("alice/photo.png")
    assert link["path"] == "alice/photo.png" and link["token"] and "token=" in link["signed_url"]
    uploader = make_supabase(project_a.publishable).storage.from_(bucket)
    stored = uploader.upload_to_signed_url("alice/photo.png", link["token"], b"\x89PNG", {"content-type": "image/png"})
    assert stored.full_path == f"{bucket}/alice/photo.png"
    assert alice.storage.from_(bucket).download("alice/photo.png") == b"\x89PNG"
    expect_storage_error(lambda: bob.storage.from_(bucket).download("alice/photo.png"), "404", "not_found")
    expect_storage_error(lambda: uploader.upload_to_signed_url("alice/photo.png", link["token"], b"again"), "409", "Duplicate")

    replace = admin.from_(bucket).create_signed_upload_url("alice/photo.png", CreateSignedUploadUrlOptions(upsert="true"))
    uploader.upload_to_signed_url("alice/photo.png", replace["token"], b"\x89PNG v2", {"content-type": "image/png"})
    assert admin.from_(bucket).download("alice/photo.png") == b"\x89PNG v2"
    # a link for one name uploads nothing elsewhere
    with pytest.raises(StorageApiError) as caught:
        uploader.upload_to_signed_url("alice/other.png", replace["token"], b"x")
    assert (caught.value.status, caught.value.code) == ("403", "InvalidSignature")
    # the publishable key alone may not sign for uploads
    expect_storage_error(lambda: make_supabase(project_a.publishable).storage.from_(bucket)
                         .create_signed_upload_url("anon.png"), "403", "Unauthorized")
