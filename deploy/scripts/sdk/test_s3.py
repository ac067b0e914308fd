"""boto3 (1.44.8, from PyPI, unchanged) against the platform's S3-compatible endpoint
(`/storage/v1/s3`), configured as Supabase documents it: the endpoint `<base>/storage/v1/s3`,
a region, SigV4 and path-style addressing, with an access key the project issues through
storage's developer API (`/v1/tenants/{slug}/s3/credentials`, secret key only).

What each test expects is docs/protocols/storage-reference.md §8 (routes, XML shapes, SigV4,
errors as S3 XML with real statuses) with the platform's departures in §12 (ETags are SHA-256;
keys act as the project itself, never another's). Every test makes its own buckets (cleaned up
after it, `new_bucket`) and keys (revoked after it).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

import random

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from platform_setup import Platform, Project
from support import storage_headers

REGION = "us-east-1"
MiB = 1024 * 1024


# --- Helpers -----------------------------------------------------------------------------------


def credentials_url(platform: Platform, slug: str) -> str:
    """Storage's developer API: through the gateway's /platform/storage prefix when the suite
    runs behind it, else on storage's own port."""
    if platform.storage_base_url == platform.base_url:
        return f"{platform.base_url}/platform/storage/v1/tenants/{slug}/s3/credentials"
    return f"{platform.storage_url}/v1/tenants/{slug}/s3/credentials"


class Keys:
    """S3 access keys a test issues, revoked after it."""

    def __init__(self, platform: Platform):
        self.platform = platform
        self.http = httpx.Client(timeout=30)
        self.issued: list[tuple[Project, str]] = []

    def issue(self, project: Project, description: str = "sdk acceptance") -> dict:
        answer = self.http.post(credentials_url(self.platform, project.slug), headers={"apikey": project.secret},
                                json={"description": description})
        assert answer.status_code == 201, answer.text
        key = answer.json()
        self.issued.append((project, key["id"]))
        return key

    def revoke(self, project: Project, key_id: str) -> httpx.Response:
        return self.http.delete(f"{credentials_url(self.platform, project.slug)}/{key_id}", headers={"apikey": project.secret})

    def revoke_all(self) -> None:
        for project, key_id in self.issued:
            assert self.revoke(project, key_id).status_code in (204, 404)


@pytest.fixture
def keys(platform: Platform):
    made = Keys(platform)
    yield made
    try:
        made.revoke_all()
    finally:
        made.http.close()


def s3_client(platform: Platform, access_key_id: str, secret: str):
    """boto3's S3 client as Supabase's docs configure it."""
    return boto3.client(
        "s3",
        endpoint_url=f"{platform.storage_v1}/s3",
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_a(platform: Platform, project_a: Project, keys: Keys):
    key = keys.issue(project_a)
    return s3_client(platform, key["access_key_id"], key["secret_access_key"])


def error_of(info: pytest.ExceptionInfo) -> tuple[int, str]:
    response = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def new_s3_bucket(s3, new_bucket, project: Project, tag: str) -> str:
    """A bucket made through S3's CreateBucket, emptied and deleted after the test."""
    bucket = new_bucket.name(tag)
    s3.create_bucket(Bucket=bucket)
    new_bucket.adopt(project, bucket)
    return bucket


# --- Access keys -------------------------------------------------------------------------------


def test_s3_access_keys_are_issued_listed_and_revoked_with_the_secret_key_only(platform, project_a, project_b, keys):
    url = credentials_url(platform, project_a.slug)
    key = keys.issue(project_a, "ci uploader")
    assert re.fullmatch(r"[0-9a-f]{32}", key["access_key_id"]) and re.fullmatch(r"[0-9a-f]{64}", key["secret_access_key"])
    assert key["description"] == "ci uploader" and key["revoked_at"] is None

    listed = httpx.get(url, headers={"apikey": project_a.secret}).json()["credentials"]
    mine = [item for item in listed if item["id"] == key["id"]]
    assert len(mine) == 1 and "secret_access_key" not in mine[0], "the secret is shown once, at creation"

    # The publishable key, another project's secret key, and no key at all are refused.
    assert httpx.post(url, headers={"apikey": project_a.publishable}, json={}).status_code == 403
    assert httpx.get(url, headers={"apikey": project_b.secret}).status_code == 403
    assert httpx.get(url).status_code == 401

    assert keys.revoke(project_a, key["id"]).status_code == 204
    assert keys.revoke(project_a, key["id"]).status_code == 404
    revoked = [item for item in httpx.get(url, headers={"apikey": project_a.secret}).json()["credentials"] if item["id"] == key["id"]]
    assert revoked[0]["revoked_at"] is not None


def test_s3_a_revoked_key_and_a_wrong_secret_are_refused_with_403(platform, project_a, keys, new_bucket):
    key = keys.issue(project_a)
    s3 = s3_client(platform, key["access_key_id"], key["secret_access_key"])
    bucket = new_s3_bucket(s3, new_bucket, project_a, "s3rev")
    s3.put_object(Bucket=bucket, Key="before.txt", Body=b"fine")

    wrong = s3_client(platform, key["access_key_id"], "0" * 64)
    with pytest.raises(ClientError) as info:
        wrong.list_objects_v2(Bucket=bucket)
    assert error_of(info) == (403, "SignatureDoesNotMatch")

    assert keys.revoke(project_a, key["id"]).status_code == 204
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="after.txt", Body=b"refused")
    assert error_of(info) == (403, "InvalidAccessKeyId")
    with pytest.raises(ClientError) as info:
        s3.list_buckets()
    assert error_of(info) == (403, "InvalidAccessKeyId")


def test_s3_a_key_reaches_its_own_project_only(platform, project_a, project_b, keys, new_bucket):
    s3_a = s3_client(platform, **_pair(keys.issue(project_a)))
    s3_b = s3_client(platform, **_pair(keys.issue(project_b)))
    theirs = new_s3_bucket(s3_b, new_bucket, project_b, "s3b")
    s3_b.put_object(Bucket=theirs, Key="secret.txt", Body=b"project b")

    assert theirs not in [bucket["Name"] for bucket in s3_a.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as info:
        s3_a.head_bucket(Bucket=theirs)
    assert error_of(info) == (404, "404")
    with pytest.raises(ClientError) as info:
        s3_a.get_object(Bucket=theirs, Key="secret.txt")
    assert error_of(info) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as info:
        s3_a.put_object(Bucket=theirs, Key="planted.txt", Body=b"x")
    assert error_of(info) == (404, "NoSuchBucket")
    assert [item["Key"] for item in s3_b.list_objects_v2(Bucket=theirs)["Contents"]] == ["secret.txt"]


def _pair(key: dict) -> dict:
    return {"access_key_id": key["access_key_id"], "secret": key["secret_access_key"]}


# --- Buckets -----------------------------------------------------------------------------------


def test_s3_buckets_are_created_listed_headed_and_deleted(s3_a, project_a, new_bucket):
    bucket = new_bucket.name("s3bk")
    created = s3_a.create_bucket(Bucket=bucket)
    new_bucket.adopt(project_a, bucket)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200 and created["Location"] == f"/{bucket}"
    with pytest.raises(ClientError) as info:
        s3_a.create_bucket(Bucket=bucket)
    assert error_of(info) == (409, "BucketAlreadyExists")

    listed = s3_a.list_buckets()["Buckets"]
    assert bucket in [item["Name"] for item in listed]
    assert all(item["CreationDate"] is not None for item in listed)
    assert s3_a.head_bucket(Bucket=bucket)["BucketRegion"] == REGION
    assert s3_a.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION

    s3_a.put_object(Bucket=bucket, Key="keep.txt", Body=b"x")
    # Operations not offered are refused as such, never taken for another (DeleteBucketCors is a
    # DELETE on the bucket; PutObjectTagging a PUT on the object).
    for call in (lambda: s3_a.delete_bucket_cors(Bucket=bucket),
                 lambda: s3_a.put_object_tagging(Bucket=bucket, Key="keep.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}),
                 lambda: s3_a.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == (501, "NotImplemented")
    assert s3_a.get_object(Bucket=bucket, Key="keep.txt")["Body"].read() == b"x"
    assert s3_a.get_object_tagging(Bucket=bucket, Key="keep.txt")["TagSet"] == []
    with pytest.raises(ClientError) as info:
        s3_a.delete_bucket(Bucket=bucket)
    assert error_of(info)[0] == 409
    s3_a.delete_object(Bucket=bucket, Key="keep.txt")
    assert s3_a.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3_a.head_bucket(Bucket=bucket)
    assert error_of(info) == (404, "404")
    # A name the Storage API's routes use in a bucket's place is refused, as on /bucket.
    with pytest.raises(ClientError) as info:
        s3_a.create_bucket(Bucket="public")
    assert error_of(info) == (400, "InvalidBucketName")


# --- Objects -----------------------------------------------------------------------------------


def test_s3_objects_round_trip_with_range_head_copy_and_delete(s3_a, project_a, new_bucket, make_supabase):
    bucket = new_s3_bucket(s3_a, new_bucket, project_a, "s3obj")
    body = os.urandom(100_000)
    put = s3_a.put_object(Bucket=bucket, Key="dir/a b+c.bin", Body=body, ContentType="application/x-test",
                          Metadata={"origin": "boto3"}, CacheControl="max-age=60")
    assert put["ETag"] == '"' + hashlib.sha256(body).hexdigest() + '"'

    got = s3_a.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test" and got["Metadata"] == {"origin": "boto3"}
    assert got["CacheControl"] == "max-age=60" and got["ContentLength"] == len(body)

    part = s3_a.get_object(Bucket=bucket, Key="dir/a b+c.bin", Range="bytes=1000-1999")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["Body"].read() == body[1000:2000] and part["ContentRange"] == f"bytes 1000-1999/{len(body)}"

    head = s3_a.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert s3_a.get_object(Bucket=bucket, Key="dir/a b+c.bin", IfMatch=put["ETag"])["ContentLength"] == len(body)
    with pytest.raises(ClientError) as info:
        s3_a.get_object(Bucket=bucket, Key="dir/a b+c.bin", IfMatch='"' + "0" * 64 + '"')
    assert error_of(info) == (412, "PreconditionFailed")
    digest = base64.b64encode(hashlib.md5(b"checked").digest()).decode()
    assert s3_a.put_object(Bucket=bucket, Key="md5.txt", Body=b"checked", ContentMD5=digest)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as info:
        s3_a.put_object(Bucket=bucket, Key="md5.txt", Body=b"altered", ContentMD5=digest)
    assert error_of(info) == (400, "BadDigest")
    s3_a.delete_object(Bucket=bucket, Key="md5.txt")

    # The same object through the Storage API (storage3), byte for byte.
    storage = make_supabase(project_a.secret).storage
    assert storage.from_(bucket).download("dir/a b+c.bin") == body

    copied = s3_a.copy_object(Bucket=bucket, Key="copy/of it.bin", CopySource={"Bucket": bucket, "Key": "dir/a b+c.bin"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3_a.get_object(Bucket=bucket, Key="copy/of it.bin")["Body"].read() == body
    replaced = s3_a.copy_object(Bucket=bucket, Key="copy/typed.bin", CopySource=f"{bucket}/dir/a b+c.bin",
                                MetadataDirective="REPLACE", ContentType="text/plain", Metadata={"copied": "yes"})
    assert replaced["ResponseMetadata"]["HTTPStatusCode"] == 200
    typed = s3_a.head_object(Bucket=bucket, Key="copy/typed.bin")
    assert typed["ContentType"] == "text/plain" and typed["Metadata"] == {"copied": "yes"}

    assert s3_a.delete_object(Bucket=bucket, Key="copy/of it.bin")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3_a.delete_object(Bucket=bucket, Key="copy/of it.bin")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3_a.head_object(Bucket=bucket, Key="copy/of it.bin")
    assert error_of(info) == (404, "404")
    with pytest.raises(ClientError) as info:
        s3_a.get_object(Bucket=bucket, Key="copy/of it.bin")
    assert error_of(info) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as info:
        s3_a.get_object(Bucket=bucket, Key="dir/a b+c.bin", Range="bytes=200000-")
    assert error_of(info) == (416, "InvalidRange")

    deleted = s3_a.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "dir/a b+c.bin"}, {"Key": "copy/typed.bin"},
                                                                     {"Key": "never/was.txt"}]})
    assert sorted(item["Key"] for item in deleted["Deleted"]) == ["copy/typed.bin", "dir/a b+c.bin", "never/was.txt"]
    assert "Errors" not in deleted
    assert s3_a.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_s3_list_objects_v2_with_prefix_delimiter_and_continuation(s3_a, project_a, new_bucket):
    bucket = new_s3_bucket(s3_a, new_bucket, project_a, "s3ls")
    keys = ["a/1.txt", "a/2.txt", "a/deep/3.txt", "b/1.txt", "c.txt", "d e+f.txt", "é.txt"]
    for key in keys:
        s3_a.put_object(Bucket=bucket, Key=key, Body=key.encode())

    everything = s3_a.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in everything["Contents"]] == sorted(keys, key=lambda k: k.encode())
    assert everything["KeyCount"] == len(keys) and everything["IsTruncated"] is False
    assert all(item["Size"] == len(item["Key"].encode()) and item["StorageClass"] == "STANDARD" for item in everything["Contents"])

    level = s3_a.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [item["Prefix"] for item in level["CommonPrefixes"]] == ["a/", "b/"]
    assert [item["Key"] for item in level["Contents"]] == ["c.txt", "d e+f.txt", "é.txt"]

    under_a = s3_a.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [item["Key"] for item in under_a["Contents"]] == ["a/1.txt", "a/2.txt"]
    assert [item["Prefix"] for item in under_a["CommonPrefixes"]] == ["a/deep/"]
    assert under_a["Prefix"] == "a/"

    # Pages of two, followed by their continuation tokens, and by boto3's own paginator.
    seen, token = [], None
    while True:
        page = s3_a.list_objects_v2(Bucket=bucket, MaxKeys=2, **({"ContinuationToken": token} if token else {}))
        seen += [item["Key"] for item in page.get("Contents", [])]
        assert page["KeyCount"] <= 2
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == [item["Key"] for item in everything["Contents"]]
    paginated = [item["Key"] for page in s3_a.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
                 for item in page.get("Contents", [])]
    assert paginated == seen
    after = s3_a.list_objects_v2(Bucket=bucket, StartAfter="b/1.txt")
    assert [item["Key"] for item in after["Contents"]] == ["c.txt", "d e+f.txt", "é.txt"]
    v1 = s3_a.list_objects(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [item["Key"] for item in v1["Contents"]] == ["a/1.txt", "a/2.txt"]


def test_s3_limits_apply_413_and_bad_input_is_a_clear_4xx(s3_a, project_a, new_bucket):
    bucket = new_bucket(project_a, "s3lim", file_size_limit=MiB)
    with pytest.raises(ClientError) as info:
        s3_a.put_object(Bucket=bucket, Key="big.bin", Body=os.urandom(MiB + 1))
    assert error_of(info) == (413, "EntityTooLarge")
    with pytest.raises(ClientError) as info:
        s3_a.put_object(Bucket=bucket, Key="bad/../name.txt", Body=b"x")
    assert error_of(info)[0] in (400, 422)
    upload = s3_a.create_multipart_upload(Bucket=bucket, Key="parts.bin")
    with pytest.raises(ClientError) as info:
        s3_a.upload_part(Bucket=bucket, Key="parts.bin", UploadId=upload["UploadId"], PartNumber=1, Body=os.urandom(MiB + 1))
    assert error_of(info) == (413, "EntityTooLarge")
    with pytest.raises(ClientError) as info:
        s3_a.upload_part(Bucket=bucket, Key="parts.bin", UploadId="not-an-upload", PartNumber=1, Body=b"x")
    assert error_of(info) == (404, "NoSuchUpload")
    s3_a.abort_multipart_upload(Bucket=bucket, Key="parts.bin", UploadId=upload["UploadId"])
    assert s3_a.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# --- Multipart ---------------------------------------------------------------------------------


def test_s3_multipart_create_upload_part_list_complete_and_abort(s3_a, project_a, new_bucket):
    bucket = new_s3_bucket(s3_a, new_bucket, project_a, "s3mp")
    first, second = os.urandom(5 * MiB), os.urandom(123_457)
    upload = s3_a.create_multipart_upload(Bucket=bucket, Key="joined.bin", ContentType="application/x-joined")
    assert upload["Bucket"] == bucket and upload["Key"] == "joined.bin"
    upload_id = upload["UploadId"]
    one = s3_a.upload_part(Bucket=bucket, Key="joined.bin", UploadId=upload_id, PartNumber=1, Body=first)
    two = s3_a.upload_part(Bucket=bucket, Key="joined.bin", UploadId=upload_id, PartNumber=2, Body=second)
    assert one["ETag"] == '"' + hashlib.md5(first).hexdigest() + '"'
    listed = s3_a.list_parts(Bucket=bucket, Key="joined.bin", UploadId=upload_id)["Parts"]
    assert [(part["PartNumber"], part["Size"], part["ETag"]) for part in listed] == \
        [(1, len(first), one["ETag"]), (2, len(second), two["ETag"])]
    assert [item["UploadId"] for item in s3_a.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [upload_id]

    done = s3_a.complete_multipart_upload(Bucket=bucket, Key="joined.bin", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": one["ETag"]}, {"PartNumber": 2, "ETag": two["ETag"]}]})
    assert done["Key"] == "joined.bin" and done["ETag"] == '"' + hashlib.sha256(first + second).hexdigest() + '"'
    got = s3_a.get_object(Bucket=bucket, Key="joined.bin")
    assert got["Body"].read() == first + second and got["ContentType"] == "application/x-joined"
    with pytest.raises(ClientError) as info:
        s3_a.list_parts(Bucket=bucket, Key="joined.bin", UploadId=upload_id)
    assert error_of(info) == (404, "NoSuchUpload")

    # A wrong ETag in the list is refused; an aborted upload is gone.
    other = s3_a.create_multipart_upload(Bucket=bucket, Key="dropped.bin")["UploadId"]
    s3_a.upload_part(Bucket=bucket, Key="dropped.bin", UploadId=other, PartNumber=1, Body=b"abc")
    with pytest.raises(ClientError) as info:
        s3_a.complete_multipart_upload(Bucket=bucket, Key="dropped.bin", UploadId=other, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]})
    assert error_of(info) == (400, "InvalidPart")
    assert s3_a.abort_multipart_upload(Bucket=bucket, Key="dropped.bin", UploadId=other)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as info:
        s3_a.abort_multipart_upload(Bucket=bucket, Key="dropped.bin", UploadId=other)
    assert error_of(info) == (404, "NoSuchUpload")
    assert s3_a.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as info:
        s3_a.head_object(Bucket=bucket, Key="dropped.bin")
    assert error_of(info) == (404, "404")


def test_s3_upload_file_and_copy_over_8_mb_go_multipart(s3_a, project_a, new_bucket, tmp_path):
    bucket = new_s3_bucket(s3_a, new_bucket, project_a, "s3tf")
    source = tmp_path / "large.bin"
    data = os.urandom(11 * MiB + 17)
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=5 * MiB)
    parts_seen = []
    s3_a.meta.events.register("before-call.s3.UploadPart", lambda **kwargs: parts_seen.append(kwargs["params"]["query_string"]))
    s3_a.upload_file(str(source), bucket, "big/large.bin", Config=config)
    assert len(parts_seen) == 3, "boto3 itself went multipart (three parts of at most 5 MiB)"

    target = tmp_path / "back.bin"
    s3_a.download_file(bucket, "big/large.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert s3_a.head_object(Bucket=bucket, Key="big/large.bin")["ContentLength"] == len(data)

    # boto3's managed copy of an object over the threshold goes multipart too: UploadPartCopy.
    copies_seen = []
    s3_a.meta.events.register("before-call.s3.UploadPartCopy", lambda **kwargs: copies_seen.append(1))
    s3_a.copy({"Bucket": bucket, "Key": "big/large.bin"}, bucket, "big/copy.bin", Config=config)
    assert len(copies_seen) == 3
    copied = s3_a.get_object(Bucket=bucket, Key="big/copy.bin")["Body"].read()
    assert hashlib.sha256(copied).hexdigest() == hashlib.sha256(data).hexdigest()
    upload = s3_a.create_multipart_upload(Bucket=bucket, Key="big/slice.bin")["UploadId"]
    part = s3_a.upload_part_copy(Bucket=bucket, Key="big/slice.bin", UploadId=upload, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "big/large.bin"}, CopySourceRange="bytes=100-199")
    assert part["CopyPartResult"]["ETag"] == '"' + hashlib.md5(data[100:200]).hexdigest() + '"'
    with pytest.raises(ClientError) as info:
        s3_a.upload_part_copy(Bucket=bucket, Key="big/slice.bin", UploadId=upload, PartNumber=2,
                              CopySource={"Bucket": bucket, "Key": "big/large.bin"}, CopySourceRange=f"bytes=0-{len(data)}")
    assert error_of(info) == (400, "InvalidArgument")
    s3_a.complete_multipart_upload(Bucket=bucket, Key="big/slice.bin", UploadId=upload,
                                   MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3_a.get_object(Bucket=bucket, Key="big/slice.bin")["Body"].read() == data[100:200]


def test_s3_presigned_urls_get_and_put(s3_a, project_a, new_bucket):
    bucket = new_s3_bucket(s3_a, new_bucket, project_a, "s3ps")
    s3_a.put_object(Bucket=bucket, Key="shared/file.txt", Body=b"presigned")
    url = s3_a.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared/file.txt"}, ExpiresIn=300)
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == b"presigned"
    tampered = httpx.get(url.replace("shared/file.txt", "shared/other.txt"))
    assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    assert httpx.get(url.split("?")[0]).status_code == 403
    # A presigned PUT: any client uploads with the URL alone.
    put_url = s3_a.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "shared/upload.bin"}, ExpiresIn=300)
    assert httpx.put(put_url, content=b"from a presigned url").status_code == 200
    assert s3_a.get_object(Bucket=bucket, Key="shared/upload.bin")["Body"].read() == b"from a presigned url"


# --- Over HTTPS: aws-chunked bodies --------------------------------------------------------------


@pytest.fixture
def tls_endpoint(platform: Platform):
    """A TLS-terminating nginx in front of storage's own port (a throwaway self-signed
    certificate; `Host` passed on as the client sent it): over HTTPS botocore sends PutObject and
    UploadPart bodies aws-chunked, with a CRC-32 trailer, which plain HTTP never shows."""
    if not (shutil.which("nginx") and shutil.which("openssl") and platform.storage_url):
        pytest.skip("needs nginx, openssl and storage's own port")
    work = tempfile.mkdtemp(prefix="s3-tls-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{work}/key.pem",
                    "-out", f"{work}/cert.pem", "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    upstream = urllib.parse.urlparse(platform.storage_url).netloc
    with open(f"{work}/nginx.conf", "w") as conf:
        conf.write(f"""
daemon off; pid {work}/nginx.pid; error_log {work}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {work}/cert.pem; ssl_certificate_key {work}/key.pem;
        client_max_body_size 0; proxy_request_buffering off; proxy_http_version 1.1;
        location / {{ proxy_set_header Host $http_host; proxy_set_header Connection ""; proxy_pass http://{upstream}; }}
    }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", f"{work}/nginx.conf", "-p", work])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until it listens (a state, not a fixed wait)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def test_s3_over_https_aws_chunked_bodies_decode_and_their_crc32_is_checked(tls_endpoint, project_a, keys, new_bucket, tmp_path):
    key = keys.issue(project_a)
    s3 = boto3.client("s3", endpoint_url=f"{tls_endpoint}/storage/v1/s3", region_name=REGION, verify=False,
                      aws_access_key_id=key["access_key_id"], aws_secret_access_key=key["secret_access_key"],
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    sent = []  # each request's x-amz-content-sha256 (botocore keeps header values as bytes here)
    s3.meta.events.register("before-send.s3.*",
                            lambda request, **kwargs: sent.append(bytes(request.headers.get("x-amz-content-sha256") or b"")))
    bucket = new_s3_bucket(s3, new_bucket, project_a, "s3tls")
    body = os.urandom(3 * MiB + 1)
    s3.put_object(Bucket=bucket, Key="chunked.bin", Body=body)
    assert s3.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == body
    source = tmp_path / "large.bin"
    data = os.urandom(11 * MiB + 5)
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "large.bin", Config=TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=5 * MiB))
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key="large.bin")["Body"].read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert sent.count(b"STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 4, "one PutObject and three UploadParts went aws-chunked"


# --- Signed junk -------------------------------------------------------------------------------


def test_s3_signed_junk_is_a_4xx_never_a_5xx(platform, project_a, keys, new_bucket):
    """Requests botocore signs correctly but whose paths, sub-resources, query values, headers and
    bodies are nonsense (a fixed seed, so a failure can be replayed): each answer is a 2xx or a
    4xx (501 for operations not offered), never a 500."""
    key = keys.issue(project_a)
    s3 = s3_client(platform, key["access_key_id"], key["secret_access_key"])
    bucket = new_s3_bucket(s3, new_bucket, project_a, "s3junk")
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"x" * 100)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m.bin")["UploadId"]
    signer = S3SigV4Auth(Credentials(key["access_key_id"], key["secret_access_key"]), "s3", REGION)
    rnd = random.Random(20261126)
    # Already percent-encoded, as botocore builds paths and signs them as they stand.
    segments = ["a", "a/b.txt", "m.bin", "%00", "%FF", "a%2F..%2Fb", "%C3%A9", "%20", "x" * 300, "a/", "public", "%2E%2E", "e%CC%81"]
    names = ["uploads", "uploadId", "partNumber", "delete", "list-type", "prefix", "delimiter", "max-keys", "continuation-token",
             "start-after", "marker", "tagging", "acl", "location", "versioning", "encoding-type", "max-parts", "part-number-marker",
             "max-uploads", "x-id", "response-content-type"]
    values = ["", "1", "0", "-1", "2", "99999999999999999999", upload, "abc", "%00", "url", "%25", "10001", "%0A", "%E2%80%AE"]
    bodies = [b"", b"<Delete><Object><Key>a/b.txt</Key></Object></Delete>", b"<CompleteMultipartUpload/>", b"<", b"\x00" * 10,
              b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>", b"<!DOCTYPE x><a/>", b"0\r\n\r\n", b"zz\r\n"]
    headers = [("x-amz-copy-source", ["", "/", f"{bucket}/a/b.txt", "nob/x", f"{bucket}/%00", f"{bucket}/a%2Fb.txt?versionId=1", "%"]),
               ("Range", ["bytes=0-0", "bytes=-0", "bytes=5-1", "bytes=a-b", "bytes=99999-"]),
               ("Content-MD5", ["", "abc", "1B2M2Y8AsgTpgAmY7PhCfg=="]), ("If-Match", ["*", '"x"', ""]),
               ("x-amz-metadata-directive", ["REPLACE", "junk"]), ("Content-Type", ["", "text/plain", "not a type", "a/b; c=d"]),
               ("x-amz-acl", ["public-read", "x"]), ("Content-Encoding", ["aws-chunked"]),
               ("x-amz-decoded-content-length", ["5", "-1", "abc"]), ("x-amz-meta-k", ["v", ""])]
    payloads = [None, "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "junk", "0" * 64]
    answers: dict[int, int] = {}
    failures = []
    with httpx.Client(timeout=30) as http:
        for _ in range(400):
            method = rnd.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
            path = "/" + rnd.choice([bucket, bucket, bucket, "nob", "%00", "UPPER", "a" * 120])
            if rnd.random() < 0.7:
                path += "/" + "/".join(rnd.choice(segments) for _ in range(rnd.randint(1, 2)))
            query = "&".join(f"{name}={rnd.choice(values)}" if rnd.random() < 0.7 else name
                             for name in rnd.sample(names, rnd.randint(0, 3)))
            url = f"{platform.storage_v1}/s3{path}" + (f"?{query}" if query else "")
            body = rnd.choice(bodies) if method in ("PUT", "POST") else b""
            request = AWSRequest(method=method, url=url, data=body,
                                 headers=dict(rnd.sample([(n, rnd.choice(v)) for n, v in headers], rnd.randint(0, 3))))
            payload = rnd.choice(payloads)
            if payload:
                request.headers["X-Amz-Content-SHA256"] = payload
            signer.add_auth(request)
            prepared = request.prepare()
            answer = http.request(method, prepared.url, headers=dict(prepared.headers), content=body)
            answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
            if answer.status_code >= 500 and answer.status_code != 501:
                failures.append((method, url, answer.status_code, answer.text[:300]))
    assert not failures, failures[:5]
    assert answers.get(200, 0) + answers.get(204, 0) > 0 and sum(v for k, v in answers.items() if 400 <= k < 500) > 0, answers
