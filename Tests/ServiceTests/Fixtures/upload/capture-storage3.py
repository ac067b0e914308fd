"""Captures the exact requests storage3 2.34.1 sends for uploads (httpx.MockTransport)."""
import sys, httpx
from storage3 import SyncStorageClient

out = sys.argv[1]
captured = []

def handler(request: httpx.Request) -> httpx.Response:
    body = request.read()
    head = f"{request.method} {request.url.raw_path.decode()} HTTP/1.1\r\n"
    for name, value in request.headers.raw:
        head += f"{name.decode()}: {value.decode()}\r\n"
    captured.append(head.encode() + b"\r\n" + body)
    return httpx.Response(200, json={"Id": "00000000-0000-0000-0000-000000000000", "Key": "b/dir/a.txt"})

http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://stub")
client = SyncStorageClient("http://stub/storage/v1", {"apikey": "pk_test", "Authorization": "Bearer pk_test"}, http_client=http)
cases = {
    "storage3-upload.http": lambda: client.from_("b").upload("dir/a.txt", b"hello from storage3\n", {"content-type": "image/png", "cache-control": "60"}),
    "storage3-upload-metadata.http": lambda: client.from_("b").upload("dir/a.txt", b"hello from storage3\n", {"content-type": "image/png", "cache-control": "60", "metadata": {"owner": "ada", "tags": ["x", "y"], "n": 1}}),
    "storage3-update-defaults.http": lambda: client.from_("b").update("dir/a.txt", b"hello from storage3\n"),
}
for name, call in cases.items():
    captured.clear()
    call()
    assert len(captured) == 1, name
    with open(f"{out}/{name}", "wb") as f:
        f.write(captured[0])
    print(name, len(captured[0]))
