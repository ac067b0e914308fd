"""tuspy (1.1.0, from PyPI) against the platform's resumable uploads (`/storage/v1/upload/resumable`).

As Supabase documents resumable uploads for tus-js-client and tuspy: the endpoint
`<base>/storage/v1/upload/resumable`, the client headers `authorization` (Bearer), `apikey` and
`x-upsert`, and the metadata `bucketName`, `objectName`, `contentType`, `cacheControl`. Supabase
tells tus-js-client users to use 6 MB chunks; the server accepts any chunk size (it does not
enforce 6 MB; storage-reference §6), and the tests use both.

The point (issue 12): upload, kill the connection, resume, and the bytes match; the object is
read back through storage3 (`create_client(...).storage`) and compared byte for byte and by
SHA-256. What each answer must be is docs/protocols/storage-reference.md §6 and §12.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import urllib.parse

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError
from tusclient.storage.filestorage import FileStorage

from platform_setup import Platform, Project
from support import new_email, storage_headers, strong_password

CHUNK = 6 * 1024 * 1024  # Supabase's documented chunk size


def endpoint(platform: Platform) -> str:
    return f"{platform.storage_v1}/upload/resumable"


def tus(platform: Platform, key: str, token: str | None = None, upsert: bool = False) -> tus_client.TusClient:
    """A TusClient as Supabase's docs set one up: the endpoint and the headers sent on every request."""
    return tus_client.TusClient(endpoint(platform), headers={
        "authorization": f"Bearer {token or key}", "apikey": key, "x-upsert": "true" if upsert else "false"})


def metadata(bucket: str, name: str, content_type: str = "application/octet-stream") -> dict:
    return {"bucketName": bucket, "objectName": name, "contentType": content_type, "cacheControl": "3600"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_offset(platform: Platform, url: str, key: str, token: str | None = None) -> httpx.Response:
    return httpx.head(url, headers=storage_headers(key, token, **{"Tus-Resumable": "1.0.0"}), timeout=30)


def cut_patch(url: str, key: str, offset: int, declared: int, body: bytes) -> None:
    """A PATCH through the gateway that sends `body` of the `declared` bytes and hangs up: the
    connection closes mid-body. Returns once the gateway has given up on the request (its answer
    read to the end), so the service has seen its side closed too."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=60) as connection:
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\napikey: {key}\r\nAuthorization: Bearer {key}\r\n"
                f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {declared}\r\n\r\n").encode()
        connection.sendall(head + body)
        connection.shutdown(socket.SHUT_WR)
        try:
            while connection.recv(65536):
                pass
        except ConnectionResetError:
            pass


def wait_for_offset_past(platform: Platform, url: str, key: str, offset: int, timeout: float = 30) -> int:
    """Polls HEAD until the upload's durable offset has moved past `offset` (the server has
    noticed the cut connection and recorded what arrived): state, not a fixed wait."""
    deadline = time.monotonic() + timeout
    while True:
        answer = upload_offset(platform, url, key)
        assert answer.status_code == 200, answer.text
        current = int(answer.headers["upload-offset"])
        if current > offset or time.monotonic() > deadline:
            return current
        time.sleep(0.05)


# --- Upload --------------------------------------------------------------------------------------


def test_tuspy_uploads_in_6mb_chunks_and_whole(make_supabase, new_bucket, project_a, platform):
    bucket = new_bucket(project_a, "tus")
    data = os.urandom(2 * CHUNK + 12345)
    uploader = tus(platform, project_a.secret).uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK,
                                                        metadata=metadata(bucket, "videos/clip.bin"))
    uploader.upload()
    assert uploader.offset == len(data)
    # The Location, relative, was resolved against the endpoint: the gateway's.
    assert uploader.url.startswith(endpoint(platform) + "/")

    files = make_supabase(project_a.secret).storage.from_(bucket)
    downloaded = files.download("videos/clip.bin")
    assert len(downloaded) == len(data) and sha256(downloaded) == sha256(data)
    info = files.info("videos/clip.bin")
    assert info["size"] == len(data) and info["cache_control"] == "max-age=3600"
    assert info["content_type"] == "application/octet-stream" and info["etag"] == f'"{sha256(data)}"'
    # Done: the upload is gone.
    assert upload_offset(platform, uploader.url, project_a.secret).status_code == 404

    # tuspy's default chunk size sends the whole file in one PATCH; an empty file is the POST alone.
    whole = os.urandom(100_000)
    tus(platform, project_a.secret).uploader(file_stream=io.BytesIO(whole), metadata=metadata(bucket, "whole.bin")).upload()
    assert files.download("whole.bin") == whole
    tus(platform, project_a.secret).uploader(file_stream=io.BytesIO(b""), metadata=metadata(bucket, "empty.bin")).upload()
    assert files.download("empty.bin") == b"" and files.info("empty.bin")["size"] == 0


def test_kill_the_connection_resume_and_the_bytes_match(make_supabase, new_bucket, project_a, platform):
    """Part of the file through tuspy, then a PATCH cut mid-stream (the socket reset halfway),
    then a new Uploader given the upload's URL resumes from the server's durable offset."""
    bucket = new_bucket(project_a, "tuscut")
    data = os.urandom(3 * CHUNK + 777)
    first = tus(platform, project_a.secret).uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK,
                                                     metadata=metadata(bucket, "big.bin"))
    first.upload(stop_at=CHUNK)
    assert first.offset == CHUNK
    files = make_supabase(project_a.secret).storage.from_(bucket)
    assert files.exists("big.bin") is False  # never a partial object

    cut_patch(first.url, project_a.secret, CHUNK, len(data) - CHUNK, data[CHUNK:CHUNK + 2 * 1024 * 1024])
    durable = wait_for_offset_past(platform, first.url, project_a.secret, CHUNK)
    assert CHUNK < durable <= CHUNK + 2 * 1024 * 1024
    assert files.exists("big.bin") is False

    resumed = tus(platform, project_a.secret).uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK, url=first.url,
                                                       metadata=metadata(bucket, "big.bin"), retries=2, retry_delay=1)
    assert resumed.offset == durable  # from the server's HEAD
    resumed.upload()
    assert resumed.offset == len(data)

    downloaded = files.download("big.bin")
    assert len(downloaded) == len(data) and sha256(downloaded) == sha256(data)
    assert files.info("big.bin")["etag"] == f'"{sha256(data)}"'


def test_resume_from_the_stored_fingerprint(make_supabase, new_bucket, project_a, platform, tmp_path):
    """tuspy's own resumption: `store_url` keeps the URL under the file's fingerprint, and a new
    Uploader for the same file picks it up and continues where the server says."""
    bucket = new_bucket(project_a, "tusfp")
    path = tmp_path / "photo.jpg"
    data = os.urandom(CHUNK + 4321)
    path.write_bytes(data)
    storage = FileStorage(str(tmp_path / "urls.json"))
    first = tus(platform, project_a.secret).uploader(str(path), chunk_size=1024 * 1024, store_url=True, url_storage=storage,
                                                     metadata=metadata(bucket, "photo.jpg", "image/jpeg"))
    first.upload(stop_at=3 * 1024 * 1024)
    del first  # the process "dies"

    again = tus(platform, project_a.secret).uploader(str(path), chunk_size=CHUNK, store_url=True, url_storage=storage,
                                                     metadata=metadata(bucket, "photo.jpg", "image/jpeg"))
    assert again.offset == 3 * 1024 * 1024
    again.upload()
    files = make_supabase(project_a.secret).storage.from_(bucket)
    assert files.download("photo.jpg") == data
    assert files.info("photo.jpg")["content_type"] == "image/jpeg"


# --- Rules ---------------------------------------------------------------------------------------


def test_upsert_limits_and_mime_types_as_for_rest_uploads(make_supabase, new_bucket, project_a, platform):
    bucket = new_bucket(project_a, "tusrule", file_size_limit=1000, allowed_mime_types=["image/*"])
    files = make_supabase(project_a.secret).storage.from_(bucket)
    files.upload("taken.png", b"old", {"content-type": "image/png"})

    def create(name: str, data: bytes, content_type: str = "image/png", upsert: bool = False):
        tus(platform, project_a.secret, upsert=upsert).uploader(
            file_stream=io.BytesIO(data), metadata=metadata(bucket, name, content_type)).upload()

    with pytest.raises(TusCommunicationError) as caught:
        create("taken.png", b"new")
    assert caught.value.status_code == 409
    create("taken.png", b"new", upsert=True)
    assert files.download("taken.png") == b"new"
    with pytest.raises(TusCommunicationError) as caught:
        create("big.png", b"x" * 1001)
    assert caught.value.status_code == 413
    with pytest.raises(TusCommunicationError) as caught:
        create("note.txt", b"text", "text/plain")
    assert caught.value.status_code == 415
    assert files.exists("big.png") is False and files.exists("note.txt") is False


def test_who_may_upload_and_resume(make_supabase, new_bucket, project_a, project_b, platform):
    """A user's token uploads (and owns the object, readable with their token); the publishable
    key alone cannot write; another project's key and another user do not find the upload."""
    bucket = new_bucket(project_a, "tususer")
    app = make_supabase(project_a.publishable, base=platform.base_url)
    session = app.auth.sign_up({"email": new_email("tus"), "password": strong_password()}).session
    assert session is not None
    token = session.access_token

    with pytest.raises(TusCommunicationError) as caught:
        tus(platform, project_a.publishable).uploader(file_stream=io.BytesIO(b"x"), metadata=metadata(bucket, "anon.bin")).upload()
    assert caught.value.status_code == 404  # a private bucket is not found by the publishable key

    data = os.urandom(300_000)
    mine = tus(platform, project_a.publishable, token=token).uploader(file_stream=io.BytesIO(data), chunk_size=100_000,
                                                                      metadata=metadata(bucket, "mine.bin"))
    mine.upload(stop_at=100_000)
    # Another project's secret key, and this project's publishable key alone, do not find it.
    assert upload_offset(platform, mine.url, project_b.secret).status_code == 404
    assert upload_offset(platform, mine.url, project_a.publishable).status_code == 404
    with pytest.raises(TusCommunicationError) as caught:
        tus(platform, project_b.secret).uploader(file_stream=io.BytesIO(data), url=mine.url)
    assert caught.value.status_code == 404
    assert upload_offset(platform, mine.url, project_a.publishable, token).headers["upload-offset"] == "100000"
    mine.upload()

    user_storage = make_supabase(project_a.publishable, token=token).storage.from_(bucket)
    assert user_storage.download("mine.bin") == data
    # Complete: the upload is gone.
    assert upload_offset(platform, mine.url, project_a.publishable, token).status_code == 404


def test_termination_and_tus_errors(new_bucket, project_a, platform):
    bucket = new_bucket(project_a, "tusdel")
    uploader = tus(platform, project_a.secret).uploader(file_stream=io.BytesIO(b"abcdef"), chunk_size=2,
                                                        metadata=metadata(bucket, "t.bin"))
    uploader.upload(stop_at=2)
    headers = storage_headers(project_a.secret, **{"Tus-Resumable": "1.0.0"})
    # A wrong offset is 409, in TUS's words; a missing Tus-Resumable 412.
    conflict = httpx.patch(uploader.url, content=b"zz", timeout=30,
                           headers={**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert conflict.status_code == 409 and conflict.text == "Upload-Offset conflict\n"
    assert conflict.headers["tus-resumable"] == "1.0.0"
    unversioned = httpx.head(uploader.url, headers=storage_headers(project_a.secret), timeout=30)
    assert unversioned.status_code == 412
    assert httpx.delete(uploader.url, headers=headers, timeout=30).status_code == 204
    assert httpx.head(uploader.url, headers=headers, timeout=30).status_code == 404
