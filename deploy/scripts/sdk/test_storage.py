"""supabase-py's storage client (storage3 2.34.1) against the platform's Storage API (`/storage/v1`).

Every client is `supabase.create_client(<base>, key).storage` (`make_supabase`), with the
project's secret key, its publishable key, or a user's token after sign-up through supabase-auth.
What each test expects is docs/protocols/storage-reference.md (the protocol as storage3 and
Supabase's Storage server read and write it; §11 is the per-method checklist) with the
platform's documented departures (§10 and the controllers' doc comments):

- real HTTP statuses (404, 409, 413, 415, 422, …) where Supabase answers 400 for every client
  error; storage3 reads the body's `statusCode` and `error` either way (`.status`, `.code`);
- MIME parameters (`;charset=…`) ignored by a bucket's allow-list;
- UTF-8 object names allowed; names that are not NFC, hold `..` or `.` segments, a leading `/`,
  control characters, or pass 1,024 bytes (255 per segment) are 422 `InvalidKey`;
- a bucket's `user_access` (`owner` | `authenticated_read`) in place of row-level security.

Not built, so not tested: image transformations. Signed URLs are test_signed_urls.py's; resumable uploads (TUS) tuspy's,
test_resumable.py; the S3 endpoint boto3's, test_s3.py.

Each test makes its own buckets (`new_bucket`: emptied and deleted afterwards) and users, and
reads back what it wrote rather than trusting one answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from http.client import HTTPConnection

import httpx
import pytest
import supabase
from storage3.exceptions import StorageApiError
from storage3.types import BaseBucket

from platform_setup import Platform, Project, register_project
from support import expect_storage_error, new_email, sql, storage_headers, strong_password

BUCKET_KEYS = {"id", "name", "owner", "public", "type", "file_size_limit", "allowed_mime_types", "created_at",
               "updated_at", "user_access"}
INFO_KEYS = {"id", "name", "version", "bucket_id", "size", "content_type", "cache_control", "etag", "metadata",
             "last_modified", "created_at"}
LIST_METADATA_KEYS = {"eTag", "size", "mimetype", "cacheControl", "lastModified", "contentLength", "httpStatusCode"}
FOLDER_NULLS = {"id": None, "updated_at": None, "created_at": None, "last_accessed_at": None, "metadata": None}


# --- Helpers -----------------------------------------------------------------------------------


@dataclass
class User:
    id: str
    token: str
    storage: object  # storage3's SyncStorageClient, sending the user's token


def sign_up(make_supabase, platform: Platform, project: Project, tag: str) -> User:
    """A new user of the project, signed up through supabase-auth on a supabase client, whose
    storage client then sends the user's token (supabase rebuilds it on every auth event). With
    SDK_VIA_GATEWAY=0 auth and storage have different bases, so a second client carries the
    token to storage's own port."""
    app = make_supabase(project.publishable, base=platform.base_url)
    session = app.auth.sign_up({"email": new_email(tag), "password": strong_password()}).session
    assert session is not None, "sign_up must return a session"
    storage = app.storage if platform.storage_base_url == platform.base_url else \
        make_supabase(project.publishable, token=session.access_token).storage
    assert storage._headers["Authorization"] == f"Bearer {session.access_token}"
    return User(session.user.id, session.access_token, storage)


def path_url(*segments: str) -> str:
    """A URL path of object names, each segment percent-encoded as storage3 sends it."""
    return "/".join(urllib.parse.quote(segment, safe="/") for segment in segments)


def names_of(entries: list[dict]) -> list[str]:
    return [entry["name"] for entry in entries]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def admin_a(make_supabase, project_a):
    """Project A's storage client with its secret key."""
    return make_supabase(project_a.secret).storage


@pytest.fixture
def admin_b(make_supabase, project_b):
    return make_supabase(project_b.secret).storage


@pytest.fixture
def anon_a(make_supabase, project_a):
    """Project A's storage client with the publishable key alone (no user)."""
    return make_supabase(project_a.publishable).storage


@pytest.fixture
def http(platform):
    """A plain httpx client on `<base>/storage/v1`, for what storage3 does not send or show
    (Range, If-None-Match, headers, names storage3 refuses locally)."""
    with httpx.Client(base_url=platform.storage_v1, timeout=60) as client:
        yield client


# --- Buckets -----------------------------------------------------------------------------------


def test_create_buckets_and_read_them_back(admin_a, new_bucket, project_a, http):
    """§2 and §11 `create_bucket` / `get_bucket` / `list_buckets`: `{"name"}` back; every bucket
    parses into storage3's pydantic `Bucket`, with its options as given (`"1MB"` is 1,000,000
    bytes: decimal units)."""
    private, public, sized = (new_bucket.name("private"), new_bucket.name("public"), new_bucket.name("sized"))
    for bucket in (private, public, sized):
        new_bucket.adopt(project_a, bucket)

    assert admin_a.create_bucket(private) == {"name": private}
    assert admin_a.create_bucket(public, options={"public": True, "file_size_limit": 2048,
                                                  "allowed_mime_types": ["image/png", "text/*"]}) == {"name": public}
    assert admin_a.create_bucket(sized, sized, {"file_size_limit": "1MB"}) == {"name": sized}

    got = {bucket: admin_a.get_bucket(bucket) for bucket in (private, public, sized)}
    for bucket, parsed in got.items():
        assert isinstance(parsed, BaseBucket)
        assert (parsed.id, parsed.name, parsed.owner) == (bucket, bucket, "")
        assert parsed.created_at.tzinfo is not None and parsed.updated_at >= parsed.created_at
    assert (got[private].public, got[private].file_size_limit, got[private].allowed_mime_types) == (False, None, None)
    assert (got[public].public, got[public].file_size_limit, got[public].allowed_mime_types) == (
        True, 2048, ["image/png", "text/*"])
    assert (got[sized].public, got[sized].file_size_limit) == (False, 1_000_000)

    listed = {bucket.id: bucket for bucket in admin_a.list_buckets()}
    assert {private, public, sized} <= listed.keys()
    for bucket in (private, public, sized):
        assert listed[bucket].model_dump(exclude={"type"}) == got[bucket].model_dump(exclude={"type"})
        assert listed[bucket].type == "STANDARD"

    # on the wire: every key storage3 requires, present even when null; the platform's user_access
    answer = http.get(f"/bucket/{private}", headers=storage_headers(project_a.secret))
    assert answer.status_code == 200 and BUCKET_KEYS <= answer.json().keys(), answer.text
    assert answer.json()["user_access"] == "owner"
    assert answer.json()["file_size_limit"] is None and answer.json()["allowed_mime_types"] is None


def test_create_bucket_refusals(admin_a, new_bucket, project_a):
    """A taken id is 409 `Duplicate`; a bad name, a bad size and a bad MIME pattern are refused
    and create nothing."""
    bucket = new_bucket(project_a, "dup")
    before = admin_a.get_bucket(bucket)
    expect_storage_error(lambda: admin_a.create_bucket(bucket, options={"public": True}), "409", "Duplicate")
    assert admin_a.get_bucket(bucket) == before

    bad_name, bad_size, bad_type = new_bucket.name("bad/name"), new_bucket.name("size"), new_bucket.name("type")
    expect_storage_error(lambda: admin_a.create_bucket(bad_name), "400", "Invalid Input")
    expect_storage_error(lambda: admin_a.create_bucket(bad_size, options={"file_size_limit": "ten parsecs"}),
                         "400", "InvalidRequest")
    expect_storage_error(lambda: admin_a.create_bucket(bad_type, options={"allowed_mime_types": ["not a type"]}),
                         "415", "invalid_mime_type")
    listed = {listed.id for listed in admin_a.list_buckets()}
    assert not {bad_name, bad_size, bad_type} & listed


def test_update_bucket(admin_a, new_bucket, project_a, http):
    """`update_bucket` changes what it names and keeps the rest; `null` clears a limit."""
    bucket = new_bucket(project_a, "update")
    before = admin_a.get_bucket(bucket)

    assert admin_a.update_bucket(bucket, {"public": True, "file_size_limit": "2KB",
                                          "allowed_mime_types": ["image/*"]}) == {"message": "Successfully updated"}
    after = admin_a.get_bucket(bucket)
    assert (after.public, after.file_size_limit, after.allowed_mime_types) == (True, 2000, ["image/*"])
    assert after.created_at == before.created_at and after.updated_at >= before.updated_at

    admin_a.update_bucket(bucket, {"file_size_limit": None})
    cleared = admin_a.get_bucket(bucket)
    assert (cleared.public, cleared.file_size_limit, cleared.allowed_mime_types) == (True, None, ["image/*"])

    # the platform's own field goes the same way (storage3 passes unknown options through)
    admin_a.update_bucket(bucket, {"user_access": "authenticated_read", "allowed_mime_types": None})
    wire = http.get(f"/bucket/{bucket}", headers=storage_headers(project_a.secret)).json()
    assert (wire["user_access"], wire["allowed_mime_types"], wire["public"]) == ("authenticated_read", None, True)

    missing = new_bucket.name("missing")
    expect_storage_error(lambda: admin_a.update_bucket(missing, {"public": True}), "404", "Bucket not found")


def test_bucket_timestamps_carry_milliseconds(admin_a, new_bucket, project_a, http):
    """§1.5: dates are ISO 8601 UTC with milliseconds (`2025-01-01T00:00:00.123Z`), as objects'
    are here too; so an update within the second after creation still shows a later
    `updated_at`."""
    bucket = new_bucket(project_a, "dates")
    admin_a.update_bucket(bucket, {"public": True})
    wire = http.get(f"/bucket/{bucket}", headers=storage_headers(project_a.secret)).json()
    for field in ("created_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", wire[field]), (field, wire[field])
    assert parse_time(wire["updated_at"]) > parse_time(wire["created_at"])
    admin_a.from_(bucket).upload("a.txt", b"a")
    info = admin_a.from_(bucket).info("a.txt")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info["created_at"]), info["created_at"]


def test_delete_refuses_a_bucket_with_objects_until_it_is_emptied(admin_a, new_bucket, project_a):
    """§2 `delete_bucket`: a bucket holding objects is 409 `ResourceNotEmpty` and stays whole;
    `empty_bucket` removes every object; then it deletes, and is gone (404)."""
    bucket = new_bucket(project_a, "delete")
    files = admin_a.from_(bucket)
    files.upload("a.txt", b"a")
    files.upload("deep/b.txt", b"b")

    expect_storage_error(lambda: admin_a.delete_bucket(bucket), "409", "ResourceNotEmpty")
    assert admin_a.get_bucket(bucket).id == bucket
    assert files.download("deep/b.txt") == b"b"

    assert admin_a.empty_bucket(bucket) == {
        "message": "Empty bucket has been queued. Completion may take up to an hour."}
    assert files.list() == []
    assert files.exists("a.txt") is False and files.exists("deep/b.txt") is False
    assert admin_a.empty_bucket(bucket)["message"].startswith("Empty bucket")  # already empty: the same

    assert admin_a.delete_bucket(bucket) == {"message": "Successfully deleted"}
    expect_storage_error(lambda: admin_a.get_bucket(bucket), "404", "Bucket not found")
    assert bucket not in {listed.id for listed in admin_a.list_buckets()}
    expect_storage_error(lambda: admin_a.delete_bucket(bucket), "404", "Bucket not found")
    expect_storage_error(lambda: admin_a.empty_bucket(bucket), "404", "Bucket not found")


def test_the_publishable_key_cannot_manage_buckets(admin_a, anon_a, new_bucket, project_a):
    """Creating, changing, emptying and deleting buckets take the secret key: 403, and nothing
    changes."""
    bucket = new_bucket(project_a, "managed", public=True)
    admin_a.from_(bucket).upload("keep.txt", b"keep")
    before = admin_a.get_bucket(bucket)

    intruder = new_bucket.name("intruder")
    expect_storage_error(lambda: anon_a.create_bucket(intruder, options={"public": True}), "403", "Unauthorized")
    expect_storage_error(lambda: anon_a.update_bucket(bucket, {"public": False}), "403", "Unauthorized")
    expect_storage_error(lambda: anon_a.empty_bucket(bucket), "403", "Unauthorized")
    expect_storage_error(lambda: anon_a.delete_bucket(bucket), "403", "Unauthorized")

    assert admin_a.get_bucket(bucket) == before
    assert admin_a.from_(bucket).download("keep.txt") == b"keep"
    expect_storage_error(lambda: admin_a.get_bucket(intruder), "404", "Bucket not found")


# --- Objects -----------------------------------------------------------------------------------


def test_upload_with_options_and_read_it_back(admin_a, new_bucket, project_a, http):
    """§3.1 and §11 `upload` / `info` / `download`: storage3's multipart form (cacheControl,
    metadata, then the file with its content type) is stored as given; `info` shows it; the
    download carries it in its headers."""
    bucket = new_bucket(project_a, "upload")
    files = admin_a.from_(bucket)
    data = b'{"hello": "world"}'

    uploaded = files.upload("docs/hello.json", data, {
        "content-type": "application/json", "cache-control": "120", "metadata": {"owner": "sdk", "n": 1}})
    assert (uploaded.path, uploaded.full_path, uploaded.fullPath) == (
        "docs/hello.json", f"{bucket}/docs/hello.json", f"{bucket}/docs/hello.json")

    info = files.info("docs/hello.json")
    assert INFO_KEYS <= info.keys()
    assert (info["name"], info["bucket_id"], info["size"]) == ("docs/hello.json", bucket, len(data))
    assert (info["content_type"], info["cache_control"]) == ("application/json", "max-age=120")
    assert info["metadata"] == {"owner": "sdk", "n": 1}
    assert info["etag"].startswith('"') and info["etag"].endswith('"')
    assert parse_time(info["last_modified"]) >= parse_time(info["created_at"])
    assert files.download("docs/hello.json") == data

    answer = http.get(f"/object/{bucket}/docs/hello.json", headers=storage_headers(project_a.secret))
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "max-age=120"
    assert answer.headers["etag"] == info["etag"]
    assert answer.headers["content-length"] == str(len(data))

    # storage3's defaults: text/plain;charset=UTF-8, cacheControl 3600, no metadata
    files.upload("plain.txt", b"plain")
    plain = files.info("plain.txt")
    assert (plain["content_type"], plain["cache_control"], plain["metadata"]) == (
        "text/plain;charset=UTF-8", "max-age=3600", None)
    assert plain["etag"] != info["etag"] and plain["id"] != info["id"]


def test_upload_from_a_file_path_and_an_open_file(admin_a, new_bucket, project_a, tmp_path):
    """storage3 opens a path itself, or reads a file the caller opened; a 10 MB object comes
    back byte for byte."""
    bucket = new_bucket(project_a, "files")
    files = admin_a.from_(bucket)
    big = os.urandom(10 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    try:
        files.upload("big.bin", str(path), {"content-type": "application/octet-stream"})
        with open(path, "rb") as opened:
            files.upload("big-again.bin", opened, {"content-type": "application/octet-stream"})
    finally:
        path.unlink()

    for name in ("big.bin", "big-again.bin"):
        assert files.info(name)["size"] == len(big)
        assert sha256(files.download(name)) == sha256(big)
    assert files.info("big.bin")["etag"] == files.info("big-again.bin")["etag"]


def test_empty_object_and_names_with_spaces_and_utf8(admin_a, new_bucket, project_a, http):
    """A 0-byte object; names with spaces and UTF-8 (allowed here, §10), which storage3
    percent-encodes per segment, listed and read back under the same name."""
    bucket = new_bucket(project_a, "names")
    files = admin_a.from_(bucket)
    files.upload("empty.txt", b"")
    assert files.download("empty.txt") == b""
    assert files.info("empty.txt")["size"] == 0

    name = "dir with space/naïve résumé 文件 ✓.txt"
    data = "grüße, 世界".encode()
    assert files.upload(name, data).full_path == f"{bucket}/{name}"
    assert files.download(name) == data
    assert files.info(name)["name"] == name
    assert names_of(files.list("dir with space")) == ["naïve résumé 文件 ✓.txt"]
    assert names_of(files.list()) == ["dir with space", "empty.txt"]

    answer = http.get(f"/object/{bucket}/{path_url(name)}", headers=storage_headers(project_a.secret))
    assert answer.status_code == 200 and answer.content == data


def test_duplicate_upsert_and_update(admin_a, new_bucket, project_a):
    """§3.1: POST refuses an existing key (409 `Duplicate`) unless `x-upsert: true` (storage3's
    `upsert` option, or the header itself); `update` (PUT) always replaces, and creates a
    missing object."""
    bucket = new_bucket(project_a, "upsert")
    files = admin_a.from_(bucket)
    files.upload("a.txt", b"one")
    first = files.info("a.txt")

    expect_storage_error(lambda: files.upload("a.txt", b"two"), "409", "Duplicate")
    assert files.download("a.txt") == b"one"

    files.upload("a.txt", b"three", {"upsert": "true"})
    assert files.download("a.txt") == b"three"
    files.upload("a.txt", b"four", {"x-upsert": "true", "content-type": "text/markdown"})
    assert files.download("a.txt") == b"four"

    files.update("a.txt", b"five", {"cache-control": "10"})
    info = files.info("a.txt")
    assert files.download("a.txt") == b"five"
    assert (info["id"], info["size"], info["cache_control"]) == (first["id"], 4, "max-age=10")
    assert info["version"] != first["version"] and info["etag"] != first["etag"]

    files.update("created-by-update.txt", b"new")
    assert files.download("created-by-update.txt") == b"new"


def test_exists_and_missing_objects(admin_a, new_bucket, project_a):
    """§3.2 `exists`: True, False for a missing object (`{"statusCode":"404","error":"not_found"}`);
    a missing bucket raises. `download`/`info` of a missing object: 404 `not_found`."""
    bucket = new_bucket(project_a, "exists")
    files = admin_a.from_(bucket)
    files.upload("here.txt", b"x")
    assert files.exists("here.txt") is True
    assert files.exists("not-here.txt") is False
    assert files.exists("here.txt/deeper") is False
    expect_storage_error(lambda: files.download("not-here.txt"), "404", "not_found")
    expect_storage_error(lambda: files.info("not-here.txt"), "404", "not_found")
    gone = admin_a.from_(new_bucket.name("gone"))
    expect_storage_error(lambda: gone.exists("here.txt"), "404", "Bucket not found")
    expect_storage_error(lambda: gone.download("here.txt"), "404", "Bucket not found")
    expect_storage_error(lambda: gone.upload("here.txt", b"x"), "404", "Bucket not found")


def test_list_one_level_with_prefix_limit_offset_search_and_sort(admin_a, new_bucket, project_a):
    """§3.3 list v1: one level under the prefix (a trailing `/` added), names relative to it;
    folders with every other field null; files with their system metadata; `limit`/`offset`;
    `search` a case-insensitive starts-with; by name folders and files interleaved
    (case-insensitively), by another column folders first."""
    bucket = new_bucket(project_a, "list")
    files = admin_a.from_(bucket)
    # created in this order, so that creation order differs from name order
    for name in ("docs/c.txt", "docs/a.txt", "docs/B.txt", "docs/sub/d.txt", "docs/sub/e.txt", "docs/Zeta/f.txt",
                 "top.txt"):
        files.upload(name, name.encode())

    level = files.list("docs")
    assert names_of(level) == ["a.txt", "B.txt", "c.txt", "sub", "Zeta"]
    assert files.list("docs/") == level
    by_name = {entry["name"]: entry for entry in level}
    for folder in ("sub", "Zeta"):
        assert by_name[folder] == {"name": folder, **FOLDER_NULLS}
    a = by_name["a.txt"]
    assert a["id"] == files.info("docs/a.txt")["id"]
    assert LIST_METADATA_KEYS <= a["metadata"].keys()
    assert (a["metadata"]["size"], a["metadata"]["contentLength"], a["metadata"]["mimetype"]) == (
        len(b"docs/a.txt"), len(b"docs/a.txt"), "text/plain;charset=UTF-8")
    assert (a["metadata"]["cacheControl"], a["metadata"]["httpStatusCode"]) == ("max-age=3600", 200)
    assert a["metadata"]["eTag"] == files.info("docs/a.txt")["etag"]
    assert a["created_at"] and a["updated_at"] and a["last_accessed_at"]

    assert names_of(files.list()) == ["docs", "top.txt"]
    assert names_of(files.list("docs/sub")) == ["d.txt", "e.txt"]
    assert files.list("nothing/here") == []

    assert names_of(files.list("docs", {"limit": 2})) == ["a.txt", "B.txt"]
    assert names_of(files.list("docs", {"limit": 2, "offset": 2})) == ["c.txt", "sub"]
    assert names_of(files.list("docs", {"offset": 4})) == ["Zeta"]

    assert names_of(files.list("docs", {"search": "b"})) == ["B.txt"]
    assert names_of(files.list("docs", {"search": "Z"})) == ["Zeta"]
    assert names_of(files.list("docs", {"search": "txt"})) == []  # starts-with, not a substring
    assert names_of(files.list(None, {"search": "t"})) == ["top.txt"]

    assert names_of(files.list("docs", {"sortBy": {"column": "name", "order": "desc"}})) == [
        "Zeta", "sub", "c.txt", "B.txt", "a.txt"]
    by_created = names_of(files.list("docs", {"sortBy": {"column": "created_at", "order": "asc"}}))
    assert set(by_created[:2]) == {"sub", "Zeta"} and by_created[2:] == ["c.txt", "a.txt", "B.txt"]
    by_created_desc = names_of(files.list("docs", {"sortBy": {"column": "created_at", "order": "desc"}}))
    assert set(by_created_desc[:2]) == {"sub", "Zeta"} and by_created_desc[2:] == ["B.txt", "a.txt", "c.txt"]


def test_move_copy_and_remove(admin_a, new_bucket, project_a):
    """§3.5: `move` renames (the object keeps its id) and refuses an existing target; `copy`
    makes a new object with the same bytes; `remove` answers the removed rows and skips missing
    names."""
    bucket = new_bucket(project_a, "relocate")
    files = admin_a.from_(bucket)
    files.upload("from/a.txt", b"alpha", {"metadata": {"tag": "a"}})
    files.upload("taken.txt", b"taken")
    original = files.info("from/a.txt")

    assert files.move("from/a.txt", "to/a b.txt") == {"message": "Successfully moved"}
    assert files.exists("from/a.txt") is False
    moved = files.info("to/a b.txt")
    assert (moved["id"], moved["etag"], moved["metadata"]) == (original["id"], original["etag"], {"tag": "a"})
    assert files.download("to/a b.txt") == b"alpha"
    assert names_of(files.list()) == ["taken.txt", "to"]

    expect_storage_error(lambda: files.move("to/a b.txt", "taken.txt"), "409", "Duplicate")
    expect_storage_error(lambda: files.move("no/such.txt", "elsewhere.txt"), "404", "not_found")
    assert files.download("taken.txt") == b"taken" and files.exists("elsewhere.txt") is False

    copied = files.copy("to/a b.txt", "copy/a.txt")
    assert copied["Key"] == f"{bucket}/copy/a.txt"
    copy_info = files.info("copy/a.txt")
    assert copied["Id"] == copy_info["id"] != moved["id"]
    assert (copy_info["etag"], copy_info["metadata"]) == (moved["etag"], {"tag": "a"})
    assert files.download("copy/a.txt") == files.download("to/a b.txt") == b"alpha"
    expect_storage_error(lambda: files.copy("to/a b.txt", "taken.txt"), "409", "Duplicate")
    expect_storage_error(lambda: files.copy("no/such.txt", "copy/b.txt"), "404", "not_found")
    assert files.download("taken.txt") == b"taken" and files.exists("copy/b.txt") is False

    removed = files.remove(["copy/a.txt", "missing.txt", "to/a b.txt"])
    assert sorted(row["name"] for row in removed) == ["copy/a.txt", "to/a b.txt"]
    assert all(row["bucket_id"] == bucket for row in removed)
    assert files.exists("copy/a.txt") is False and files.exists("to/a b.txt") is False
    assert files.remove(["missing.txt"]) == []
    assert names_of(files.list()) == ["taken.txt"]


def test_public_url_of_a_public_and_a_private_bucket(admin_a, new_bucket, project_a, platform):
    """§5 `get_public_url` (built locally) and a plain GET of it, as a browser would make one:
    the project named by its host `<slug>.<PLATFORM_DOMAIN>` (or a key); a private bucket's is
    404 `NoSuchBucket`."""
    public, private = new_bucket(project_a, "pub", public=True), new_bucket(project_a, "priv")
    data = b"\x89PNG not really"
    admin_a.from_(public).upload("pics/a b.png", data, {"content-type": "image/png"})
    admin_a.from_(private).upload("pics/a b.png", data, {"content-type": "image/png"})

    url = admin_a.from_(public).get_public_url("pics/a b.png")
    assert url == f"{platform.storage_v1}/object/public/{public}/pics/a%20b.png"
    assert admin_a.from_(public).get_public_url("pics/a b.png", {"download": True}) == url + "?download="
    host = {"Host": f"{project_a.slug}.{platform.domain}"}
    with httpx.Client(timeout=30) as browser:
        for headers in (host, {"apikey": project_a.publishable}):
            answer = browser.get(url, headers=headers)
            assert answer.status_code == 200, (headers, answer.text)
            assert answer.content == data and answer.headers["content-type"] == "image/png"
        attachment = browser.get(url + "?download=", headers=host)
        assert attachment.headers.get("content-disposition", "").startswith("attachment")

        private_url = admin_a.from_(private).get_public_url("pics/a b.png")
        answer = browser.get(private_url, headers=host)
        assert answer.status_code == 404, answer.text
        assert (answer.json()["statusCode"], answer.json()["code"], answer.json()["error"]) == (
            "404", "NoSuchBucket", "Bucket not found")
        # nothing names the project: Kong's answer
        anonymous = browser.get(url)
        assert anonymous.status_code == 401 and anonymous.json()["message"] == "No API key found in request"


def test_range_and_conditional_downloads(admin_a, new_bucket, project_a, http):
    """§3.2: `Range` → 206 with `Content-Range`; an unsatisfiable range → 416 `InvalidRange`;
    `If-None-Match` with the ETag → 304 without a body. (storage3's `download` sends no
    headers of its own, so these go through httpx with the same credentials.)"""
    bucket = new_bucket(project_a, "range")
    data = bytes(range(256)) * 4
    admin_a.from_(bucket).upload("bytes.bin", data, {"content-type": "application/octet-stream"})
    headers = storage_headers(project_a.secret)
    path = f"/object/{bucket}/bytes.bin"

    part = http.get(path, headers={**headers, "Range": "bytes=2-5"})
    assert part.status_code == 206, part.text
    assert part.content == data[2:6] and part.headers["content-range"] == f"bytes 2-5/{len(data)}"
    assert part.headers["content-length"] == "4"
    tail = http.get(path, headers={**headers, "Range": "bytes=-10"})
    assert (tail.status_code, tail.content, tail.headers["content-range"]) == (
        206, data[-10:], f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}")
    rest = http.get(path, headers={**headers, "Range": "bytes=1000-"})
    assert (rest.status_code, rest.content) == (206, data[1000:])
    beyond = http.get(path, headers={**headers, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416, beyond.text
    assert (beyond.json()["statusCode"], beyond.json()["code"]) == ("416", "InvalidRange")

    whole = http.get(path, headers=headers)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    unchanged = http.get(path, headers={**headers, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    stale = http.get(path, headers={**headers, "If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == data
    since = http.get(path, headers={**headers, "If-Modified-Since": whole.headers["last-modified"]})
    assert since.status_code == 304


# --- Limits ------------------------------------------------------------------------------------


def test_a_buckets_size_limit(admin_a, new_bucket, project_a):
    """A bucket's `file_size_limit`: up to it uploads, one byte more is 413 `Payload too large`
    (`EntityTooLarge`) and leaves nothing; an update over it keeps the old object."""
    bucket = new_bucket(project_a, "limit", file_size_limit=1000)
    files = admin_a.from_(bucket)
    files.upload("fits.bin", b"x" * 1000)
    assert files.info("fits.bin")["size"] == 1000

    expect_storage_error(lambda: files.upload("over.bin", b"x" * 1001), "413", "Payload too large")
    assert files.exists("over.bin") is False
    expect_storage_error(lambda: files.update("fits.bin", b"y" * 1001), "413", "Payload too large")
    assert files.download("fits.bin") == b"x" * 1000
    assert names_of(files.list()) == ["fits.bin"]

    mb = new_bucket(project_a, "limit-mb", file_size_limit="1MB")
    admin_a.from_(mb).upload("mb.bin", b"m" * 1_000_000)
    expect_storage_error(lambda: admin_a.from_(mb).upload("mb-over.bin", b"m" * 1_000_001), "413", "Payload too large")
    assert names_of(admin_a.from_(mb).list()) == ["mb.bin"]


def test_a_buckets_mime_allow_list(admin_a, new_bucket, project_a):
    """`allowed_mime_types`: another type is 415 `invalid_mime_type` and leaves nothing; `type/*`
    admits the type's subtypes; parameters are ignored on both sides (§10: storage3's default
    `text/plain;charset=UTF-8` passes a `text/plain` list, where Supabase refuses it)."""
    bucket = new_bucket(project_a, "mime", allowed_mime_types=["image/png", "text/plain", "audio/*"])
    files = admin_a.from_(bucket)
    expect_storage_error(lambda: files.upload("data.json", b"{}", {"content-type": "application/json"}),
                         "415", "invalid_mime_type")
    expect_storage_error(lambda: files.upload("pic.jpg", b"jpg", {"content-type": "image/jpeg"}),
                         "415", "invalid_mime_type")
    assert files.exists("data.json") is False and files.exists("pic.jpg") is False

    files.upload("pic.png", b"png", {"content-type": "image/png"})
    files.upload("song.ogg", b"ogg", {"content-type": "audio/ogg"})
    files.upload("note.txt", b"note")  # storage3's default content type
    assert files.info("note.txt")["content_type"] == "text/plain;charset=UTF-8"
    assert names_of(files.list()) == ["note.txt", "pic.png", "song.ogg"]


@pytest.fixture(scope="module")
def project_q(platform) -> Project:
    """A project of its own whose storage quota the quota tests make small."""
    return register_project(platform, "q")


class Quota:
    """A project's storage quota and use, as storage keeps them (`storage.tenants`): the quota
    is set the only way there is (an operator's UPDATE; no route sets it), read back through
    storage's `GET /v1/tenants/{slug}/limits`; the use is shown by no route, so it is read from
    the table."""

    def __init__(self, platform: Platform, project: Project):
        assert platform.storage_url, "sdk-tests.sh exports SDK_STORAGE_URL"
        self.platform, self.project = platform, project
        self.slug = project.slug
        assert self.slug.replace("_", "").isalnum()

    def used(self) -> int:
        return int(sql(self.platform, f"SELECT used_bytes FROM storage.tenants WHERE slug = '{self.slug}'"))

    def set(self, quota: int) -> None:
        assert sql(self.platform, f"UPDATE storage.tenants SET quota_bytes = {int(quota)} WHERE slug = '{self.slug}' "
                                  "RETURNING quota_bytes") == str(int(quota))

    def shown(self) -> int:
        answer = httpx.get(f"{self.platform.storage_url}/v1/tenants/{self.slug}/limits",
                           headers={"apikey": self.project.publishable}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["slug"] == self.slug
        return answer.json()["limits"]["quota_bytes"]


@pytest.fixture
def quota_q(platform, project_q):
    quota = Quota(platform, project_q)
    original = quota.shown()
    yield quota
    quota.set(original)
    assert quota.shown() == original


def test_the_projects_quota(make_supabase, new_bucket, project_q, platform, quota_q):
    """Storage's per-project quota (`quota_bytes`): an upload that would pass it is 413
    `EntityTooLarge` and leaves nothing — no object, the use unchanged; removing frees it. A
    re-registration (provisioning's `PUT /internal/v1/tenants/{id}`, on storage's own port) does
    not reset the quota an operator set."""
    bucket = new_bucket(project_q, "quota")
    files = make_supabase(project_q.secret).storage.from_(bucket)
    base = quota_q.used()
    quota_q.set(base + 10_000)
    assert quota_q.shown() == base + 10_000

    registration = httpx.put(
        f"{platform.storage_url}/internal/v1/tenants/{project_q.id}",
        headers={"X-Service-Token": platform.service_token},
        json={"slug": project_q.slug, "schema": f"tenant_{project_q.slug}", "role": f"tenant_{project_q.slug}",
              "quota_bytes": 1 << 40}, timeout=30)
    assert registration.status_code == 200, registration.text
    assert quota_q.shown() == base + 10_000

    files.upload("a.bin", b"a" * 6000)
    assert quota_q.used() == base + 6000

    error = expect_storage_error(lambda: files.upload("b.bin", b"b" * 6000), "413", "Payload too large")
    assert "quota" in error.message
    assert files.exists("b.bin") is False
    assert quota_q.used() == base + 6000
    assert names_of(files.list()) == ["a.bin"]

    files.upload("c.bin", b"c" * 4000)  # exactly up to the quota
    assert quota_q.used() == base + 10_000
    expect_storage_error(lambda: files.upload("d.bin", b"d"), "413", "Payload too large")
    assert files.exists("d.bin") is False and quota_q.used() == base + 10_000

    assert len(files.remove(["a.bin", "c.bin"])) == 2
    assert quota_q.used() == base
    files.upload("b.bin", b"b" * 6000)
    assert quota_q.used() == base + 6000


def test_an_update_near_the_quota_is_charged_the_difference(make_supabase, new_bucket, project_q, quota_q):
    """Storage charges a replacement only its growth (`ObjectStore.put`: `size - existing.size`),
    so an update that leaves the project within its quota succeeds; one that would pass it is
    413 and keeps the old object."""
    bucket = new_bucket(project_q, "quota-update")
    files = make_supabase(project_q.secret).storage.from_(bucket)
    base = quota_q.used()
    quota_q.set(base + 10_000)
    files.upload("grow.bin", b"1" * 6000)

    expect_storage_error(lambda: files.update("grow.bin", b"2" * 10_001), "413", "Payload too large")
    assert files.download("grow.bin") == b"1" * 6000 and quota_q.used() == base + 6000

    files.update("grow.bin", b"3" * 9000)  # 9,000 bytes in all: within the quota
    assert files.download("grow.bin") == b"3" * 9000
    assert quota_q.used() == base + 9000


# --- Who may do what ---------------------------------------------------------------------------


def test_owner_bucket_users_see_and_change_only_their_own(make_supabase, platform, project_a, admin_a, new_bucket):
    """`user_access: owner` (a private bucket): a signed-in user writes, reads, overwrites and
    removes their own objects; another user's are not found (404 `not_found`, as a hidden object
    reads in Supabase, §9), cannot be replaced (403) and are skipped by `remove`."""
    bucket = new_bucket(project_a, "owner", user_access="owner")
    alice, bob = sign_up(make_supabase, platform, project_a, "alice"), sign_up(make_supabase, platform, project_a, "bob")
    mine, theirs = alice.storage.from_(bucket), bob.storage.from_(bucket)

    assert mine.upload("alice/notes.txt", b"alice v1").full_path == f"{bucket}/alice/notes.txt"
    assert mine.download("alice/notes.txt") == b"alice v1"
    assert mine.exists("alice/notes.txt") is True
    assert names_of(mine.list("alice")) == ["notes.txt"]
    theirs.upload("bob/own.txt", b"bob's")

    # another user's object is not there for bob, and stays as it is
    expect_storage_error(lambda: theirs.download("alice/notes.txt"), "404", "not_found")
    expect_storage_error(lambda: theirs.info("alice/notes.txt"), "404", "not_found")
    assert theirs.exists("alice/notes.txt") is False
    assert theirs.list("alice") == [] and names_of(theirs.list()) == ["bob"]
    expect_storage_error(lambda: theirs.update("alice/notes.txt", b"bob was here"), "403", "Unauthorized")
    expect_storage_error(lambda: theirs.upload("alice/notes.txt", b"bob was here", {"upsert": "true"}),
                         "403", "Unauthorized")
    expect_storage_error(lambda: theirs.copy("alice/notes.txt", "bob/copied.txt"), "404", "not_found")
    assert theirs.remove(["alice/notes.txt"]) == []
    with pytest.raises(StorageApiError):  # 404 or 403: test_a_hidden_object_cannot_be_moved_either
        theirs.move("alice/notes.txt", "bob/stolen.txt")
    assert mine.download("alice/notes.txt") == b"alice v1"
    assert admin_a.from_(bucket).exists("bob/copied.txt") is False
    assert admin_a.from_(bucket).exists("bob/stolen.txt") is False
    expect_storage_error(lambda: mine.download("bob/own.txt"), "404", "not_found")

    # the owner changes and removes their own
    mine.update("alice/notes.txt", b"alice v2")
    assert mine.download("alice/notes.txt") == b"alice v2"
    assert mine.move("alice/notes.txt", "alice/renamed.txt") == {"message": "Successfully moved"}
    assert [row["name"] for row in mine.remove(["alice/renamed.txt"])] == ["alice/renamed.txt"]
    assert admin_a.from_(bucket).exists("alice/renamed.txt") is False
    assert names_of(admin_a.from_(bucket).list()) == ["bob"]

    # the secret key sees everything; a user manages no bucket
    assert admin_a.from_(bucket).download("bob/own.txt") == b"bob's"
    expect_storage_error(lambda: bob.storage.create_bucket(new_bucket.name("users")), "403", "Unauthorized")
    expect_storage_error(lambda: bob.storage.delete_bucket(bucket), "403", "Unauthorized")


def test_a_hidden_object_cannot_be_moved_either(make_supabase, platform, project_a, new_bucket):
    """§9: a hidden object reads as `NoSuchKey`, never 403 — for `move` too, which in Supabase
    needs SELECT on the source: in an `owner` bucket another user's object is not found, so a
    move cannot tell that it exists (a missing one is 404 as well)."""
    bucket = new_bucket(project_a, "owner-move", user_access="owner")
    alice, bob = sign_up(make_supabase, platform, project_a, "alice"), sign_up(make_supabase, platform, project_a, "bob")
    alice.storage.from_(bucket).upload("alice/notes.txt", b"alice")
    theirs = bob.storage.from_(bucket)
    expect_storage_error(lambda: theirs.move("alice/missing.txt", "bob/stolen.txt"), "404", "not_found")
    expect_storage_error(lambda: theirs.move("alice/notes.txt", "bob/stolen.txt"), "404", "not_found")
    assert alice.storage.from_(bucket).download("alice/notes.txt") == b"alice"
    assert theirs.exists("bob/stolen.txt") is False


def test_authenticated_read_bucket_users_read_all_but_change_their_own(make_supabase, platform, project_a, new_bucket):
    """`user_access: authenticated_read`: every signed-in user reads every object, and still
    replaces, moves and removes only their own."""
    bucket = new_bucket(project_a, "shared", user_access="authenticated_read")
    alice, bob = sign_up(make_supabase, platform, project_a, "alice"), sign_up(make_supabase, platform, project_a, "bob")
    mine, theirs = alice.storage.from_(bucket), bob.storage.from_(bucket)
    mine.upload("shared/a.txt", b"from alice")

    assert theirs.download("shared/a.txt") == b"from alice"
    assert theirs.info("shared/a.txt")["size"] == len(b"from alice")
    assert theirs.exists("shared/a.txt") is True
    assert names_of(theirs.list("shared")) == ["a.txt"]

    assert theirs.remove(["shared/a.txt"]) == []
    expect_storage_error(lambda: theirs.update("shared/a.txt", b"from bob"), "403", "Unauthorized")
    expect_storage_error(lambda: theirs.move("shared/a.txt", "shared/b.txt"), "403", "Unauthorized")
    assert mine.download("shared/a.txt") == b"from alice"
    assert theirs.exists("shared/b.txt") is False

    # a copy is bob's own: he may remove it
    theirs.copy("shared/a.txt", "bob/a.txt")
    assert [row["name"] for row in theirs.remove(["bob/a.txt"])] == ["bob/a.txt"]
    assert names_of(mine.list()) == ["shared"]


def test_the_publishable_key_alone_reads_public_buckets_only(admin_a, anon_a, new_bucket, project_a):
    """Without a user, the publishable key reads public buckets (list, get, download, info,
    list objects) and writes nowhere; a private bucket is not found (§3.2: NoSuchBucket)."""
    public = new_bucket(project_a, "anon-pub", public=True)
    private = new_bucket(project_a, "anon-priv")
    for bucket in (public, private):
        admin_a.from_(bucket).upload("doc.txt", b"document")

    listed = {bucket.id for bucket in anon_a.list_buckets()}
    assert public in listed and private not in listed
    assert anon_a.get_bucket(public).public is True
    expect_storage_error(lambda: anon_a.get_bucket(private), "404", "Bucket not found")

    readable = anon_a.from_(public)
    assert readable.download("doc.txt") == b"document"
    assert readable.info("doc.txt")["size"] == len(b"document")
    assert readable.exists("doc.txt") is True
    assert names_of(readable.list()) == ["doc.txt"]

    hidden = anon_a.from_(private)
    for call in (lambda: hidden.download("doc.txt"), lambda: hidden.info("doc.txt")):
        with pytest.raises(StorageApiError) as caught:  # which 404: test_a_private_bucket_is_not_found_…
            call()
        assert caught.value.status == "404"
    assert hidden.list() == []

    expect_storage_error(lambda: readable.upload("new.txt", b"x"), "403", "Unauthorized")
    expect_storage_error(lambda: readable.update("doc.txt", b"x"), "403", "Unauthorized")
    expect_storage_error(lambda: readable.move("doc.txt", "moved.txt"), "403", "Unauthorized")
    expect_storage_error(lambda: readable.copy("doc.txt", "copied.txt"), "403", "Unauthorized")
    expect_storage_error(lambda: readable.remove(["doc.txt"]), "403", "Unauthorized")
    expect_storage_error(lambda: hidden.upload("new.txt", b"x"), "404", "Bucket not found")
    expect_storage_error(lambda: hidden.remove(["doc.txt"]), "403", "Unauthorized")

    for bucket in (public, private):
        assert names_of(admin_a.from_(bucket).list()) == ["doc.txt"]
        assert admin_a.from_(bucket).download("doc.txt") == b"document"


def test_a_private_bucket_is_not_found_by_the_publishable_key(admin_a, anon_a, new_bucket, project_a):
    """§3.2 download, §1.3: with the publishable key alone, a private bucket's objects are
    `NoSuchBucket` ("Bucket not found"), as the bucket itself is (`get_bucket`, uploads), so
    storage3's `exists` raises rather than answering False."""
    private = new_bucket(project_a, "anon-hidden")
    admin_a.from_(private).upload("doc.txt", b"document")
    hidden = anon_a.from_(private)
    expect_storage_error(lambda: anon_a.get_bucket(private), "404", "Bucket not found")
    expect_storage_error(lambda: hidden.download("doc.txt"), "404", "Bucket not found")
    expect_storage_error(lambda: hidden.info("doc.txt"), "404", "Bucket not found")
    expect_storage_error(lambda: hidden.exists("doc.txt"), "404", "Bucket not found")


def _object_state(storage, bucket: str) -> list[tuple]:
    """What a bucket holds, as its project's secret key sees it: names, ids, ETags, bytes."""
    files = storage.from_(bucket)
    state = []
    for entry in files.list(None, {"limit": 1000}):
        state.append((entry["name"], entry["id"], entry["metadata"]["eTag"], files.download(entry["name"])))
    return state


def _every_route(storage, bucket: str, name: str, target: str) -> list[tuple[str, object]]:
    """Each storage3 call on another project's bucket and object."""
    files = storage.from_(bucket)
    return [
        ("get_bucket", lambda: storage.get_bucket(bucket)),
        ("update_bucket", lambda: storage.update_bucket(bucket, {"public": True})),
        ("empty_bucket", lambda: storage.empty_bucket(bucket)),
        ("delete_bucket", lambda: storage.delete_bucket(bucket)),
        ("upload", lambda: files.upload(target, b"intruder")),
        ("upload upsert", lambda: files.upload(name, b"intruder", {"upsert": "true"})),
        ("update", lambda: files.update(name, b"intruder")),
        ("download", lambda: files.download(name)),
        ("info", lambda: files.info(name)),
        ("move", lambda: files.move(name, target)),
        ("copy", lambda: files.copy(name, target)),
        ("create_signed_url", lambda: files.create_signed_url(name, 60)),
        ("create_signed_urls", lambda: files.create_signed_urls([name], 60)),
        ("create_signed_upload_url", lambda: files.create_signed_upload_url(target)),
    ]


def test_no_key_or_token_reaches_another_projects_storage(make_supabase, platform, project_a, project_b, admin_a,
                                                          admin_b, new_bucket):
    """Buckets are per project: another project's secret key or user sees none of A's buckets
    (404, `[]`), even by name; a key or user token of one project presented with another's
    `apikey` is 403 `tenant_mismatch` on every route; nothing changes on either side."""
    bucket_a = new_bucket(project_a, "cross", public=True)
    same_name = new_bucket(project_b, "cross", bucket_id=bucket_a, public=True)  # B's bucket of the same id
    assert same_name == bucket_a
    admin_a.from_(bucket_a).upload("secret.txt", b"A's bytes")
    admin_b.from_(bucket_a).upload("own.txt", b"B's bytes")
    private_a = new_bucket(project_a, "cross-priv")
    admin_a.from_(private_a).upload("secret.txt", b"A's private bytes")
    state_a = {bucket: _object_state(admin_a, bucket) for bucket in (bucket_a, private_a)}
    buckets_a = sorted((bucket.id, bucket.public) for bucket in admin_a.list_buckets())
    state_b = _object_state(admin_b, bucket_a)

    user_a = sign_up(make_supabase, platform, project_a, "cross-a")
    user_b = sign_up(make_supabase, platform, project_b, "cross-b")

    # B's own credentials name B's project: A's private bucket is not there, the public one
    # of the same id is B's own
    for label, storage in (("B's secret key", admin_b), ("B's user", user_b.storage)):
        assert private_a not in {bucket.id for bucket in storage.list_buckets()}, label
        for route, call in _every_route(storage, private_a, "secret.txt", "taken.txt"):
            # a user is refused the routes that manage buckets before any bucket is looked up
            refused_first = storage is user_b.storage and route in ("update_bucket", "empty_bucket", "delete_bucket")
            try:
                expect_storage_error(call, *(("403", "Unauthorized") if refused_first else ("404", "Bucket not found")))
            except AssertionError as error:
                raise AssertionError(f"{label}, {route} on {private_a}: {error}") from None
        assert storage.from_(private_a).list() == []
        assert storage.from_(private_a).list_v2().objects == []
        assert storage.from_(private_a).remove(["secret.txt"]) == []
    assert admin_b.from_(bucket_a).download("own.txt") == b"B's bytes"
    expect_storage_error(lambda: admin_b.from_(bucket_a).download("secret.txt"), "404", "not_found")
    assert names_of(user_b.storage.from_(bucket_a).list()) == ["own.txt"]

    # one project's key or token with the other's apikey
    mixed = {
        "A's apikey, B's user token": make_supabase(project_a.publishable, token=user_b.token).storage,
        "A's apikey, B's secret key as bearer": make_supabase(project_a.publishable, token=project_b.secret).storage,
        "B's apikey, A's user token": make_supabase(project_b.publishable, token=user_a.token).storage,
        "A's secret key as apikey, B's user token": make_supabase(project_a.secret, token=user_b.token).storage,
    }
    for label, storage in mixed.items():
        expect_storage_error(lambda: storage.list_buckets(), "403", "tenant_mismatch")
        for bucket in (bucket_a, private_a):
            for route, call in _every_route(storage, bucket, "secret.txt", "taken.txt"):
                try:
                    expect_storage_error(call, "403", "tenant_mismatch")
                except AssertionError as error:
                    raise AssertionError(f"{label}, {route} on {bucket}: {error}") from None
            expect_storage_error(lambda: storage.from_(bucket).list(), "403", "tenant_mismatch")
            expect_storage_error(lambda: storage.from_(bucket).list_v2(), "403", "tenant_mismatch")
            expect_storage_error(lambda: storage.from_(bucket).remove(["secret.txt"]), "403", "tenant_mismatch")
            expect_storage_error(lambda: storage.from_(bucket).exists("secret.txt"), "403", "tenant_mismatch")

    # a key of another project than the host names
    with httpx.Client(base_url=platform.storage_v1, timeout=30) as http:
        answer = http.get(f"/object/{bucket_a}/secret.txt",
                          headers={**storage_headers(project_b.secret), "Host": f"{project_a.slug}.{platform.domain}"})
        assert answer.status_code == 403, answer.text
        public = http.get(f"/object/public/{bucket_a}/own.txt", headers={"Host": f"{project_a.slug}.{platform.domain}"})
        assert public.status_code == 404, public.text  # B's object, asked of A's project by host

    assert {bucket: _object_state(admin_a, bucket) for bucket in (bucket_a, private_a)} == state_a
    assert sorted((bucket.id, bucket.public) for bucket in admin_a.list_buckets()) == buckets_a
    assert _object_state(admin_b, bucket_a) == state_b
    assert admin_a.get_bucket(private_a).public is False


# --- Names -------------------------------------------------------------------------------------


def test_names_that_could_escape_or_alias_are_invalid_keys(admin_a, new_bucket, project_a, platform, http):
    """Names are confined to their bucket and unique: `..` and `.` segments, a leading `/`, NUL
    and other control characters, a name over 1,024 bytes or a segment over 255, and names not in
    Unicode NFC are 422 `InvalidKey` (Supabase: 400), in the URL and in move/copy bodies alike,
    and nothing is stored. storage3 itself refuses `.`/`..` segments (a local ValueError) and
    strips one leading `/`, so those go through httpx, percent-encoded (httpx, like browsers,
    resolves a literal `..` before sending). A NUL in a URL is refused by the gateway before
    storage sees it (test_gateway.py), so storage's own answer to it is asked on its port."""
    bucket = new_bucket(project_a, "keys")
    files = admin_a.from_(bucket)
    files.upload("ok.txt", b"ok")
    headers = {**storage_headers(project_a.secret), "Content-Type": "text/plain"}

    # what storage3 refuses or rewrites before sending anything
    for local in ("../x", "a/../b", "a/./b"):
        with pytest.raises(ValueError):
            files.upload(local, b"x")
    assert files.upload("/abs.txt", b"x").full_path == f"{bucket}/abs.txt"  # one leading "/" stripped
    assert [row["name"] for row in files.remove(["abs.txt"])] == ["abs.txt"]

    # the same names on the wire, percent-encoded
    for raw_path in ("%2E%2E/x", "a/%2E%2E/b", "a/%2E/b", "%2E%2E", "%2Fabs", "a/%2F/b", "a%2F%2Fb"):
        answer = http.post(f"/object/{bucket}/{raw_path}", headers=headers, content=b"x")
        assert answer.status_code == 422, (raw_path, answer.status_code, answer.text)
        body = answer.json()
        assert (body["statusCode"], body["code"], body["error"]) == ("422", "InvalidKey", "InvalidKey"), raw_path
    with httpx.Client(base_url=f"{platform.storage_url}/storage/v1", timeout=30) as own_port:
        answer = own_port.post(f"/object/{bucket}/a%00b.txt", headers=headers, content=b"x")
        assert (answer.status_code, answer.json()["code"]) == (422, "InvalidKey"), answer.text

    # through storage3, which sends these as they are
    refused = {
        "a control character": "bell\x07.txt",
        "DEL": "del\x7f.txt",
        "a backslash": "a\\b.txt",
        "1,025 bytes": "/".join(["n" * 204] * 4 + ["n" * 205]),
        "a 256-byte segment": "dir/" + "s" * 256,
        "not NFC (e + combining acute)": "e\u0301.txt",
    }
    for label, name in refused.items():
        for call in (lambda: files.upload(name, b"x"), lambda: files.update(name, b"x"),
                     lambda: files.move("ok.txt", name), lambda: files.copy("ok.txt", name)):
            try:
                expect_storage_error(call, "422", "InvalidKey")
            except AssertionError as error:
                raise AssertionError(f"{label}: {error}") from None
    for destination in ("../escaped.txt", "/abs.txt", "a/./b.txt", "a//b.txt", "a/"):
        for call in (lambda: files.move("ok.txt", destination), lambda: files.copy("ok.txt", destination)):
            try:
                expect_storage_error(call, "422", "InvalidKey")
            except AssertionError as error:
                raise AssertionError(f"{destination!r}: {error}") from None

    # the longest name and segment that are allowed, and the NFC form of the refused one
    longest = "/".join(["n" * 204] * 5)
    assert len(longest.encode()) == 1024
    files.upload(longest, b"long")
    files.upload("dir/" + "s" * 255, b"segment")
    files.upload("\u00e9.txt", b"nfc")
    assert files.download("\u00e9.txt") == b"nfc"
    assert files.download(longest) == b"long"
    assert sorted(names_of(files.list())) == sorted(["dir", "n" * 204, "ok.txt", "\u00e9.txt"])
    assert files.download("ok.txt") == b"ok"


def test_a_nul_in_a_move_or_copy_body_is_an_invalid_key(admin_a, new_bucket, project_a):
    """A NUL in a name is 422 `InvalidKey` in a URL (on storage's port); in the JSON body of a
    move or copy it is the same name, so the same answer (README: a NUL in a JSON string is
    422 on that field), and nothing is stored."""
    bucket = new_bucket(project_a, "nul")
    files = admin_a.from_(bucket)
    files.upload("ok.txt", b"ok")
    expect_storage_error(lambda: files.move("ok.txt", "nul\x00.txt"), "422", "InvalidKey")
    expect_storage_error(lambda: files.copy("ok.txt", "nul\x00.txt"), "422", "InvalidKey")
    assert names_of(files.list()) == ["ok.txt"]


def test_a_url_path_is_not_normalised_into_another_name(admin_a, new_bucket, project_a, platform):
    """ObjectName refuses `..` and `.` segments, empty segments and a trailing `/` (422
    `InvalidKey`), as move and copy bodies show. In an upload's URL they must be refused too,
    not resolved or dropped into another name (`e//f` stored as `e/f`). Sent byte for byte with
    http.client: httpx resolves dot segments itself, as browsers and curl do, but a client need
    not."""
    bucket = new_bucket(project_a, "segments")
    headers = {**storage_headers(project_a.secret), "Content-Type": "text/plain"}
    base = urllib.parse.urlsplit(platform.storage_v1)
    answers = {}
    for raw_path in ("a/../b", "a/./c", "e//f", "g/h/", "/lead"):
        connection = HTTPConnection(base.hostname, base.port, timeout=30)
        try:
            connection.request("POST", f"{base.path}/object/{bucket}/{raw_path}", body=raw_path.encode(), headers=headers)
            answer = connection.getresponse()
            answers[raw_path] = (answer.status, json.loads(answer.read() or b"null"))
        finally:
            connection.close()
    stored = {path: answer for path, answer in answers.items() if (answer[0], (answer[1] or {}).get("code")) != (422, "InvalidKey")}
    assert stored == {}, "not refused: " + repr(stored)
    assert admin_a.from_(bucket).list() == []


def test_list_v2_pages_by_cursor_with_and_without_folders(admin_a, new_bucket, project_a, make_supabase, platform):
    """§3.4 `list_v2`: objects by full key in byte order; `with_delimiter` rolls a level up into
    folders (`name` ending in `/`, `key` its last segment); `limit` pages with `hasNext` and an
    opaque `nextCursor` (absent on the last page); an `owner` bucket lists a user's own only;
    a sort by another column than the name is 400 (the platform's departure, §12)."""
    bucket = new_bucket(project_a, "v2")
    files = admin_a.from_(bucket)
    for name in ("a/1.txt", "a/2.txt", "a/b/3.txt", "c.txt", "d.txt"):
        files.upload(name, name.encode(), {"content-type": "text/plain"})

    flat = files.list_v2()
    assert [o.name for o in flat.objects] == ["a/1.txt", "a/2.txt", "a/b/3.txt", "c.txt", "d.txt"]
    assert flat.folders == [] and flat.hasNext is False and flat.nextCursor is None
    assert flat.objects[2].key == "3.txt" and flat.objects[0].metadata["size"] == len(b"a/1.txt")

    level = files.list_v2({"with_delimiter": True})
    assert [(f.name, f.key) for f in level.folders] == [("a/", "a")]
    assert [o.name for o in level.objects] == ["c.txt", "d.txt"]
    inner = files.list_v2({"prefix": "a/", "with_delimiter": True})
    assert [f.name for f in inner.folders] == ["a/b/"] and [o.name for o in inner.objects] == ["a/1.txt", "a/2.txt"]

    seen, cursor, pages = [], None, 0
    while True:
        options = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = files.list_v2(options)
        seen += [o.name for o in page.objects]
        pages += 1
        if not page.hasNext:
            assert page.nextCursor is None
            break
        cursor = page.nextCursor
        assert cursor
    assert seen == [o.name for o in flat.objects] and pages == 3

    expect_storage_error(lambda: files.list_v2({"sortBy": {"column": "created_at", "order": "desc"}}), "400", "InvalidRequest")

    owned = new_bucket(project_a, "v2-owner", user_access="owner")
    alice, bob = sign_up(make_supabase, platform, project_a, "alice"), sign_up(make_supabase, platform, project_a, "bob")
    alice.storage.from_(owned).upload("alice/a.txt", b"a")
    bob.storage.from_(owned).upload("bob/b.txt", b"b")
    assert [o.name for o in alice.storage.from_(owned).list_v2().objects] == ["alice/a.txt"]
    assert [o.name for o in admin_a.from_(owned).list_v2().objects] == ["alice/a.txt", "bob/b.txt"]
